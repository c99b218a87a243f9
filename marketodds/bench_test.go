package marketodds_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgbouncer"
	"github.com/oddsledger/oddsledger/internal/pgserver"
	"github.com/oddsledger/oddsledger/marketodds"
)

type benchConfig struct {
	events, batch, cycles, baselineEvents int
	change                                float64
	pgss, explain                         bool
	settings                              []string // extra server settings
}

// benchServerOptions are the benchmark server's: durable (fsync,
// synchronous_commit and full_page_writes on), shared_buffers 1GB, and
// ODDSLEDGER_BENCH_SETTINGS.
func benchServerOptions(cfg benchConfig) pgserver.Options {
	opts := pgserver.Options{Durable: true, SharedBuffers: "1GB", Settings: slices.Clone(cfg.settings)}
	if cfg.pgss {
		opts.Settings = append(opts.Settings, "shared_preload_libraries=pg_stat_statements",
			"pg_stat_statements.track_utility=off", "pg_stat_statements.track_planning=on", "track_io_timing=on")
	}
	return opts
}

func benchConfigFromEnv(b *testing.B) benchConfig {
	b.Helper()
	envInt := func(name string, def, lo int) int {
		s := os.Getenv(name)
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo {
			b.Fatalf("%s=%q: want an integer >= %d", name, s, lo)
		}
		return n
	}
	c := benchConfig{
		events: envInt("ODDSLEDGER_BENCH_EVENTS", 2000, 1),
		batch:  envInt("ODDSLEDGER_BENCH_BATCH", 5000, 1),
		cycles: envInt("ODDSLEDGER_BENCH_CYCLES", 10, 2),
		change: 0.05,
	}
	c.baselineEvents = min(envInt("ODDSLEDGER_BENCH_BASELINE_EVENTS", c.events, 1), c.events)
	if s := os.Getenv("ODDSLEDGER_BENCH_CHANGE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 1 {
			b.Fatalf("ODDSLEDGER_BENCH_CHANGE=%q: want a number in [0, 1]", s)
		}
		c.change = f
	}
	if s := os.Getenv("ODDSLEDGER_BENCH_SETTINGS"); s != "" {
		c.settings = strings.Split(s, ",")
	}
	c.pgss = os.Getenv("ODDSLEDGER_BENCH_PGSS") == "1"
	c.explain = os.Getenv("ODDSLEDGER_BENCH_EXPLAIN") == "1"
	return c
}

// benchMetrics are one scenario's results.
type benchMetrics struct {
	lib, base, copy                float64 // rows/s, steady-state cycle
	scrapes                        float64 // rows/s, steady-state cycle, ConfirmScrapes
	exec, pgb                      float64 // rows/s, steady-state cycle, pgx exec mode: direct, through PgBouncer
	hasPgb                         bool    // a PgBouncer was there to measure pgb
	walLib, walScrapes             float64 // MB of WAL, steady-state cycle
	walCopy, walBase               float64 // MB of WAL, steady-state cycle (the baseline's scaled to the whole cycle)
	cpuLib, cpuCopy, cpuScrapes    float64 // CPU seconds (Go process + server processes), steady-state cycle
	cpuExec, cpuPgb                float64 // the same (PgBouncer's own CPU not counted)
	firstLib, firstCopy            float64 // rows/s, first load
	hist, histCopy                 float64 // rows/s, changes only
	libLast                        float64 // rows/s, the last storage cycle
	hot                            float64 // n_tup_hot_upd / n_tup_upd, last cycle
	curPerMarket, curGrowth        float64 // bytes
	histPerChange, histSteadyPerCh float64 // bytes
	scrapeLogPerScrape             float64 // bytes: scrape log and market_scrapes per scrape logged
}

