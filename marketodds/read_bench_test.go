package marketodds_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// The read benchmark's data: 30 daily partitions of 20 events x 3
// bookmakers x 50 markets, each (event, bookmaker) scraped every 5 minutes,
// each market changing in 5% of the scrapes (~14 changes per market per
// day, ~1.3 million history rows), every market present from the first
// scrape on.
const (
	readBenchDays    = 30
	readBenchEvents  = 20
	readBenchMarkets = 50
	readBenchEvery   = 5 * time.Minute
)

var readBenchStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// BenchmarkReads measures the read path for one event (150 markets) on the
// data above, side by side in one run, on the shared test server
// (internal/pgtest: the throwaway server, or ODDSLEDGER_TEST_DATABASE_URL):
//
//   - at-newest: MarketsAt at noon of the newest partition (most markets
//     changed after it, so each is one history probe in that partition);
//   - at-28d: MarketsAt 28 days earlier (the probes run in a partition 28
//     days back; every newer partition is pruned). Target: at most 3x
//     at-newest;
//   - at-now: MarketsAt after the newest data (the current table alone);
//   - distinct-newest, distinct-28d: the same answer from a naive
//     SELECT DISTINCT ON over the event's history up to T (and max() over
//     its scrape log): the baseline, and its ratio to MarketsAt;
//   - history-1d: History of the event over one day (~2,200 records);
//   - open-close: OpeningClosing of the event at noon of the newest day.
//
// Each figure is the median of ODDSLEDGER_BENCH_READ_RUNS calls (default
// 40, after 5 warm-up calls), rotating over the 20 events, timed in Go
// around the call: a round trip, the statement, and decoding every row
// (jsonb outcomes included), for the baseline as for the library. The data
// is built with INSERT ... SELECT FROM generate_series straight into the
// tables (about half a minute), once per run. One iteration is the whole
// scenario; ns/op means nothing:
//
//	go test -run '^$' -bench Reads -benchtime 1x ./marketodds
//
// With -v the log also shows which partitions each read executed, from
// EXPLAIN ANALYZE of the statement it sent. It asserts no timing.
func BenchmarkReads(b *testing.B) {
	runs := 40
	if v := os.Getenv("ODDSLEDGER_BENCH_READ_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("ODDSLEDGER_BENCH_READ_RUNS=%q: want a positive integer", v)
		}
		runs = n
	}
	s := newReadStore(b, &marketodds.Config{})
	built := time.Now()
	buildReadBench(b, s)
	b.Logf("built %d history rows, %d scrape log rows in %s", s.count("SELECT count(*) FROM market_odds_history"),
		s.count("SELECT count(*) FROM market_scrape_log"), time.Since(built).Round(time.Second))

	ctx := context.Background()
	newest := readBenchStart.AddDate(0, 0, readBenchDays-1).Add(12 * time.Hour)
	back := newest.AddDate(0, 0, -28)
	after := readBenchStart.AddDate(0, 0, readBenchDays).Add(time.Hour)
	event := func(i int) int64 { return int64(1001 + i%readBenchEvents) }
	query := func(i int) marketodds.Query { return marketodds.Query{EventIDs: []int64{event(i)}} }
	baseline := newDistinctOn(s)

	// The baseline must give the same answer.
	for _, at := range []time.Time{newest, back} {
		want, err := s.MarketsAt(ctx, query(3), at)
		if err != nil {
			b.Fatal(err)
		}
		got, err := baseline.marketsAt(ctx, event(3), at)
		if err != nil {
			b.Fatal(err)
		}
		if d := gocmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" || len(want) != 3*readBenchMarkets {
			b.Fatalf("DISTINCT ON and MarketsAt disagree at %s (%d states) (-MarketsAt +DISTINCT ON):\n%s", at, len(want), d)
		}
	}

	type read struct {
		name, what string
		call       func(i int) (rows int, err error)
		explain    func(st *marketodds.Store) error
	}
	marketsAt := func(at time.Time) func(int) (int, error) {
		return func(i int) (int, error) {
			st, err := s.MarketsAt(ctx, query(i), at)
			return len(st), err
		}
	}
	explainAt := func(at time.Time) func(*marketodds.Store) error {
		return func(st *marketodds.Store) error { _, err := st.MarketsAt(ctx, query(0), at); return err }
	}
	distinct := func(at time.Time) func(int) (int, error) {
		return func(i int) (int, error) {
			st, err := baseline.marketsAt(ctx, event(i), at)
			return len(st), err
		}
	}
	dayFrom, dayTo := newest.Add(-24*time.Hour), newest
	reads := []read{
		{"at-newest", "MarketsAt, T in the newest partition", marketsAt(newest), explainAt(newest)},
		{"at-28d", "MarketsAt, T 28 days back", marketsAt(back), explainAt(back)},
		{"at-now", "MarketsAt, T after the newest data", marketsAt(after), explainAt(after)},
		{"distinct-newest", "DISTINCT ON baseline, T in the newest partition", distinct(newest), nil},
		{"distinct-28d", "DISTINCT ON baseline, T 28 days back", distinct(back), nil},
		{"history-1d", "History, one day", func(i int) (int, error) {
			h, err := s.History(ctx, query(i), dayFrom, dayTo)
			return len(h), err
		}, func(st *marketodds.Store) error { _, err := st.History(ctx, query(0), dayFrom, dayTo); return err }},
		{"open-close", "OpeningClosing, close at T in the newest partition", func(i int) (int, error) {
			oc, err := s.OpeningClosing(ctx, query(i), newest)
			return len(oc), err
		}, func(st *marketodds.Store) error { _, err := st.OpeningClosing(ctx, query(0), newest); return err }},
	}

	b.ResetTimer()
	medians := make(map[string]float64)
	var table strings.Builder
	for range b.N {
		// Round robin over the reads, so that a busy moment of the machine
		// slows them all alike.
		ms := make([][]float64, len(reads))
		rows := make([]int, len(reads))
		for i := range runs + 5 {
			for j, r := range reads {
				start := time.Now()
				n, err := r.call(i)
				d := time.Since(start)
				if err != nil {
					b.Fatalf("%s: %v", r.name, err)
				}
				if i >= 5 {
					ms[j] = append(ms[j], float64(d.Microseconds())/1000)
					rows[j] = n
				}
			}
		}
		table.Reset()
		fmt.Fprintf(&table, "%-52s %9s %9s %6s\n", "one event, 150 markets, 30 daily partitions", "median", "p90", "rows")
		for j, r := range reads {
			slices.Sort(ms[j])
			medians[r.name] = ms[j][len(ms[j])/2]
			fmt.Fprintf(&table, "%-52s %6.2f ms %6.2f ms %6d\n", r.what, medians[r.name], ms[j][len(ms[j])*9/10], rows[j])
		}
	}
	b.StopTimer()
	ratio := func(a, c string) float64 { return medians[a] / medians[c] }
	fmt.Fprintf(&table, "28 days back / newest: %.2fx (target <= 3x); DISTINCT ON / MarketsAt: %.1fx newest, %.1fx 28 days back",
		ratio("at-28d", "at-newest"), ratio("distinct-newest", "at-newest"), ratio("distinct-28d", "at-28d"))
	b.Log("\n" + table.String())
	for _, r := range reads {
		b.ReportMetric(medians[r.name], "ms/"+r.name)
	}
	b.ReportMetric(ratio("at-28d", "at-newest"), "x/at-28d-vs-newest")
	b.ReportMetric(ratio("distinct-newest", "at-newest"), "x/distinct-vs-at-newest")
	b.ReportMetric(ratio("distinct-28d", "at-28d"), "x/distinct-vs-at-28d")
	b.ReportMetric(0, "ns/op") // one op is the whole scenario

	for _, r := range reads {
		if r.explain == nil {
			continue
		}
		plan := explainRead(b, s, true, r.explain)
		b.Logf("%s: history partitions %s; scrape log partitions %s; %s", r.what,
			scanSummary(partitionScans(plan, "market_odds_history")), scanSummary(partitionScans(plan, "market_scrape_log")),
			planExecutionTime.FindString(plan))
	}
}

