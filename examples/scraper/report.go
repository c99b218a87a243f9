package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/examples/internal/cli"
	"github.com/oddsledger/oddsledger/examples/internal/feed"
	"github.com/oddsledger/oddsledger/examples/internal/sim"
	"github.com/oddsledger/oddsledger/marketodds"
)

// meter reads PostgreSQL's own numbers for the tables of both designs:
// count(*) and pg_total_relation_size (heap, indexes, TOAST and free space
// maps). A partitioned table has no storage of its own (its size is 0), so
// its size is the sum over pg_partition_tree (which lists nothing for a
// plain table).
type meter struct {
	db                 marketodds.DB
	current, history   string // qualified, quoted
	scrapeLog, scrapes string // market_scrape_log (partitioned), market_scrapes
	snaps              string // "" when the baseline is off
}

func newMeter(db marketodds.DB, schema string, legacy bool) *meter {
	m := &meter{db: db,
		current:   pgx.Identifier{schema, "market_odds_current"}.Sanitize(),
		history:   pgx.Identifier{schema, "market_odds_history"}.Sanitize(),
		scrapeLog: pgx.Identifier{schema, "market_scrape_log"}.Sanitize(),
		scrapes:   pgx.Identifier{schema, "market_scrapes"}.Sanitize(),
	}
	if legacy {
		m.snaps = pgx.Identifier{schema, legacyTable}.Sanitize()
	}
	return m
}

// sizes are table sizes in bytes.
type sizes struct{ current, history, scrapeLog, scrapes, snaps int64 }

// scrapeLevel is the scrape log: market_scrape_log and market_scrapes.
func (s sizes) scrapeLevel() int64 { return s.scrapeLog + s.scrapes }

// marketLevel is all of the library's tables: current + history + scrape log.
func (s sizes) marketLevel() int64 { return s.current + s.history + s.scrapeLevel() }

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
	if s.scrapeLog, err = m.size(ctx, m.scrapeLog); err != nil {
		return s, err
	}
	if s.scrapes, err = m.size(ctx, m.scrapes); err != nil {
		return s, err
	}
	s.snaps, err = m.size(ctx, m.snaps)
	return s, err
}