// BenchmarkCycle measures the write path on a steady-state scrape cycle
// against a throwaway PostgreSQL of its own (internal/pgserver: fsync on,
// shared_buffers 1GB, TCP loopback; one server per run, so -count N gives N
// servers), and compares ways of writing the same rows onto the same
// starting state on the same server:
//
//  1. lib: Store.WriteMarketBatch (ConfirmMarkets, pgx's default
//     cache_statement mode), one call per batch of ODDSLEDGER_BENCH_BATCH
//     writes (default 5,000);
//  2. scrapes: the same with Config.Confirm = ConfirmScrapes: only the ~5%
//     changed markets are written, plus one market_scrapes upsert and one
//     market_scrape_log row per (event, bookmaker) scrape;
//  3. exec: lib on a pool whose DefaultQueryExecMode is pgx's exec mode
//     (what PgBouncer 1.18 needs in transaction pooling), direct;
//  4. pgb: the same through a PgBouncer (internal/pgbouncer, transaction
//     pooling) in front of the same server; left out, with a log line,
//     when there is no pgbouncer binary or ODDSLEDGER_BENCH_PGBOUNCER=0;
//  5. base: the replaced system's way, the baseline: per batch one
//     transaction holding one INSERT … ON CONFLICT (event_id,
//     bookmaker_slug, betpawa_market_id, COALESCE(line, 0)) DO UPDATE round
//     trip per market (data columns move only for a changed market) and a
//     multi-row INSERT … VALUES of the batch's changed rows into history
//     (chunks of at most 5,000 rows, under the 65,535-parameter limit);
//  6. copy: raw CopyFrom of the same rows, one call per batch, into an
//     unindexed table with market_odds_current's columns: the limit.
//
// Run it (one iteration is a whole scenario, several minutes at the
// default size; ns/op is suppressed, the metrics below are what count):
//
//	go test -run '^$' -bench Cycle -benchtime 1x -count 1 -timeout 60m ./marketodds
//	go test -run '^$' -bench Cycle -benchtime 1x -count 6 -timeout 90m ./marketodds | tee bench.txt
//	benchstat bench.txt   # go install golang.org/x/perf/cmd/benchstat@latest
//
// A quick run: ODDSLEDGER_BENCH_EVENTS=200 go test -run '^$' -bench Cycle -benchtime 1x ./marketodds
//
// BenchmarkExecModes (bench_modes_test.go) takes the exec mode apart;
// BenchmarkWriteFloor (bench_floor_test.go) measures, on the same
// scenario, the least SQL that could store the same rows, which bounds the
// ratios to the raw COPY that any write path can reach.
//
// The benchmark's own log keeps a short summary (targets met or missed);
// the detailed log of every phase (rows/s, WAL, CPU, HOT per cycle, sizes,
// and the optional statement statistics and plans) goes to the file named
// in the summary ($TMPDIR/oddsledger-bench-cycle.log, or
// ODDSLEDGER_BENCH_LOG), and with -v to stdout as well.
//
// Environment (all optional):
//
//	ODDSLEDGER_BENCH_EVENTS           events per cycle (default 2000; x 3 bookmakers x 50 markets)
//	ODDSLEDGER_BENCH_BATCH            writes per batch for every way (default 5000)
//	ODDSLEDGER_BENCH_CHANGE           share of markets changed per cycle (default 0.05)
//	ODDSLEDGER_BENCH_CYCLES           cycles written by the library for the storage figures (default 10)
//	ODDSLEDGER_BENCH_BASELINE_EVENTS  the baseline writes only the cycle's writes of the first N events
//	                                  (a prefix of its batches) and its rows/s come from those
//	                                  (default: every event, the whole cycle)
//	ODDSLEDGER_BENCH_PGBOUNCER=0      leave PgBouncer out
//	ODDSLEDGER_BENCH_SETTINGS         extra server settings, comma-separated (wal_compression=lz4,...)
//	ODDSLEDGER_BENCH_PGSS=1           load pg_stat_statements and log the top statements of each phase
//	ODDSLEDGER_BENCH_EXPLAIN=1        after the measurements, log EXPLAIN (ANALYZE, BUFFERS, WAL) of the
//	                                  library's statements for one batch of one more cycle (auto_explain)
//
// The scenario (workload: see benchdata_test.go). Autovacuum is off
// (server-wide) until the storage phase, so that no way is timed while the
// dead rows another way left are vacuumed:
//
//   - first load: cycle 1 (every market new, every write Changed) is
//     copied into the empty unindexed table (first-copy-rows/s) and written
//     by the library into a fresh schema A (first-lib-rows/s); the library
//     also loads it, untimed, into schema B and into the schema of each of
//     scrapes, exec and pgb (each through its own pool). Then VACUUM
//     ANALYZE of every table and a CHECKPOINT.
//   - steady state: cycle 2 is copied (copy-rows/s), written by the library
//     into A (lib-rows/s), by scrapes, exec and pgb into theirs, and by the
//     baseline into B (base-rows/s), in that order, each right after a
//     CHECKPOINT (so each pays the full-page images of the pages it
//     touches, as a cycle between two checkpoints does). A and B are then
//     checked to hold the same rows, and every variant to leave what A left
//     (history, and market_odds_live, which reads the same in both
//     confirmation modes). lib/copy, lib/base, scrapes/copy, exec/lib,
//     pgb/lib and pgb/exec are ratios of rows/s (each run's ratio; rows/s
//     count every market of the cycle, written or not). *-WAL-MB/cycle is
//     the WAL each way wrote (pg_current_wal_lsn before and after;
//     base-WAL-MB/cycle scaled to the whole cycle when the baseline wrote a
//     prefix); *-cpu-s/cycle the CPU seconds of this process and of the
//     server's processes (from /proc; PgBouncer's not counted), which,
//     unlike rows/s, the other work on a shared machine hardly moves.
//     Cycle 2 starts from freshly vacuumed pages with fillfactor 50's free
//     space (migration 0004): room for the next version of every row, so
//     its updates are HOT from the first cycle on (at fillfactor 70 only
//     ~44% were, and the steady state came from cycle ~5 on).
//   - history: hist-rows/s is WriteMarketBatch of only changed writes (the
//     ~5% of cycle 2, with new odds, half a cycle later) into B: each write
//     upserts its current row with data and appends one history row; the
//     rate is history rows appended per second. It runs right after the
//     baseline, without a CHECKPOINT in between (B's pages already had their
//     full-page images written, as a cycle's confirmations would have done).
//     hist-copy-rows/s is a raw COPY of the same rows into an unindexed
//     table with history's columns. With ODDSLEDGER_BENCH_PGSS=1 the
//     server time of each statement is logged, which separates the history
//     append from the current upsert.
//   - storage: autovacuum on again, the library writes cycles
//     3..ODDSLEDGER_BENCH_CYCLES into A.
//     hot/upd is n_tup_hot_upd / n_tup_upd of market_odds_current over the
//     last cycle (pg_stat_user_tables deltas; the writer's backend is told
//     to flush with pg_stat_force_next_flush and the counters are polled
//     until they account for every row the cycle updated). cur-B/market is
//     pg_total_relation_size of current (heap + indexes + FSM/VM) per
//     market, cur-growth-B its growth during the last cycle.
//     hist-B/change is the sum of pg_total_relation_size over
//     pg_partition_tree(history) per history row (first load included);
//     hist-steady-B/change is the same over the rows cycles 2..N added.
//     scrapelog-B/scrape is pg_total_relation_size summed over
//     pg_partition_tree(market_scrape_log), plus market_scrapes, per scrape
//     logged (every cycle's scrapes; both confirmation modes log the same).
//
// Targets (issues "performance", #11 and #14): lib/copy >= 0.45,
// scrapes/copy >= 2.0, lib/base >= 8, first-lib/copy >= 0.25,
// pgb/lib >= 0.90, hot/upd >= 0.90, current stops growing,
// hist-B/change <= 180. The benchmark reports; it asserts no timing.
func BenchmarkCycle(b *testing.B) {
	cfg := benchConfigFromEnv(b)
	b.Logf("config: events=%d (markets/cycle=%d) batch=%d change=%.3f cycles=%d baseline_events=%d pgss=%v explain=%v settings=%q "+
		"(env ODDSLEDGER_BENCH_EVENTS, _BATCH, _CHANGE, _CYCLES, _BASELINE_EVENTS, _PGSS=1, _EXPLAIN=1, _SETTINGS, _PGBOUNCER=0)",
		cfg.events, cfg.events*len(benchBookmakers)*marketsPerGroup, cfg.batch, cfg.change, cfg.cycles,
		cfg.baselineEvents, cfg.pgss, cfg.explain, cfg.settings)

	logPath, err := openBenchLog()
	if err != nil {
		b.Fatalf("benchmark log: %v", err)
	}
	b.Logf("detailed log (every phase, sizes, statements): %s (ODDSLEDGER_BENCH_LOG; also on stdout with -v)", logPath)

	srv, bouncer := startBenchServers(b, cfg, "pgb-* metrics are not reported")

	var sum benchSums
	for i := range b.N {
		sum.add(runCycleScenario(b, srv, bouncer, cfg, i))
	}
	n := float64(b.N)
	report := func(v float64, unit string) { b.ReportMetric(v/n, unit) }
	b.ReportMetric(0, "ns/op") // one op is a whole scenario: meaningless
	report(sum.lib, "lib-rows/s")
	report(sum.base, "base-rows/s")
	report(sum.copy, "copy-rows/s")
	report(sum.ratioLibCopy, "lib/copy") // ratios: the mean of each iteration's
	report(sum.ratioLibBase, "lib/base")
	report(sum.scrapes, "scrapes-rows/s")
	report(sum.ratioScrapesCopy, "scrapes/copy")
	report(sum.exec, "exec-rows/s")
	report(sum.ratioExecLib, "exec/lib")
	if sum.pgbRuns == b.N {
		report(sum.pgb, "pgb-rows/s")
		report(sum.ratioPgbLib, "pgb/lib")
		report(sum.ratioPE, "pgb/exec")
		report(sum.cpuPgb, "pgb-cpu-s/cycle")
	}
	report(sum.walLib, "lib-WAL-MB/cycle")
	report(sum.walScrapes, "scrapes-WAL-MB/cycle")
	report(sum.walCopy, "copy-WAL-MB/cycle")
	report(sum.walBase, "base-WAL-MB/cycle")
	report(sum.cpuLib, "lib-cpu-s/cycle")
	report(sum.cpuCopy, "copy-cpu-s/cycle")
	report(sum.cpuScrapes, "scrapes-cpu-s/cycle")
	report(sum.cpuExec, "exec-cpu-s/cycle")
	report(sum.firstLib, "first-lib-rows/s")
	report(sum.firstCopy, "first-copy-rows/s")
	report(sum.ratioFirst, "first-lib/copy")
	report(sum.hist, "hist-rows/s")
	report(sum.histCopy, "hist-copy-rows/s")
	report(sum.libLast, "lib-last-rows/s")
	report(sum.hot, "hot/upd")
	report(sum.curPerMarket, "cur-B/market")
	report(sum.curGrowth, "cur-growth-B")
	report(sum.histPerChange, "hist-B/change")
	report(sum.histSteadyPerCh, "hist-steady-B/change")
	report(sum.scrapeLogPerScrape, "scrapelog-B/scrape")
}

