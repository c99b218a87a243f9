package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/examples/internal/sim"
	"github.com/oddsledger/oddsledger/marketodds"
)

// meter reads PostgreSQL's own numbers for the tables of both designs:
// count(*) and pg_total_relation_size (heap, indexes, TOAST and free space
// maps). A partitioned table has no storage of its own (its size is 0), so
// its size is the sum over pg_partition_tree (which lists nothing for a
// plain table).
type meter struct {
	db                      marketodds.DB
	current, history, snaps string // qualified, quoted; snaps "" when the baseline is off
}

func newMeter(db marketodds.DB, schema string, legacy bool) *meter {
	m := &meter{db: db,
		current: pgx.Identifier{schema, "market_odds_current"}.Sanitize(),
		history: pgx.Identifier{schema, "market_odds_history"}.Sanitize(),
	}
	if legacy {
		m.snaps = pgx.Identifier{schema, legacyTable}.Sanitize()
	}
	return m
}

// sizes are table sizes in bytes.
type sizes struct{ current, history, snaps int64 }

func (s sizes) marketLevel() int64 { return s.current + s.history }

func (m *meter) size(ctx context.Context, table string) (int64, error) {
	if table == "" {
		return 0, nil
	}
	var n int64
	err := m.db.QueryRow(ctx,
		`SELECT COALESCE((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree($1::regclass)),
    pg_total_relation_size($1::regclass))::bigint`, table).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", table, err)
	}
	return n, nil
}

func (m *meter) sizes(ctx context.Context) (sizes, error) {
	var s sizes
	var err error
	if s.current, err = m.size(ctx, m.current); err != nil {
		return s, err
	}
	if s.history, err = m.size(ctx, m.history); err != nil {
		return s, err
	}
	s.snaps, err = m.size(ctx, m.snaps)
	return s, err
}

// counts are row counts; the steady ones count rows captured at or after
// the second cycle.
type counts struct {
	current                       int64
	history, historySteady, gone  int64
	snaps, snapsSteady, snapshots int64
}

func (m *meter) counts(ctx context.Context, steadyFrom time.Time) (counts, error) {
	var c counts
	if err := m.db.QueryRow(ctx, `SELECT count(*) FROM `+m.current).Scan(&c.current); err != nil {
		return c, fmt.Errorf("count current: %w", err)
	}
	if err := m.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE captured_at >= $1),
    count(*) FILTER (WHERE unavailable) FROM `+m.history, steadyFrom).Scan(&c.history, &c.historySteady, &c.gone); err != nil {
		return c, fmt.Errorf("count history: %w", err)
	}
	if m.snaps == "" {
		return c, nil
	}
	if err := m.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE captured_at >= $1),
    count(DISTINCT (event_id, bookmaker_slug, captured_at)) FROM `+m.snaps, steadyFrom).Scan(
		&c.snaps, &c.snapsSteady, &c.snapshots); err != nil {
		return c, fmt.Errorf("count snapshots: %w", err)
	}
	return c, nil
}

// report is what the closing table shows.
type report struct {
	cycles, plannedCycles int
	interrupted, partial  bool // partial: during a cycle, not between two
	sim                   sim.Config
	distinct, distinct1   int // distinct markets seen: all cycles, cycle 1
	eventsSeen            int
	scraped, scraped1     int64 // markets scraped: all cycles, cycle 1
	scrapes, scrapes1     int64 // scrapes of an (event, bookmaker): all cycles, cycle 1
	changed, changed1     int64 // changed writes: all cycles, cycle 1
	end, afterFirst       sizes
	haveFirst             bool // afterFirst was measured
	rows                  counts
	legacy                bool
	defaultWorkload       bool // -change, -interval and -horizon at their defaults: the 94% target applies
	retries, dropped      int64
	droppedWrites         int64 // writes of dropped market batches
	droppedRows           int64 // rows of dropped snapshot batches
	upserted, stale       int64
	historyAdded          int64
	historyDup            int64
	rejected              int64
	elapsed               time.Duration
}