var planExecutionTime = regexp.MustCompile(`Execution Time: \S+ ms`)

// scanSummary says which partitions of a plan ran, and how many were in
// the plan but never ran (those the planner pruned are not in it).
func scanSummary(scans []partitionScan) string {
	var ran []string
	never := 0
	for _, p := range scans {
		if p.executed {
			ran = append(ran, fmt.Sprintf("%s (%d probes)", strings.TrimPrefix(p.name, "market_odds_history_"), p.loops))
		} else {
			never++
		}
	}
	if len(ran) == 0 {
		ran = append(ran, "none")
	}
	return fmt.Sprintf("executed: %s; never executed: %d", strings.Join(ran, ", "), never)
}

// buildReadBench fills the store's tables with the benchmark's data,
// straight into the tables (not through the write path): history, the
// scrape log, market_scrapes, and each market's current row from its
// newest history row.
func buildReadBench(b *testing.B, s *testStore) {
	b.Helper()
	ctx := context.Background()
	end := readBenchStart.AddDate(0, 0, readBenchDays)
	if err := s.EnsurePartitions(ctx, readBenchStart, end.Add(-time.Second)); err != nil {
		b.Fatal(err)
	}
	slots := int(end.Sub(readBenchStart) / readBenchEvery)
	markets := fmt.Sprintf(`SELECT e AS event_id, b AS bookmaker_slug, 'm' || lpad(k::text, 3, '0') AS market_id,
        CASE WHEN k %% 5 = 0 THEN NULL WHEN k %% 5 = 1 THEN 0 ELSE (k %% 7) + 0.5 END AS line,
        'Market ' || k || ' | Full Time' AS name
    FROM generate_series(1001, %d) e, unnest(ARRAY['bet9ja', 'betpawa', 'sportybet']) b, generate_series(1, %d) k`,
		1000+readBenchEvents, readBenchMarkets)
	start := readBenchStart.Format(time.RFC3339)
	every := fmt.Sprintf("interval '%d seconds'", int(readBenchEvery/time.Second))
	s.execAll(
		`SET LOCAL jit = off`,
		`SET LOCAL work_mem = '256MB'`,
		`SELECT setseed(0.42)`,
		// 128 versions of a 1X2's outcomes (~150 bytes of jsonb each).
		`CREATE TEMP TABLE outcome_versions ON COMMIT DROP AS
SELECT i, jsonb_build_array(
        jsonb_build_object('name', '1', 'odds', round((1.2 + random() * 4)::numeric, 2), 'suspended', false),
        jsonb_build_object('name', 'X', 'odds', round((2 + random() * 3)::numeric, 2), 'suspended', false),
        jsonb_build_object('name', '2', 'odds', round((1.2 + random() * 6)::numeric, 2), 'suspended', false)) AS outcomes
FROM generate_series(0, 127) i`,
		// Every market changes at the first scrape, then in 5% of them. In
		// time order: each partition and its index fill in turn.
		fmt.Sprintf(`INSERT INTO market_odds_history (event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name,
    outcomes, market_groups, captured_at, unavailable)
SELECT c.event_id, c.bookmaker_slug, c.market_id, c.line, c.name, v.outcomes, '{popular,main}',
    '%s'::timestamptz + c.slot * %s, false
FROM (SELECT m.*, s.slot, floor(random() * 128)::int AS version
    FROM (%s) m
    -- m.market_id IS NULL makes the subquery depend on the market, so that
    -- each market draws its own scrapes.
    CROSS JOIN LATERAL (SELECT slot FROM generate_series(0, %d) slot
        WHERE slot = 0 OR random() < 0.05 OR m.market_id IS NULL) s) c
JOIN outcome_versions v ON v.i = c.version
ORDER BY c.slot`, start, every, markets, slots-1),
		fmt.Sprintf(`INSERT INTO market_scrape_log (event_id, bookmaker_slug, scraped_at)
SELECT e, b, '%s'::timestamptz + s * %s
FROM generate_series(1001, %d) e, unnest(ARRAY['bet9ja', 'betpawa', 'sportybet']) b, generate_series(0, %d) s
ORDER BY s`, start, every, 1000+readBenchEvents, slots-1),
		fmt.Sprintf(`INSERT INTO market_scrapes (event_id, bookmaker_slug, last_scraped_at)
SELECT e, b, '%s'::timestamptz + %d * %s
FROM generate_series(1001, %d) e, unnest(ARRAY['bet9ja', 'betpawa', 'sportybet']) b`, start, slots-1, every, 1000+readBenchEvents),
		fmt.Sprintf(`INSERT INTO market_odds_current (event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name,
    outcomes, market_groups, last_confirmed_at, last_updated_at, unavailable_at, change_count)
SELECT h.event_id, h.bookmaker_slug, h.betpawa_market_id, h.line, h.betpawa_market_name, h.outcomes, h.market_groups,
    '%s'::timestamptz + %d * %s, h.captured_at, NULL, 1
FROM (%s) m
CROSS JOIN LATERAL (SELECT * FROM market_odds_history h
    WHERE h.event_id = m.event_id AND h.bookmaker_slug = m.bookmaker_slug AND h.betpawa_market_id = m.market_id
        AND COALESCE(h.line, 0) = COALESCE(m.line, 0)
    ORDER BY h.captured_at DESC LIMIT 1) h`, start, slots-1, every, markets),
	)
	// Statistics for the planner; the history partitions without their
	// jsonb column, which would take most of the time.
	s.exec(`ANALYZE market_odds_current, market_scrapes`)
	parts, err := s.Partitions(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range parts {
		cols := "(event_id, bookmaker_slug, betpawa_market_id, line, captured_at)"
		if p.Table == "market_scrape_log" {
			cols = ""
		}
		s.exec("ANALYZE " + pgx.Identifier{p.Name}.Sanitize() + " " + cols)
	}
}

// execAll runs statements in one transaction, with the test schema first
// on the search path.
func (s *testStore) execAll(stmts ...string) {
	s.t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pgtest.Pool(s.t), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%.60s...: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// distinctOn is the baseline: the state of every market of an event at T
// from one DISTINCT ON over the event's history up to T, seen at from max()
// over its scrape log up to T.
type distinctOn struct {
	s   *testStore
	sql string
}

func newDistinctOn(s *testStore) *distinctOn {
	history := pgx.Identifier{s.schema, "market_odds_history"}.Sanitize()
	log := pgx.Identifier{s.schema, "market_scrape_log"}.Sanitize()
	return &distinctOn{s: s, sql: `SELECT h.event_id, h.bookmaker_slug, h.betpawa_market_id, h.line, h.betpawa_market_name,
    h.outcomes, h.market_groups, h.handicap_type, h.handicap_home, h.handicap_away,
    h.captured_at, GREATEST(h.captured_at, l.seen), h.unavailable
FROM (SELECT DISTINCT ON (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)) *
    FROM ` + history + ` WHERE event_id = $1 AND captured_at <= $2
    ORDER BY event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at DESC) h
LEFT JOIN (SELECT bookmaker_slug, max(scraped_at) AS seen FROM ` + log + `
    WHERE event_id = $1 AND scraped_at <= $2 GROUP BY bookmaker_slug) l ON l.bookmaker_slug = h.bookmaker_slug
ORDER BY h.event_id, h.bookmaker_slug COLLATE "C", h.betpawa_market_id COLLATE "C", COALESCE(h.line, 0)`}
}

func (d *distinctOn) marketsAt(ctx context.Context, event int64, at time.Time) ([]marketodds.MarketState, error) {
	rows, err := pgtest.Pool(d.s.t).Query(ctx, d.sql, event, at)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (marketodds.MarketState, error) {
		var st marketodds.MarketState
		var hType *string
		var hHome, hAway *float64
		err := row.Scan(&st.EventID, &st.Bookmaker, &st.MarketID, &st.Line, &st.Name, &st.Outcomes, &st.Groups,
			&hType, &hHome, &hAway, &st.ChangedAt, &st.SeenAt, &st.Unavailable)
		if hType != nil {
			st.Handicap = &marketodds.Handicap{Type: *hType}
			if hHome != nil {
				st.Handicap.Home = *hHome
			}
			if hAway != nil {
				st.Handicap.Away = *hAway
			}
		}
		st.ChangedAt, st.SeenAt = st.ChangedAt.UTC(), st.SeenAt.UTC()
		return st, err
	})
}