// startBenchServers starts the benchmark's own server and, when there is a
// pgbouncer binary (Debian's pgbouncer package) and
// ODDSLEDGER_BENCH_PGBOUNCER is not 0, a PgBouncer in front of it (nil
// otherwise, logged with withoutBouncer); both stop when the benchmark ends.
func startBenchServers(b *testing.B, cfg benchConfig, withoutBouncer string) (*pgserver.Server, *pgbouncer.Bouncer) {
	b.Helper()
	startCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := pgserver.Start(startCtx, benchServerOptions(cfg))
	cancel()
	if errors.Is(err, pgserver.ErrNoBinaries) {
		b.Skipf("%s needs its own PostgreSQL server: %v", b.Name(), err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := srv.Close(); err != nil {
			b.Errorf("stop the benchmark's server: %v", err)
		}
	})
	bouncer, why, err := startBouncer(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	if bouncer == nil {
		b.Logf("no PgBouncer (%s): %s", why, withoutBouncer)
		return srv, nil
	}
	b.Cleanup(func() {
		if err := bouncer.Close(); err != nil {
			b.Errorf("stop the benchmark's PgBouncer: %v", err)
		}
	})
	return srv, bouncer
}

// benchSums accumulates benchMetrics over iterations.
type benchSums struct {
	benchMetrics
	pgbRuns                                              int
	ratioLibCopy, ratioLibBase, ratioFirst               float64
	ratioScrapesCopy, ratioExecLib, ratioPgbLib, ratioPE float64
}

func (s *benchSums) add(m benchMetrics) {
	s.lib += m.lib
	s.base += m.base
	s.copy += m.copy
	s.scrapes += m.scrapes
	s.exec += m.exec
	s.walLib += m.walLib
	s.walScrapes += m.walScrapes
	s.walCopy += m.walCopy
	s.walBase += m.walBase
	s.cpuLib += m.cpuLib
	s.cpuCopy += m.cpuCopy
	s.cpuScrapes += m.cpuScrapes
	s.cpuExec += m.cpuExec
	s.firstLib += m.firstLib
	s.firstCopy += m.firstCopy
	s.hist += m.hist
	s.histCopy += m.histCopy
	s.libLast += m.libLast
	s.hot += m.hot
	s.curPerMarket += m.curPerMarket
	s.curGrowth += m.curGrowth
	s.histPerChange += m.histPerChange
	s.histSteadyPerCh += m.histSteadyPerCh
	s.scrapeLogPerScrape += m.scrapeLogPerScrape
	s.ratioLibCopy += m.lib / m.copy
	s.ratioLibBase += m.lib / m.base
	s.ratioFirst += m.firstLib / m.firstCopy
	s.ratioScrapesCopy += m.scrapes / m.copy
	s.ratioExecLib += m.exec / m.lib
	if m.hasPgb {
		s.pgbRuns++
		s.pgb += m.pgb
		s.cpuPgb += m.cpuPgb
		s.ratioPgbLib += m.pgb / m.lib
		s.ratioPE += m.pgb / m.exec
	}
}

// benchEnv is one scenario's connections and schemas.
type benchEnv struct {
	b       *testing.B
	ctx     context.Context
	cfg     benchConfig
	url     string
	admin   *pgxpool.Pool      // DDL, VACUUM, CHECKPOINT, COPY, statistics
	poolA   *pgxpool.Pool      // the library's store in A: one connection
	poolB   *pgxpool.Pool      // the library's store and the baseline in B: one connection
	bouncer *pgbouncer.Bouncer // PgBouncer in front of the server, transaction pooling; nil: none
	schemaA string
	schemaB string
	sink    string
	storeA  *marketodds.Store
	storeB  *marketodds.Store
}

func (e *benchEnv) exec(sql string, args ...any) {
	e.b.Helper()
	if _, err := e.admin.Exec(e.ctx, sql, args...); err != nil {
		e.b.Fatalf("%s: %v", sql, err)
	}
}

func (e *benchEnv) queryInt(sql string, args ...any) int64 {
	e.b.Helper()
	var n int64
	if err := e.admin.QueryRow(e.ctx, sql, args...).Scan(&n); err != nil {
		e.b.Fatalf("%s: %v", sql, err)
	}
	return n
}

// benchLog is the detailed log of BenchmarkCycle (every phase, sizes, and
// the pg_stat_statements and auto_explain output): testing.B keeps only 10
// lines of a benchmark's log, and anything printed to stdout while a
// benchmark runs lands between its name and its results (with -count > 1),
// where benchstat cannot parse it. So the log goes to a file, and to stdout
// as well under -v, where go test prints the name after the results.
var benchLog struct {
	once sync.Once
	path string
	f    *os.File
	err  error
}

func openBenchLog() (string, error) {
	benchLog.once.Do(func() {
		benchLog.path = cmp.Or(os.Getenv("ODDSLEDGER_BENCH_LOG"), filepath.Join(os.TempDir(), "oddsledger-bench-cycle.log"))
		benchLog.f, benchLog.err = os.Create(benchLog.path)
	})
	return benchLog.path, benchLog.err
}

// logf writes a line to the detailed log.
func (e *benchEnv) logf(format string, args ...any) {
	line := "    " + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "\n    ") + "\n"
	if benchLog.f != nil {
		_, _ = benchLog.f.WriteString(line)
	}
	if testing.Verbose() {
		fmt.Print(line)
	}
}