// steadyReduction is the headline: how many fewer history rows than
// snapshot rows the cycles after the first stored.
func (r *report) steadyReduction() (float64, bool) {
	if !r.legacy || r.rows.snapsSteady == 0 {
		return 0, false
	}
	return reduction(r.rows.historySteady, r.rows.snapsSteady), true
}

// steadyScraped is the number of markets scraped after the first cycle, 0
// when the run did not get past it.
func (r *report) steadyScraped() int64 {
	if !r.haveFirst {
		return 0
	}
	return r.scraped - r.scraped1
}

func reduction(ours, theirs int64) float64 {
	if theirs <= 0 {
		return math.NaN()
	}
	return 100 * (1 - float64(ours)/float64(theirs))
}

func (r *report) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	perMarket := func(bytes, markets int64) string {
		if markets == 0 {
			return "-"
		}
		return strconv.FormatFloat(float64(bytes)/float64(markets), 'f', 1, 64)
	}
	row := func(label string, rows string, bytes string, per string) {
		p("  %-44s %12s %11s %10s\n", label, rows, bytes, per)
	}

	p("\n")
	if r.interrupted {
		when := "after"
		if r.partial {
			when = "during"
		}
		p("Interrupted %s cycle %d of %d: the table shows what was written.\n", when, r.cycles, r.plannedCycles)
	}
	p("What PostgreSQL stored: count(*), and pg_total_relation_size (heap + indexes + TOAST; partitions summed\n")
	p("over pg_partition_tree, since a partitioned table's own size is 0). MB = 10^6 bytes.\n")
	p("Scraped: %s markets in %d cycles; %s distinct markets, of %d events over the run at 3 bookmakers.\n",
		num(r.scraped), r.cycles, num(int64(r.distinct)), r.eventsSeen)
	p("Changes: %s.\n", r.sim.Distribution())
	if steady := r.steadyScraped(); steady > 0 {
		p("Measured: %s changed writes in cycles 2..%d = %.2f%% of the markets scraped (disappearances and new events included).\n",
			num(r.changed-r.changed1), r.cycles, 100*float64(r.changed-r.changed1)/float64(steady))
	}

	p("\nAll cycles (1..%d; cycle 1 stores every market in both designs)\n", r.cycles)
	row("", "rows", "bytes", "bytes per")
	row("", "", "", "scraped mkt")
	row("market-level: market_odds_current", num(r.rows.current), mb(r.end.current), perMarket(r.end.current, r.scraped))
	row("market-level: market_odds_history", num(r.rows.history), mb(r.end.history), perMarket(r.end.history, r.scraped))
	row("market-level: current + history", num(r.rows.current+r.rows.history), mb(r.end.marketLevel()),
		perMarket(r.end.marketLevel(), r.scraped))
	if r.legacy {
		row("snapshots:    legacy_odds_snapshots", num(r.rows.snaps), mb(r.end.snaps), perMarket(r.end.snaps, r.scraped))
		if r.rows.snaps > 0 && r.end.snaps > 0 {
			row("reduction: history vs snapshots", pct(reduction(r.rows.history, r.rows.snaps)),
				pct(reduction(r.end.history, r.end.snaps)), "")
			row("reduction: current + history vs snapshots", pct(reduction(r.rows.current+r.rows.history, r.rows.snaps)),
				pct(reduction(r.end.marketLevel(), r.end.snaps)), "")
		}
	}

	if r.rows.gone > 0 || r.rows.snapshots > 0 {
		p("  (history rows recording a disappearance: %s", num(r.rows.gone))
		if r.rows.snapshots > 0 {
			p("; snapshots taken: %s, of %.1f markets on average", num(r.rows.snapshots),
				float64(r.rows.snaps)/float64(r.rows.snapshots))
		}
		p(")\n")
	}

	if steady := r.steadyScraped(); steady > 0 {
		grown := func(end, first int64) int64 { return end - first }
		p("\nSteady state (cycles 2..%d: what each further scrape cycle adds)\n", r.cycles)
		row("", "rows", "bytes", "bytes per")
		row("", "added", "added", "scraped mkt")
		row("market-level: market_odds_history", num(r.rows.historySteady), mb(grown(r.end.history, r.afterFirst.history)),
			perMarket(grown(r.end.history, r.afterFirst.history), steady))
		mlRows := r.rows.historySteady + r.rows.current - int64(r.distinct1)
		mlBytes := grown(r.end.marketLevel(), r.afterFirst.marketLevel())
		row("market-level: current + history (1)", num(mlRows), mb(mlBytes), perMarket(mlBytes, steady))
		if r.legacy {
			snapBytes := grown(r.end.snaps, r.afterFirst.snaps)
			row("snapshots:    legacy_odds_snapshots", num(r.rows.snapsSteady), mb(snapBytes), perMarket(snapBytes, steady))
			if red, ok := r.steadyReduction(); ok {
				row("reduction: history vs snapshots", pct(red),
					pct(reduction(grown(r.end.history, r.afterFirst.history), snapBytes)), "")
				row("reduction: current + history vs snapshots", pct(reduction(mlRows, r.rows.snapsSteady)),
					pct(reduction(mlBytes, snapBytes)), "")
			}
		}
		p("  (1) rows: history rows plus the current rows of markets first seen after cycle 1. Bytes: the\n")
		p("      current table is rewritten by every scrape (each confirms every market); it grows over the first\n")
		p("      cycles, until its HOT updates find room on their pages (fillfactor 70), then levels off, while\n")
		p("      history and snapshots grow with every cycle: run more -cycles to see this line approach history's.\n")
	}

	p("\n")
	if red, ok := r.steadyReduction(); ok {
		p("Steady state: the market-level history stored %.1f%% fewer rows than the snapshots", red)
		if r.defaultWorkload {
			verdict := "met"
			if red < 94 {
				verdict = "NOT met"
			}
			p(" (target for the default workload: >= 94%%; %s)", verdict)
		}
		p(".\n")
		if scrapes := r.scrapes - r.scrapes1; scrapes > 0 && r.haveFirst {
			// Per scrape of m markets, uniform changes at rate q append q*m
			// history rows, and a snapshot of m rows with probability
			// 1-(1-q)^m.
			q, m := r.sim.ChangeRate, float64(r.scraped-r.scraped1)/float64(scrapes)
			p("Expected for uniform changes at %.3g over %.1f markets per scrape: 1 - q/(1-(1-q)^m) = %.1f%%, less what\n",
				q, m, 100*(1-q/(1-math.Pow(1-q, m))))
			p("new events (%d after cycle 1, stored in full by both designs) and withdrawn markets (a change in history,\n",
				r.eventsSeen-r.sim.Events)
			p("not a row in a snapshot) take off. With the same changes concentrated in a few events, the saving is\n")
			p("much smaller.\n")
		}
	}
	p("Store: %s current rows upserted, %s stale, %s history rows appended, %s duplicates; %s writes rejected.\n",
		num(r.upserted), num(r.stale), num(r.historyAdded), num(r.historyDup), num(r.rejected))
	p("Queue: %d retries, %d batches dropped", r.retries, r.dropped)
	if r.dropped > 0 {
		p(" (%s market writes, their changes forgotten to be sent again; %s snapshot rows lost)",
			num(r.droppedWrites), num(r.droppedRows))
	}
	p(". Elapsed %s.\n", r.elapsed.Round(10*time.Millisecond))
}

// num formats n with thousands separators.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func mb(b int64) string { return strconv.FormatFloat(float64(b)/1e6, 'f', 1, 64) + " MB" }

func pct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + "%"
}