// counts are row counts; the steady ones count rows captured (scraped) at
// or after the second cycle.
type counts struct {
	current                      int64
	history, historySteady, gone int64
	// scrapeLog: market_scrape_log rows. scrapes: market_scrapes rows, one
	// per (event, bookmaker); scrapesSteady those first scraped after
	// cycle 1.
	scrapeLog, scrapeLogSteady    int64
	scrapes, scrapesSteady        int64
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
	if err := m.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+m.scrapeLog+`),
    (SELECT count(*) FROM `+m.scrapeLog+` WHERE scraped_at >= $1),
    (SELECT count(*) FROM `+m.scrapes+`),
    (SELECT count(*) FROM (SELECT FROM `+m.scrapeLog+` GROUP BY event_id, bookmaker_slug
        HAVING min(scraped_at) >= $1) AS later)`, steadyFrom).Scan(
		&c.scrapeLog, &c.scrapeLogSteady, &c.scrapes, &c.scrapesSteady); err != nil {
		return c, fmt.Errorf("count the scrape log: %w", err)
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
	confirm               marketodds.ConfirmMode
	workers               int
	defaultWorkload       bool // -change, -interval and -horizon at their defaults: the 94% target applies
	retries, dropped      int64
	droppedWrites         int64 // writes of dropped market batches
	droppedRows           int64 // rows of dropped snapshot batches
	store                 marketodds.Stats
	batches               feed.BatchStats // the write calls, from Config.OnBatch
	durations             []time.Duration // every write call's, sorted
	writeTime1            time.Duration   // the write calls' durations summed over cycle 1
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
		p("  %-54s %12s %11s %10s\n", label, rows, bytes, per)
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

	mlRows := r.rows.current + r.rows.history + r.rows.scrapeLog + r.rows.scrapes
	p("\nAll cycles (1..%d; cycle 1 stores every market in both designs)\n", r.cycles)
	row("", "rows", "bytes", "bytes per")
	row("", "", "", "scraped mkt")
	row("market-level: market_odds_current", num(r.rows.current), mb(r.end.current), perMarket(r.end.current, r.scraped))
	row("market-level: market_odds_history", num(r.rows.history), mb(r.end.history), perMarket(r.end.history, r.scraped))
	row("market-level: scrape log (2)", num(r.rows.scrapeLog+r.rows.scrapes), mb(r.end.scrapeLevel()),
		perMarket(r.end.scrapeLevel(), r.scraped))
	row("market-level: current + history + scrape log", num(mlRows), mb(r.end.marketLevel()),
		perMarket(r.end.marketLevel(), r.scraped))
	if r.legacy {
		row("snapshots:    legacy_odds_snapshots", num(r.rows.snaps), mb(r.end.snaps), perMarket(r.end.snaps, r.scraped))
		if r.rows.snaps > 0 && r.end.snaps > 0 {
			row("reduction: history vs snapshots", pct(reduction(r.rows.history, r.rows.snaps)),
				pct(reduction(r.end.history, r.end.snaps)), "")
			row("reduction: current + history + scrape log vs snapshots", pct(reduction(mlRows, r.rows.snaps)),
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
	p("  (2) market_scrape_log, one row per scrape of an (event, bookmaker): %s rows, %s; plus\n",
		num(r.rows.scrapeLog), mb(r.end.scrapeLog))
	p("      market_scrapes, its newest scrape: %s rows, %s. Every batch records its scrapes, in both\n",
		num(r.rows.scrapes), mb(r.end.scrapes))
	p("      modes; with -confirm=scrapes they also confirm the markets that did not change. It is part of\n")
	p("      the cost.\n")

	if steady := r.steadyScraped(); steady > 0 {
		grown := func(end, first int64) int64 { return end - first }
		p("\nSteady state (cycles 2..%d: what each further scrape cycle adds)\n", r.cycles)
		row("", "rows", "bytes", "bytes per")
		row("", "added", "added", "scraped mkt")
		curRows, curBytes := r.rows.current-int64(r.distinct1), grown(r.end.current, r.afterFirst.current)
		histBytes := grown(r.end.history, r.afterFirst.history)
		logRows, logBytes := r.rows.scrapeLogSteady+r.rows.scrapesSteady, grown(r.end.scrapeLevel(), r.afterFirst.scrapeLevel())
		row("market-level: market_odds_current", num(curRows), mb(curBytes), perMarket(curBytes, steady))
		row("market-level: market_odds_history", num(r.rows.historySteady), mb(histBytes), perMarket(histBytes, steady))
		row("market-level: scrape log (2)", num(logRows), mb(logBytes), perMarket(logBytes, steady))
		mlRows := curRows + r.rows.historySteady + logRows
		mlBytes := grown(r.end.marketLevel(), r.afterFirst.marketLevel())
		row("market-level: current + history + scrape log (1)", num(mlRows), mb(mlBytes), perMarket(mlBytes, steady))
		if r.legacy {
			snapBytes := grown(r.end.snaps, r.afterFirst.snaps)
			row("snapshots:    legacy_odds_snapshots", num(r.rows.snapsSteady), mb(snapBytes), perMarket(snapBytes, steady))
			if red, ok := r.steadyReduction(); ok {
				row("reduction: history vs snapshots", pct(red), pct(reduction(histBytes, snapBytes)), "")
				row("reduction: current + history + scrape log vs snapshots", pct(reduction(mlRows, r.rows.snapsSteady)),
					pct(reduction(mlBytes, snapBytes)), "")
			}
		}
		this := map[marketodds.ConfirmMode]string{r.confirm: " (this run)"}
		p("  (1) rows: history and scrape log rows, plus the current rows of markets and the market_scrapes rows of\n")
		p("      (event, bookmaker)s first seen after cycle 1.\n")
		p("      Bytes, -confirm=markets%s: every scrape rewrites the current row of every market it saw\n",
			this[marketodds.ConfirmMarkets])
		p("      (an UPDATE of last_confirmed_at each): the current table grows over the first cycles, until its\n")
		p("      HOT updates find room on their pages (fillfactor 70), then levels off.\n")
		p("      Bytes, -confirm=scrapes%s: a scrape rewrites the current rows of its changed markets only\n",
			this[marketodds.ConfirmScrapes])
		p("      (changes, appearances, disappearances) and confirms the others by its market_scrapes row (one\n")
		p("      UPDATE per scrape) and its scrape log row: the current table grows little, if at all.\n")
		p("      History, the scrape log and the snapshots grow with every cycle: run more -cycles to see this line\n")
		p("      approach the sum of history's and the scrape log's.\n")
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
	s := r.store
	p("Store stats (Store.Stats): %s batches, %s failed (%s transient, %s permanent); %s writes, %s writes rejected\n",
		num(s.Batches), num(s.Failed), num(s.TransientErrors), num(s.PermanentErrors), num(s.Writes),
		num(s.Invalid+s.RowsIsolated))
	p("  (%s invalid, %s isolated); %s partitions created, %s dropped.\n", num(s.Invalid), num(s.RowsIsolated),
		num(s.PartitionsCreated), num(s.PartitionsDropped))
	p("  Current: %s rows upserted, %s stale, %s confirmed by scrape.\n", num(s.Upserted), num(s.Stale),
		num(s.ConfirmedByScrape))
	p("  History: %s rows added, %s duplicates. Scrape log: %s scrapes logged.\n", num(s.HistoryAdded),
		num(s.HistoryDuplicate), num(s.Scrapes))
	r.printWrites(p)
	p("Queue: %d retries, %d batches dropped", r.retries, r.dropped)
	if r.dropped > 0 {
		p(" (%s market writes, their changes forgotten to be sent again; %s snapshot rows lost)",
			num(r.droppedWrites), num(r.droppedRows))
	}
	p(". Elapsed %s.\n", r.elapsed.Round(10*time.Millisecond))
}

// printWrites prints the write calls' figures: what Config.OnBatch
// reported, through the feed's metrics and the durations the program kept.
func (r *report) printWrites(p func(format string, args ...any)) {
	b := r.batches
	p("Write calls (Config.OnBatch): %s, %s errors, %s writes (%s per call).\n",
		num(b.Count), num(b.Errors), num(b.Writes), num(b.Writes/max(b.Count, 1)))
	p("  Durations summed: %s", b.Total.Round(time.Millisecond))
	if r.haveFirst && r.cycles > 1 {
		steady := b.Total - r.writeTime1
		p("; cycle 1 %s, cycles 2..%d %s (%s per cycle)", r.writeTime1.Round(time.Millisecond), r.cycles,
			steady.Round(time.Millisecond), (steady / time.Duration(r.cycles-1)).Round(time.Millisecond))
	}
	p(".\n")
	if len(r.durations) == 0 {
		return
	}
	// Nearest rank, over every call.
	q := func(f float64) time.Duration {
		i := int(math.Ceil(f*float64(len(r.durations)))) - 1
		return r.durations[min(max(i, 0), len(r.durations)-1)].Round(100 * time.Microsecond)
	}
	p("  Per call (exact, over all %d): mean %s, p50 %s, p99 %s, max %s.\n", len(r.durations),
		b.Mean().Round(100*time.Microsecond), q(0.5), q(0.99), r.durations[len(r.durations)-1].Round(100*time.Microsecond))
	p("  Histogram (ms, the buckets of feed.WriteMetrics):")
	sep := " "
	for i, n := range b.Buckets {
		if n == 0 {
			continue
		}
		if i < len(feed.BatchBucketsMs) {
			p("%s<=%g: %d", sep, feed.BatchBucketsMs[i], n)
		} else {
			p("%s>%g: %d", sep, feed.BatchBucketsMs[len(feed.BatchBucketsMs)-1], n)
		}
		sep = ", "
	}
	p(".\n")
}

// confirmText says what a confirmation mode does, for the header.
func confirmText(m marketodds.ConfirmMode) string {
	if m == marketodds.ConfirmScrapes {
		return "only changed markets are written; each scrape's row in market_scrapes confirms the rest"
	}
	return "every scrape UPDATEs the current row of every market it saw"
}

// num formats n with thousands separators.
func num(n int64) string { return cli.Thousands(n) }

func mb(b int64) string { return strconv.FormatFloat(float64(b)/1e6, 'f', 1, 64) + " MB" }

func pct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + "%"
}