func (e *benchEnv) log(s string) { e.logf("%s", s) }

func (e *benchEnv) checkpoint() { e.b.Helper(); e.exec("CHECKPOINT") }

func (e *benchEnv) walLSN() string {
	var lsn string
	if err := e.admin.QueryRow(e.ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		e.b.Fatal(err)
	}
	return lsn
}

func (e *benchEnv) walSince(lsn string) float64 {
	return float64(e.queryInt("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint", lsn)) / (1 << 20)
}

func newBenchPool(b *testing.B, url string, maxConns int32, configure func(*pgxpool.Config)) *pgxpool.Pool {
	b.Helper()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	pc.MaxConns = maxConns
	if configure != nil {
		configure(pc)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		b.Fatal(err)
	}
	return pool
}

func runCycleScenario(b *testing.B, srv *pgserver.Server, bouncer *pgbouncer.Bouncer, cfg benchConfig, iter int) benchMetrics {
	ctx := context.Background()
	e := &benchEnv{
		b: b, ctx: ctx, cfg: cfg, url: srv.URL(), bouncer: bouncer,
		schemaA: fmt.Sprintf("bench_lib_%d", iter),
		schemaB: fmt.Sprintf("bench_base_%d", iter),
		sink:    fmt.Sprintf("bench_copy_%d", iter),
	}
	e.admin = newBenchPool(b, e.url, 4, nil)
	defer e.admin.Close()
	// One connection each: the write paths are single writers, and the
	// statistics of the library's writes are flushed on that connection.
	e.poolA = newBenchPool(b, e.url, 1, nil)
	defer e.poolA.Close()
	e.poolB = newBenchPool(b, e.url, 1, nil)
	defer e.poolB.Close()
	// The variants: the same steady cycle written by the library in other
	// ways, each in a schema of its own with the same first load.
	specs := []variantSpec{
		{name: "scrapes", about: "ConfirmScrapes", confirm: marketodds.ConfirmScrapes},
		{name: "exec", about: "pgx exec mode (what PgBouncer 1.18's transaction pooling needs), direct", execMode: pgx.QueryExecModeExec},
	}
	if e.bouncer != nil {
		specs = append(specs, variantSpec{name: "pgb", about: "pgx exec mode through PgBouncer (transaction pooling)",
			execMode: pgx.QueryExecModeExec, viaBouncer: true})
	}
	var variants []*benchVariant
	schemas := []string{e.schemaA, e.schemaB, e.sink}
	defer func() {
		for _, v := range variants {
			v.close()
		}
		for _, s := range schemas {
			if _, err := e.admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
				b.Errorf("drop schema %s: %v", s, err)
			}
		}
	}()
	if cfg.pgss {
		e.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	}
	// Autovacuum off while the ways are timed one after the other (see
	// setAutovacuum); on again for the storage cycles.
	e.setAutovacuum(false)

	newStore := func(pool *pgxpool.Pool, schema string) *marketodds.Store {
		s, err := marketodds.NewStore(pool, &marketodds.Config{Schema: schema, Now: func() time.Time { return benchBase }})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		return s
	}
	e.storeA = newStore(e.poolA, e.schemaA)
	e.storeB = newStore(e.poolB, e.schemaB)
	for _, spec := range specs {
		v := e.newVariant(spec, iter)
		variants = append(variants, v)
		schemas = append(schemas, v.schema)
	}
	curA := pgx.Identifier{e.schemaA, "market_odds_current"}.Sanitize()
	histA := pgx.Identifier{e.schemaA, "market_odds_history"}.Sanitize()
	curB := pgx.Identifier{e.schemaB, "market_odds_current"}.Sanitize()
	histB := pgx.Identifier{e.schemaB, "market_odds_history"}.Sanitize()
	sinkCur := pgx.Identifier{e.sink, "current"}
	sinkHist := pgx.Identifier{e.sink, "history"}
	e.exec("CREATE SCHEMA " + pgx.Identifier{e.sink}.Sanitize())
	e.exec("CREATE TABLE " + sinkCur.Sanitize() + " (LIKE " + curA + ")")
	e.exec("CREATE TABLE " + sinkHist.Sanitize() + " (LIKE " + histA + ")")

	e.logf("BenchmarkCycle scenario %d at %s: events=%d batch=%d change=%.3f cycles=%d baseline_events=%d; load average %s",
		iter, time.Now().Format(time.RFC3339), cfg.events, cfg.batch, cfg.change, cfg.cycles, cfg.baselineEvents, loadAverage())
	var m benchMetrics
	genStart := time.Now()
	wl := newBenchWorkload(cfg.events, cfg.change)
	cycle1 := wl.next()
	cycle2 := wl.next()
	if !asciiOnly(cycle1) {
		b.Fatal("workload outcome names must be plain ASCII for benchOutcomesJSON")
	}
	markets := len(cycle1)
	changed2 := countChanged(cycle2)
	e.logf("workload: %d markets/cycle, cycle 2 has %d changed (%.2f%%); generated in %s",
		markets, changed2, 100*float64(changed2)/float64(markets), time.Since(genStart).Round(time.Millisecond))

	// First load.
	e.exec("TRUNCATE " + sinkCur.Sanitize())
	e.checkpoint()
	ps := e.timeCopy(sinkCur, cycle1, copyCurrentRow)
	m.firstCopy = perSecond(markets, ps.d)
	e.logf("first load, copy:    %8.0f rows/s  (%d rows in %s)", m.firstCopy, markets, ps)
	e.checkpoint()
	e.pgssReset()
	ps, _ = e.timeLib(e.storeA, cycle1, 1)
	m.firstLib = perSecond(markets, ps.d)
	e.logf("first load, library: %8.0f rows/s  (%d rows in %s) = %.1f%% of copy",
		m.firstLib, markets, ps, 100*m.firstLib/m.firstCopy)
	e.pgssTop("first load, library")
	e.checkpoint()
	ps, _ = e.timeLib(e.storeB, cycle1, 1)
	e.logf("first load, library into B (untimed twin): %.0f rows/s (%s)", perSecond(markets, ps.d), ps)
	for _, v := range variants {
		e.checkpoint()
		ps, _ := e.timeLib(v.store, cycle1, 1)
		e.logf("first load, library into %s (untimed twin, %s): %.0f rows/s (%s)", v.name, v.about, perSecond(markets, ps.d), ps)
	}
	for _, schema := range schemas {
		if schema == e.sink {
			continue
		}
		for _, t := range schemaTables(schema) {
			e.exec("VACUUM (ANALYZE) " + t)
		}
	}
	histBytes1 := e.historyBytes(e.schemaA)
	histRows1 := e.queryInt("SELECT count(*) FROM " + histA)
	curBytes := []int64{e.queryInt("SELECT pg_total_relation_size($1::regclass)", curA)}

	// Steady state: cycle 2, every way.
	e.exec("TRUNCATE " + sinkCur.Sanitize())
	e.checkpoint()
	ps = e.timeCopy(sinkCur, cycle2, copyCurrentRow)
	m.copy, m.walCopy, m.cpuCopy = perSecond(markets, ps.d), ps.walMB, ps.cpu()
	e.logf("cycle 2, copy:       %8.0f rows/s  (%d rows in %s)", m.copy, markets, ps)

	e.checkpoint()
	st0 := e.tableStats(e.poolA, curA, 0)
	e.pgssReset()
	ps, upserted := e.timeLib(e.storeA, cycle2, 2)
	m.lib, m.walLib, m.cpuLib = perSecond(markets, ps.d), ps.walMB, ps.cpu()
	e.pgssTop("cycle 2, library")
	st1 := e.tableStats(e.poolA, curA, st0.upd+upserted)
	e.logf("cycle 2, library:    %8.0f rows/s  (%d rows in %s, HOT %s)", m.lib, markets, ps, st1.sub(st0))
	curBytes = append(curBytes, e.queryInt("SELECT pg_total_relation_size($1::regclass)", curA))

	for _, v := range variants {
		e.checkpoint()
		e.pgssReset()
		ps, _ := e.timeLib(v.store, cycle2, 2)
		e.pgssTop("cycle 2, " + v.name)
		rate := perSecond(markets, ps.d)
		e.logf("cycle 2, %-8s     %8.0f rows/s  (%s: %d rows in %s) = %.1f%% of copy, %.1f%% of library",
			v.name+":", rate, v.about, markets, ps, 100*rate/m.copy, 100*rate/m.lib)
		switch v.name {
		case "scrapes":
			m.scrapes, m.walScrapes, m.cpuScrapes = rate, ps.walMB, ps.cpu()
		case "exec":
			m.exec, m.cpuExec = rate, ps.cpu()
		case "pgb":
			m.pgb, m.cpuPgb, m.hasPgb = rate, ps.cpu(), true
		}
	}

	e.checkpoint()
	baseWrites := cycle2
	for len(baseWrites) > 0 && baseWrites[len(baseWrites)-1].EventID >= 1_000_000+int64(cfg.baselineEvents) {
		baseWrites = baseWrites[:len(baseWrites)-1]
	}
	e.pgssReset()
	ps = e.timeBaseline(e.schemaB, baseWrites)
	m.base = perSecond(len(baseWrites), ps.d)
	m.walBase = ps.walMB * float64(markets) / float64(len(baseWrites))
	e.pgssTop("cycle 2, baseline")
	scope := ""
	if len(baseWrites) < markets {
		scope = fmt.Sprintf("; on the first %d events only (ODDSLEDGER_BENCH_BASELINE_EVENTS); WAL scaled to the cycle: %.0f MB",
			cfg.baselineEvents, m.walBase)
	}
	e.logf("cycle 2, baseline:   %8.0f rows/s  (%d rows in %s%s)", m.base, len(baseWrites), ps, scope)
	e.sameRows(curA, curB, histA, histB, 1_000_000+int64(cfg.baselineEvents))
	for _, v := range variants {
		e.sameAs(e.schemaA, v)
	}
	if len(baseWrites) < markets {
		// B must hold cycle 2 in full before the history phase.
		e.timeLib(e.storeB, cycle2[len(baseWrites):], 2)
	}
	// The variants are done: give their space and connections back.
	for _, v := range variants {
		v.close()
		e.exec("DROP SCHEMA " + pgx.Identifier{v.schema}.Sanitize() + " CASCADE")
	}
	schemas = schemas[:3]
	variants = nil

	// History: changes only.
	// No CHECKPOINT here: B's current pages were all dirtied (and had
	// their full-page images written) by the baseline, as a cycle's
	// confirmations would have done; a checkpoint now would make this
	// phase, which touches ~5% of rows scattered over every page, mostly a
	// measure of full-page writes.
	onlyChanges := changesOnly(cycle2)
	e.pgssReset()
	ps, _ = e.timeLib(e.storeB, onlyChanges, 100)
	e.pgssTop("changes only, library")
	m.hist = perSecond(len(onlyChanges), ps.d)
	e.logf("changes only, library: %6.0f rows/s  (%d rows in %s; current upsert with data + history append)",
		m.hist, len(onlyChanges), ps)
	e.exec("TRUNCATE " + sinkHist.Sanitize())
	e.checkpoint()
	ps = e.timeCopy(sinkHist, onlyChanges, copyHistoryRow)
	m.histCopy = perSecond(len(onlyChanges), ps.d)
	e.logf("changes only, copy:    %6.0f rows/s  (%d rows in %s; unindexed table with history's columns)",
		m.histCopy, len(onlyChanges), ps)

	// Storage: cycles 3..N by the library into A.
	e.setAutovacuum(true)
	var hot tabStats
	for k := 3; k <= cfg.cycles; k++ {
		ws := wl.next()
		before := e.tableStats(e.poolA, curA, 0)
		if k == cfg.cycles {
			e.pgssReset()
		}
		ps, upserted := e.timeLib(e.storeA, ws, int64(k))
		after := e.tableStats(e.poolA, curA, before.upd+upserted)
		hot = after.sub(before)
		curBytes = append(curBytes, e.queryInt("SELECT pg_total_relation_size($1::regclass)", curA))
		m.libLast = perSecond(len(ws), ps.d)
		e.logf("cycle %d, library:    %8.0f rows/s  (%d changed, %s, HOT %s, current %.1f MB)",
			k, m.libLast, countChanged(ws), ps, hot, float64(curBytes[len(curBytes)-1])/(1<<20))
	}
	if cfg.cycles == 2 {
		hot = st1.sub(st0)
		m.libLast = m.lib
	}
	e.pgssTop(fmt.Sprintf("cycle %d, library", cfg.cycles))
	m.hot = hot.ratio()
	last := curBytes[len(curBytes)-1]
	m.curPerMarket = float64(last) / float64(markets)
	m.curGrowth = float64(last - curBytes[len(curBytes)-2])
	histBytes := e.historyBytes(e.schemaA)
	histRows := e.queryInt("SELECT count(*) FROM " + histA)
	m.histPerChange = float64(histBytes) / float64(histRows)
	if histRows > histRows1 {
		m.histSteadyPerCh = float64(histBytes-histBytes1) / float64(histRows-histRows1)
	}
	e.logSizes(curA, histA, markets, histRows)
	logBytes, newestBytes, scrapes := e.scrapeLogBytes(e.schemaA)
	m.scrapeLogPerScrape = float64(logBytes+newestBytes) / float64(scrapes)
	e.logf("scrape log: %d scrapes over %d cycles; log %.1f MB (%.0f B/scrape), market_scrapes %.1f MB; together %.0f B/scrape",
		scrapes, cfg.cycles, float64(logBytes)/(1<<20), float64(logBytes)/float64(scrapes), float64(newestBytes)/(1<<20),
		m.scrapeLogPerScrape)

	if cfg.explain {
		e.explain(wl.next())
	}

	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	b.Logf("SUMMARY steady cycle, ConfirmMarkets: lib %.0f rows/s, baseline %.0f, copy %.0f; lib/copy %.1f%% (target >= 45%%: %s), lib/base %.1fx (target >= 8x: %s); WAL %.0f MB (copy %.0f, baseline %.0f)",
		m.lib, m.base, m.copy, 100*m.lib/m.copy, mark(m.lib >= 0.45*m.copy), m.lib/m.base, mark(m.lib >= 8*m.base),
		m.walLib, m.walCopy, m.walBase)
	b.Logf("SUMMARY steady cycle, ConfirmScrapes: %.0f rows/s, scrapes/copy %.2fx (target >= 2.0: %s); WAL %.1f MB; scrape log %.0f B/scrape",
		m.scrapes, m.scrapes/m.copy, mark(m.scrapes >= 2*m.copy), m.walScrapes, m.scrapeLogPerScrape)
	pgbLine := "no PgBouncer"
	if m.hasPgb {
		pgbLine = fmt.Sprintf("through PgBouncer %.0f rows/s, pgb/lib %.1f%% (target >= 90%%: %s)", m.pgb, 100*m.pgb/m.lib, mark(m.pgb >= 0.9*m.lib))
	}
	b.Logf("SUMMARY steady cycle, pgx exec mode: direct %.0f rows/s, exec/lib %.1f%%; %s", m.exec, 100*m.exec/m.lib, pgbLine)
	b.Logf("SUMMARY first load: lib %.0f rows/s, copy %.0f; lib/copy %.1f%% (target >= 25%%: %s)",
		m.firstLib, m.firstCopy, 100*m.firstLib/m.firstCopy, mark(m.firstLib >= 0.25*m.firstCopy))
	b.Logf("SUMMARY changes only: lib %.0f history rows/s, copy %.0f (%.1f%%)", m.hist, m.histCopy, 100*perSecondRatio(m.hist, m.histCopy))
	b.Logf("SUMMARY after %d cycles: HOT %.1f%% of the last cycle's updates (target >= 90%%: %s); current %.0f B/market, grew %.0f B (%.2f%%) in the last cycle; history %.0f B/change (target <= 180: %s), %.0f over cycles 2..%d",
		cfg.cycles, 100*m.hot, mark(m.hot >= 0.9), m.curPerMarket, m.curGrowth, 100*m.curGrowth/float64(last),
		m.histPerChange, mark(m.histPerChange <= 180), m.histSteadyPerCh, cfg.cycles)
	return m
}

// loadAverage is the machine's 1, 5 and 15 minute load average, for the
// log: other work on the machine shows in the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func perSecond(rows int, d time.Duration) float64 {
	if rows == 0 || d <= 0 {
		return 0
	}
	return float64(rows) / d.Seconds()
}

func perSecondRatio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func countChanged(ws []marketodds.Write) int {
	n := 0
	for i := range ws {
		if ws[i].Changed {
			n++
		}
	}
	return n
}

// timeLib writes ws with the store, in batches, and returns what it cost
// and the number of current rows upserted.
func (e *benchEnv) timeLib(s *marketodds.Store, ws []marketodds.Write, run int64) (phaseStats, int64) {
	e.b.Helper()
	var upserted int64
	m := e.mark()
	for i, batch := range benchBatches(ws, e.cfg.batch) {
		res, err := s.WriteMarketBatch(e.ctx, marketodds.Batch{Writes: batch, RunID: run, Index: i})
		if err != nil {
			e.b.Fatalf("WriteMarketBatch (run %d, batch %d): %v", run, i, err)
		}
		if len(res.Rejected) > 0 {
			e.b.Fatalf("WriteMarketBatch (run %d, batch %d): %d rejected, first: %v", run, i, len(res.Rejected), res.Rejected[0].Err)
		}
		upserted += int64(res.Upserted)
	}
	return e.since(m), upserted
}

var (
	copyCurrentCols = []string{"event_id", "bookmaker_slug", "betpawa_market_id", "line", "betpawa_market_name",
		"outcomes", "market_groups", "handicap_type", "handicap_home", "handicap_away",
		"last_confirmed_at", "last_updated_at", "unavailable_at", "change_count"}
	copyHistoryCols = []string{"event_id", "bookmaker_slug", "betpawa_market_id", "line", "betpawa_market_name",
		"outcomes", "market_groups", "handicap_type", "handicap_home", "handicap_away", "captured_at", "unavailable"}
)

type copyRowFunc struct {
	cols []string
	row  func(w *marketodds.Write, buf []byte) []any
}

var copyCurrentRow = copyRowFunc{cols: copyCurrentCols, row: func(w *marketodds.Write, buf []byte) []any {
	ht, hh, ha := benchHandicap(w.Handicap)
	changes := int32(0)
	if w.Changed {
		changes = 1
	}
	return []any{w.EventID, w.Bookmaker, w.MarketID, w.Line, w.Name, string(benchOutcomesJSON(buf, w.Outcomes)),
		w.Groups, ht, hh, ha, w.CapturedAt, w.CapturedAt, nil, changes}
}}

var copyHistoryRow = copyRowFunc{cols: copyHistoryCols, row: func(w *marketodds.Write, buf []byte) []any {
	ht, hh, ha := benchHandicap(w.Handicap)
	return []any{w.EventID, w.Bookmaker, w.MarketID, w.Line, w.Name, string(benchOutcomesJSON(buf, w.Outcomes)),
		w.Groups, ht, hh, ha, w.CapturedAt, w.Unavailable}
}}

// timeCopy copies ws into table, one CopyFrom (one transaction) per batch.
func (e *benchEnv) timeCopy(table pgx.Identifier, ws []marketodds.Write, rf copyRowFunc) phaseStats {
	e.b.Helper()
	m := e.mark()
	buf := make([]byte, 0, 512)
	for _, batch := range benchBatches(ws, e.cfg.batch) {
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(batch) {
				return nil, nil
			}
			i++
			return rf.row(&batch[i-1], buf[:0]), nil
		})
		n, err := e.admin.CopyFrom(e.ctx, table, rf.cols, src)
		if err != nil || n != int64(len(batch)) {
			e.b.Fatalf("CopyFrom %s: %d of %d rows: %v", table.Sanitize(), n, len(batch), err)
		}
	}
	return e.since(m)
}

// timeBaseline writes ws the replaced system's way into schema, in batches.
func (e *benchEnv) timeBaseline(schema string, ws []marketodds.Write) phaseStats {
	e.b.Helper()
	cur := pgx.Identifier{schema, "market_odds_current"}.Sanitize()
	hist := pgx.Identifier{schema, "market_odds_history"}.Sanitize()
	insert := `INSERT INTO ` + cur + ` AS c (event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name,
    outcomes, market_groups, handicap_type, handicap_home, handicap_away, last_confirmed_at, last_updated_at, change_count)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::text[], $8, $9, $10, $11, $12, $13)
ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)) DO UPDATE SET `
	const guard = `
WHERE c.last_confirmed_at < excluded.last_confirmed_at`
	upsertChanged := insert + `line = excluded.line, betpawa_market_name = excluded.betpawa_market_name,
    outcomes = excluded.outcomes, market_groups = excluded.market_groups, handicap_type = excluded.handicap_type,
    handicap_home = excluded.handicap_home, handicap_away = excluded.handicap_away,
    last_updated_at = excluded.last_updated_at, unavailable_at = NULL, change_count = c.change_count + 1,
    last_confirmed_at = excluded.last_confirmed_at` + guard
	upsertConfirmed := insert + `last_confirmed_at = excluded.last_confirmed_at, unavailable_at = NULL` + guard
	histHead := `INSERT INTO ` + hist + ` (event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name,
    outcomes, market_groups, handicap_type, handicap_home, handicap_away, captured_at, unavailable) VALUES `
	const histTail = `
ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at) DO NOTHING`
	const histCols = 12
	const histChunk = 5000 // 5,000 x 12 parameters < 65,535

	m := e.mark()
	var buf []byte
	for i, batch := range benchBatches(ws, e.cfg.batch) {
		err := pgx.BeginFunc(e.ctx, e.poolB, func(tx pgx.Tx) error {
			var changed []*marketodds.Write
			for j := range batch {
				w := &batch[j]
				ht, hh, ha := benchHandicap(w.Handicap)
				buf = benchOutcomesJSON(buf[:0], w.Outcomes)
				sql, changes := upsertConfirmed, int32(0)
				if w.Changed {
					sql, changes = upsertChanged, 1
					changed = append(changed, w)
				}
				if _, err := tx.Exec(e.ctx, sql, w.EventID, w.Bookmaker, w.MarketID, w.Line, w.Name, string(buf),
					w.Groups, ht, hh, ha, w.CapturedAt, w.CapturedAt, changes); err != nil {
					return err
				}
			}
			for lo := 0; lo < len(changed); lo += histChunk {
				chunk := changed[lo:min(lo+histChunk, len(changed))]
				var q strings.Builder
				q.WriteString(histHead)
				args := make([]any, 0, 1+histCols*len(chunk))
				args = append(args, pgx.QueryExecModeExec) // one round trip, no statement per chunk size
				for r, w := range chunk {
					if r > 0 {
						q.WriteString(",\n")
					}
					p := r * histCols
					fmt.Fprintf(&q, "($%d::bigint, $%d::text, $%d::text, $%d::float8, $%d::text, $%d::jsonb, $%d::text[], $%d::text, $%d::float8, $%d::float8, $%d::timestamptz, $%d::bool)",
						p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8, p+9, p+10, p+11, p+12)
					ht, hh, ha := benchHandicap(w.Handicap)
					args = append(args, w.EventID, w.Bookmaker, w.MarketID, w.Line, w.Name,
						string(benchOutcomesJSON(buf[:0], w.Outcomes)), w.Groups, ht, hh, ha, w.CapturedAt, w.Unavailable)
				}
				q.WriteString(histTail)
				if _, err := tx.Exec(e.ctx, q.String(), args...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			e.b.Fatalf("baseline batch %d: %v", i, err)
		}
	}
	return e.since(m)
}

// sameRows checks that the library (A) and the baseline (B) left the same
// current rows and history for the events the baseline wrote: the two ways
// did the same work.
func (e *benchEnv) sameRows(curA, curB, histA, histB string, eventsBelow int64) {
	e.b.Helper()
	digest := func(table string) string {
		var s string
		if err := e.admin.QueryRow(e.ctx, "SELECT count(*) || '/' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) FROM "+
			table+" t WHERE event_id < $1", eventsBelow).Scan(&s); err != nil {
			e.b.Fatal(err)
		}
		return s
	}
	if a, b := digest(curA), digest(curB); a != b {
		e.b.Fatalf("library and baseline disagree on current rows: %s vs %s", a, b)
	}
	if a, b := digest(histA), digest(histB); a != b {
		e.b.Fatalf("library and baseline disagree on history rows: %s vs %s", a, b)
	}
}

// tabStats are a table's update counters.
type tabStats struct{ upd, hot int64 }

func (s tabStats) sub(o tabStats) tabStats { return tabStats{upd: s.upd - o.upd, hot: s.hot - o.hot} }

func (s tabStats) ratio() float64 {
	if s.upd == 0 {
		return 0
	}
	return float64(s.hot) / float64(s.upd)
}

func (s tabStats) String() string {
	return fmt.Sprintf("%.1f%% of %d updates", 100*s.ratio(), s.upd)
}

// tableStats reads table's n_tup_upd and n_tup_hot_upd once they account
// for at least wantUpd updates. Statistics reach the shared counters when a
// backend flushes them, asynchronously; the writer's single connection is
// told to flush when it next goes idle, and the counters are polled.
func (e *benchEnv) tableStats(writer *pgxpool.Pool, table string, wantUpd int64) tabStats {
	e.b.Helper()
	if _, err := writer.Exec(e.ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
		e.b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s tabStats
		if err := e.admin.QueryRow(e.ctx, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = $1::regclass",
			table).Scan(&s.upd, &s.hot); err != nil {
			e.b.Fatal(err)
		}
		if s.upd >= wantUpd {
			return s
		}
		if time.Now().After(deadline) {
			e.logf("warning: %s statistics show %d updates after 30s, want %d; HOT ratio is from incomplete counters", table, s.upd, wantUpd)
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// historyBytes sums pg_total_relation_size over the history partitions (a
// partitioned parent has no storage of its own; its index is partitioned too).
func (e *benchEnv) historyBytes(schema string) int64 {
	e.b.Helper()
	return e.queryInt(`SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint
FROM pg_partition_tree($1::regclass)`, pgx.Identifier{schema, "market_odds_history"}.Sanitize())
}

func (e *benchEnv) logSizes(cur, hist string, markets int, histRows int64) {
	e.b.Helper()
	var heap, idx, total int64
	if err := e.admin.QueryRow(e.ctx, `SELECT pg_relation_size($1::regclass), pg_indexes_size($1::regclass), pg_total_relation_size($1::regclass)`,
		cur).Scan(&heap, &idx, &total); err != nil {
		e.b.Fatal(err)
	}
	e.logf("current: heap %.1f MB, indexes %.1f MB, total %.1f MB = %.0f B/market (%d markets)",
		float64(heap)/(1<<20), float64(idx)/(1<<20), float64(total)/(1<<20), float64(total)/float64(markets), markets)
	var hheap, hidx, htotal int64
	if err := e.admin.QueryRow(e.ctx, `SELECT coalesce(sum(pg_relation_size(relid)), 0)::bigint,
    coalesce(sum(pg_indexes_size(relid)) FILTER (WHERE isleaf), 0)::bigint,
    coalesce(sum(pg_total_relation_size(relid)), 0)::bigint
FROM pg_partition_tree($1::regclass)`, hist).Scan(&hheap, &hidx, &htotal); err != nil {
		e.b.Fatal(err)
	}
	e.logf("history: %d rows, heap %.1f MB, indexes %.1f MB, total %.1f MB = %.0f B/row (heap %.0f, indexes %.0f)",
		histRows, float64(hheap)/(1<<20), float64(hidx)/(1<<20), float64(htotal)/(1<<20),
		float64(htotal)/float64(histRows), float64(hheap)/float64(histRows), float64(hidx)/float64(histRows))
}

func (e *benchEnv) pgssReset() {
	if e.cfg.pgss {
		e.exec("SELECT pg_stat_statements_reset()")
	}
}

// pgssTop logs the statements that took the most server time since the
// last reset.
func (e *benchEnv) pgssTop(phase string) {
	if !e.cfg.pgss {
		return
	}
	e.b.Helper()
	rows, err := e.admin.Query(e.ctx, `SELECT calls, total_exec_time, total_plan_time, rows, shared_blks_hit, shared_blks_read,
    shared_blks_dirtied, shared_blks_written, wal_bytes::bigint, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 6`)
	if err != nil {
		e.b.Fatal(err)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "pg_stat_statements, %s (top by total_exec_time):", phase)
	for rows.Next() {
		var calls, nrows, hit, read, dirtied, written, wal int64
		var total, plan float64
		var query string
		if err := rows.Scan(&calls, &total, &plan, &nrows, &hit, &read, &dirtied, &written, &wal, &query); err != nil {
			e.b.Fatal(err)
		}
		fmt.Fprintf(&out, "\n  %8.0f ms (+%.0f ms planning) %7d calls %8d rows  blks hit %d read %d dirtied %d written %d  WAL %.1f MB  %s",
			total, plan, calls, nrows, hit, read, dirtied, written, float64(wal)/(1<<20), query)
	}
	if err := rows.Err(); err != nil {
		e.b.Fatal(err)
	}
	e.log(out.String())
}

// explain writes the first batch of ws (one more cycle) into A through a
// connection that runs auto_explain at NOTICE level, and logs the plans of
// the library's statements, with buffers and WAL.
func (e *benchEnv) explain(ws []marketodds.Write) {
	e.b.Helper()
	var mu sync.Mutex
	var plans []string
	pool := newBenchPool(e.b, e.url, 1, func(pc *pgxpool.Config) {
		pc.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			mu.Lock()
			plans = append(plans, n.Message)
			mu.Unlock()
		}
		pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			for _, q := range []string{"LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
				"SET auto_explain.log_analyze = on", "SET auto_explain.log_buffers = on", "SET auto_explain.log_wal = on",
				"SET auto_explain.log_timing = on", "SET auto_explain.log_level = notice"} {
				if _, err := c.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}
	})
	defer pool.Close()
	s, err := marketodds.NewStore(pool, &marketodds.Config{Schema: e.schemaA, Now: func() time.Time { return benchBase }})
	if err != nil {
		e.b.Fatal(err)
	}
	batch := ws[:min(e.cfg.batch, len(ws))]
	if _, err := s.WriteMarketBatch(e.ctx, marketodds.Batch{Writes: batch, RunID: 999}); err != nil {
		e.b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	plans = slices.DeleteFunc(plans, func(p string) bool { return !strings.Contains(p, "market_odds") })
	e.logf("auto_explain of one batch (%d writes, %d changed) of cycle %d:", len(batch), countChanged(batch), e.cfg.cycles+1)
	for _, p := range plans {
		e.log(p)
	}
}
