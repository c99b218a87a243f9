package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// smallArgs are a small run: 20 events, 4 cycles, and matches that finish
// during it (kick-offs within an hour, 10 minutes per cycle).
func smallArgs(t *testing.T, extra ...string) ([]string, string) {
	schema := pgtest.Schema(t)
	args := []string{"-db", pgtest.URL(t), "-schema", schema, "-events", "20", "-cycles", "4",
		"-interval", "10m", "-horizon", "1h", "-batch", "400", "-workers", "2", "-seed", "42"}
	return append(args, extra...), schema
}

func runOK(t *testing.T, ctx context.Context, args []string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("run %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// dbCounts are what a run left in its schema.
type dbCounts struct {
	Current, History, Snapshots, SteadyHistory, SteadySnapshots int64
	// ScrapeLog and Scrapes count the rows of market_scrape_log and
	// market_scrapes.
	ScrapeLog, Scrapes int64
	// Digest is a hash of every history row, times relative to the first;
	// LogDigest the same of the scrape log.
	Digest, LogDigest string
}

func readCounts(t *testing.T, schema string) dbCounts {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
	var c dbCounts
	err := pool.QueryRow(ctx, `SELECT
    (SELECT count(*) FROM `+q("market_odds_current")+`),
    (SELECT count(*) FROM `+q("market_odds_history")+`),
    (SELECT count(*) FROM `+q(legacyTable)+`),
    (SELECT count(*) FROM `+q("market_odds_history")+` WHERE captured_at >= (SELECT min(captured_at) + interval '10 minutes' FROM `+q("market_odds_history")+`)),
    (SELECT count(*) FROM `+q(legacyTable)+` WHERE captured_at >= (SELECT min(captured_at) + interval '10 minutes' FROM `+q(legacyTable)+`)),
    (SELECT md5(string_agg(concat_ws('|', event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name,
            outcomes::text, market_groups::text, handicap_type, handicap_home, unavailable,
            extract(epoch FROM captured_at - (SELECT min(captured_at) FROM `+q("market_odds_history")+`))), ','
        ORDER BY event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at))
     FROM `+q("market_odds_history")+`),
    (SELECT count(*) FROM `+q("market_scrape_log")+`),
    (SELECT count(*) FROM `+q("market_scrapes")+`),
    (SELECT md5(string_agg(concat_ws('|', event_id, bookmaker_slug,
            extract(epoch FROM scraped_at - (SELECT min(scraped_at) FROM `+q("market_scrape_log")+`))), ','
        ORDER BY event_id, bookmaker_slug, scraped_at))
     FROM `+q("market_scrape_log")+`)`).Scan(
		&c.Current, &c.History, &c.Snapshots, &c.SteadyHistory, &c.SteadySnapshots, &c.Digest,
		&c.ScrapeLog, &c.Scrapes, &c.LogDigest)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// number finds the first match of re (one group: a number with separators).
func number(t *testing.T, out, re string) int64 {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output does not match %q:\n%s", re, out)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sumAll adds up every match of re across the output.
func sumAll(out, re string) (sum int64, n int) {
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
		sum += v
		n++
	}
	return sum, n
}

// TestRun runs the example twice with the same seed, once in each
// confirmation mode, and checks the output against the database: the two
// modes store the same history, scrape log and current rows, and read the
// same last_confirmed_at through market_odds_live.
func TestRun(t *testing.T) {
	t.Parallel()
	argsA, schemaA := smallArgs(t, "-confirm=markets")
	argsB, schemaB := smallArgs(t, "-confirm", "scrapes")
	outA, errA := runOK(t, context.Background(), argsA)
	outB, errB := runOK(t, context.Background(), argsB)
	t.Logf("output, -confirm=markets:\n%s", outA)
	t.Logf("output, -confirm=scrapes:\n%s", outB)

	c := readCounts(t, schemaA)
	for _, run := range []struct {
		mode, out, errs, schema string
	}{{"markets", outA, errA, schemaA}, {"scrapes", outB, errB, schemaB}} {
		out := run.out
		for _, want := range []string{
			"All cycles (1..4", "Steady state (cycles 2..4", "market-level: market_odds_current",
			"market-level: market_odds_history", "snapshots:    legacy_odds_snapshots", "reduction: history vs snapshots",
			"reduction: current + history + scrape log vs snapshots", "0 batches dropped", "0 writes rejected", "uniform",
			"Confirmation: -confirm=" + run.mode, "-confirm=" + run.mode + " (this run)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("-confirm=%s: output lacks %q", run.mode, want)
			}
		}
		// The scrape log and the sum have a line each in both tables.
		for _, line := range []string{"market-level: scrape log (2)", "market-level: current + history + scrape log"} {
			if n := strings.Count(out, line); n != 2 {
				t.Errorf("-confirm=%s: %d lines %q, want one per table", run.mode, n, line)
			}
		}
		if strings.Contains(run.errs, "level=ERROR") || strings.Contains(run.errs, "level=WARN") {
			t.Errorf("-confirm=%s: warnings or errors logged:\n%s", run.mode, run.errs)
		}
		var mode string
		if err := pgtest.Pool(t).QueryRow(context.Background(), "SELECT confirm_mode FROM "+
			pgx.Identifier{run.schema, "oddsledger_settings"}.Sanitize()).Scan(&mode); err != nil || mode != run.mode {
			t.Errorf("-confirm=%s: the schema records confirm_mode %q (%v)", run.mode, mode, err)
		}
	}

	if distinct := number(t, outA, `([\d,]+) distinct markets`); c.Current != distinct {
		t.Errorf("current rows %d, want one per distinct market seen: %d", c.Current, distinct)
	}
	if c.History >= c.Snapshots || c.SteadyHistory >= c.SteadySnapshots {
		t.Errorf("history rows %d (steady %d), snapshot rows %d (steady %d): want fewer history rows",
			c.History, c.SteadyHistory, c.Snapshots, c.SteadySnapshots)
	}
	if c.SteadyHistory == 0 {
		t.Error("no history rows after the first cycle")
	}
	// 20 events (some finish and are replaced) x 3 bookmakers x 4 cycles.
	if c.ScrapeLog < 240 || c.Scrapes < 60 || c.Scrapes > c.ScrapeLog {
		t.Errorf("scrape log of %d rows, market_scrapes of %d: want at least 240 and 60", c.ScrapeLog, c.Scrapes)
	}
	// The progress lines and the table agree with the database.
	if sum, n := sumAll(outA, `history \+([\d,]+)`); n != 4 || sum != c.History {
		t.Errorf("progress lines report %d history rows over %d cycles, the table holds %d", sum, n, c.History)
	}
	if sum, _ := sumAll(outA, `snapshots \+([\d,]+)`); sum != c.Snapshots {
		t.Errorf("progress lines report %d snapshot rows, the table holds %d", sum, c.Snapshots)
	}
	if _, n := sumAll(outA, `retried (0)  dropped 0 `); n != 4 {
		t.Errorf("want 4 cycle lines with nothing retried or dropped:\n%s", outA)
	}
	if finished, _ := sumAll(outA, `live, (\d+) finished`); finished == 0 {
		t.Errorf("no event finished: the run did not exercise ForgetEvent")
	}
	if got := number(t, outA, `scrape log \(2\)\s+([\d,]+)`); got != c.ScrapeLog+c.Scrapes {
		t.Errorf("the scrape log line shows %d rows, the tables hold %d + %d", got, c.ScrapeLog, c.Scrapes)
	}

	// The same seed plays the same run, row for row, in either mode.
	if cb := readCounts(t, schemaB); cb != c {
		t.Errorf("same seed, different results:\n%+v\n%+v", c, cb)
	}
	if a, b := cycleLines(outA), cycleLines(outB); a != b {
		t.Errorf("same seed, different progress:\n%s\n---\n%s", a, b)
	}
	// Reads agree: market_odds_live gives every market the same
	// last_confirmed_at (relative to the run's first scrape) in both modes.
	// The current table's own column does not: with -confirm=scrapes an
	// unchanged market's is left behind, and the view makes up for it.
	live := func(schema string) string {
		q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
		return `SELECT event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0) AS line,
    last_confirmed_at - (SELECT min(scraped_at) FROM ` + q("market_scrape_log") + `) AS confirmed,
    last_updated_at - (SELECT min(scraped_at) FROM ` + q("market_scrape_log") + `) AS updated,
    unavailable_at - (SELECT min(scraped_at) FROM ` + q("market_scrape_log") + `) AS unavailable,
    change_count FROM ` + q("market_odds_live")
	}
	behind := func(schema string) string {
		q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
		return `(SELECT count(*) FROM ` + q("market_odds_current") + ` c JOIN ` + q("market_odds_live") + ` l
    USING (event_id, bookmaker_slug, betpawa_market_id, line) WHERE c.last_confirmed_at < l.last_confirmed_at)`
	}
	var nA, nB, differ, behindA, behindB int64
	err := pgtest.Pool(t).QueryRow(context.Background(), `WITH a AS (`+live(schemaA)+`), b AS (`+live(schemaB)+`)
SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b),
    (SELECT count(*) FROM a FULL JOIN b USING (event_id, bookmaker_slug, betpawa_market_id, line)
     WHERE a.confirmed IS DISTINCT FROM b.confirmed OR a.updated IS DISTINCT FROM b.updated
        OR a.unavailable IS DISTINCT FROM b.unavailable OR a.change_count IS DISTINCT FROM b.change_count),
    `+behind(schemaA)+`, `+behind(schemaB)).Scan(&nA, &nB, &differ, &behindA, &behindB)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("market_odds_live: %d and %d rows, %d differ; current rows confirmed behind the view: %d and %d",
		nA, nB, differ, behindA, behindB)
	if nA != c.Current || nB != c.Current || differ != 0 {
		t.Errorf("market_odds_live: %d rows (-confirm=markets), %d (-confirm=scrapes), %d markets differ; want %d rows each, none differing",
			nA, nB, differ, c.Current)
	}
	if behindA != 0 || behindB == 0 {
		t.Errorf("current rows confirmed behind the view: %d (-confirm=markets), %d (-confirm=scrapes); want 0 and some",
			behindA, behindB)
	}
}

// TestRunStoreStats: the closing table's store stats and write calls agree
// with the database and with each other, in both modes.
func TestRunStoreStats(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"markets", "scrapes"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			args, schema := smallArgs(t, "-confirm="+mode)
			out, _ := runOK(t, context.Background(), args)
			c := readCounts(t, schema)
			if got := number(t, out, `History: ([\d,]+) rows added`); got != c.History {
				t.Errorf("Store stats: %d history rows added, the table holds %d:\n%s", got, c.History, out)
			}
			if got := number(t, out, `Scrape log: ([\d,]+) scrapes logged`); got != c.ScrapeLog {
				t.Errorf("Store stats: %d scrapes logged, the scrape log holds %d:\n%s", got, c.ScrapeLog, out)
			}
			batches := number(t, out, `Store stats \(Store.Stats\): ([\d,]+) batches`)
			calls := number(t, out, `Write calls \(Config.OnBatch\): ([\d,]+),`)
			if sum, n := sumAll(out, `write \S+ \((\d+) calls\)`); batches == 0 || calls != batches || n != 4 || sum != calls {
				t.Errorf("%d batches in Store.Stats, %d write calls from OnBatch, %d over %d cycle lines: want them equal",
					batches, calls, sum, n)
			}
			writes := number(t, out, `; ([\d,]+) writes, `)
			if got := number(t, out, `Write calls \(Config.OnBatch\): [\d,]+, 0 errors, ([\d,]+) writes`); got != writes {
				t.Errorf("OnBatch saw %d writes, Store.Stats %d", got, writes)
			}
			upserted := number(t, out, `Current: ([\d,]+) rows upserted`)
			stale := number(t, out, `([\d,]+) stale`)
			byScrape := number(t, out, `([\d,]+) confirmed by scrape`)
			if upserted+stale+byScrape != writes || (mode == "markets") != (byScrape == 0) {
				t.Errorf("%d upserted + %d stale + %d confirmed by scrape, of %d writes", upserted, stale, byScrape, writes)
			}
			if mode == "scrapes" && upserted != c.History {
				t.Errorf("-confirm=scrapes upserted %d current rows, want one per change: %d", upserted, c.History)
			}
			if !regexp.MustCompile(`Per call \(exact, over all \d+\): mean \S+, p50 \S+, p99 \S+, max \S+\.`).MatchString(out) ||
				!regexp.MustCompile(`Histogram \(ms, [^)]*\): (<=|>)\d+: \d+`).MatchString(out) {
				t.Errorf("no write duration figures:\n%s", out)
			}
		})
	}
}

// cycleLines returns the progress lines without the clock and the timings,
// which differ from run to run.
func cycleLines(out string) string {
	var b strings.Builder
	clock := regexp.MustCompile(`\d\d:\d\d|write [\d.]+(µs|ms|s|m[\d.]+s) |  [\d.]+(µs|ms|s|m[\d.]+s)$`)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "cycle") {
			b.WriteString(clock.ReplaceAllString(l, "") + "\n")
		}
	}
	return b.String()
}

// TestRunDefaultsReduction runs the default workload shape (5% changes,
// ~50 markets) at a reduced size and checks the headline figure.
func TestRunDefaultsReduction(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("short")
	}
	schema := pgtest.Schema(t)
	out, _ := runOK(t, context.Background(), []string{"-db", pgtest.URL(t), "-schema", schema,
		"-events", "100", "-cycles", "5", "-workers", "2"})
	c := readCounts(t, schema)
	red := reduction(c.SteadyHistory, c.SteadySnapshots)
	t.Logf("steady-state history reduction %.2f%%", red)
	// 100 events x 3 books x 4 steady cycles: ~2,900 changes; the
	// expectation is ~94.5%, the standard error ~0.1 point (and the seed is
	// fixed: the figure is too).
	if red < 93.8 {
		t.Errorf("steady-state history reduction %.2f%%, want about 94.5%%\n%s", red, out)
	}
	if !strings.Contains(out, "(target for the default workload: >= 94%; met)") {
		t.Errorf("no verdict line:\n%s", out)
	}
}

// cancelWriter cancels a context once the output shows a completed cycle.
type cancelWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	after  string
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.after) {
		w.cancel()
	}
	return len(p), nil
}

// TestRunInterrupted is Ctrl-C: scraping stops, the queue writes what it
// holds, and the table is printed for what was written, between cycles or
// in the middle of one.
func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, out, schema string) {
		t.Helper()
		if !strings.Contains(out, "Interrupted ") || !strings.Contains(out, "All cycles") ||
			!strings.Contains(out, "0 batches dropped") {
			t.Errorf("want the table of what was written, nothing dropped:\n%s", out)
		}
		c := readCounts(t, schema)
		if sum, _ := sumAll(out, `history \+([\d,]+)`); sum != c.History {
			t.Errorf("the cycle lines report %d history rows, the table holds %d:\n%s", sum, c.History, out)
		}
		if sum, _ := sumAll(out, `snapshots \+([\d,]+)`); sum != c.Snapshots {
			t.Errorf("the cycle lines report %d snapshot rows, the table holds %d:\n%s", sum, c.Snapshots, out)
		}
		if distinct := number(t, out, `([\d,]+) distinct markets`); c.Current != distinct {
			t.Errorf("current rows %d, want %d", c.Current, distinct)
		}
	}
	t.Run("between cycles", func(t *testing.T) {
		t.Parallel()
		args, schema := smallArgs(t, "-cycles", "1000")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w := &cancelWriter{after: "cycle    2/1000", cancel: cancel}
		var errOut bytes.Buffer
		if err := run(ctx, args, w, &errOut); err != nil {
			t.Fatalf("run: %v\n%s", err, errOut.String())
		}
		out := w.buf.String()
		if _, n := sumAll(out, `history \+([\d,]+)`); n != 2 || !strings.Contains(out, "Interrupted after cycle 2 of 1000") {
			t.Errorf("want 2 cycles, interrupted after the second:\n%s", out)
		}
		check(t, out, schema)
	})
	t.Run("anywhere", func(t *testing.T) {
		t.Parallel()
		// Wherever the cancellation lands (often mid-cycle), the table
		// must account for every row.
		args, schema := smallArgs(t, "-cycles", "1000", "-events", "200")
		ctx, cancel := context.WithCancel(context.Background())
		w := &cancelWriter{after: "cycle    1/1000", cancel: func() { time.AfterFunc(150*time.Millisecond, cancel) }}
		var errOut bytes.Buffer
		if err := run(ctx, args, w, &errOut); err != nil {
			t.Fatalf("run: %v\n%s", err, errOut.String())
		}
		cancel()
		t.Logf("%s", w.buf.String())
		check(t, w.buf.String(), schema)
	})
}

func TestRunWithoutLegacy(t *testing.T) {
	t.Parallel()
	args, schema := smallArgs(t, "-legacy=false")
	out, _ := runOK(t, context.Background(), args)
	if strings.Contains(out, "legacy_odds_snapshots") || !strings.Contains(out, "market_odds_history") {
		t.Errorf("want market-level tables only:\n%s", out)
	}
	var exists bool
	err := pgtest.Pool(t).QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL",
		pgx.Identifier{schema, legacyTable}.Sanitize()).Scan(&exists)
	if err != nil || exists {
		t.Errorf("snapshot table exists: %v (%v)", exists, err)
	}
}

// TestRunRefusesForeignSchema: -schema is dropped at start, unless it holds
// tables the program did not make.
func TestRunRefusesForeignSchema(t *testing.T) {
	t.Parallel()
	args, schema := smallArgs(t)
	pool := pgtest.Pool(t)
	if _, err := pool.Exec(context.Background(), "CREATE TABLE "+pgx.Identifier{schema, "precious"}.Sanitize()+" (x int)"); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), args, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "precious") {
		t.Fatalf("run into a schema holding other tables: %v, want a refusal naming them", err)
	}
	var exists bool
	if err := pool.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL",
		pgx.Identifier{schema, "precious"}.Sanitize()).Scan(&exists); err != nil || !exists {
		t.Errorf("the table is gone (%v)", err)
	}
	// A second run into its own schema is clean: the schema is recreated.
	args2, schema2 := smallArgs(t, "-cycles", "1")
	runOK(t, context.Background(), args2)
	first := readCounts(t, schema2)
	runOK(t, context.Background(), args2)
	if again := readCounts(t, schema2); again.History != first.History || again.Current != first.Current {
		t.Errorf("rerun into the same schema: %+v, then %+v", first, again)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.events != 500 || o.cycles != 10 || o.Change != 0.05 || o.interval != 5*time.Minute || !o.legacy ||
		o.Schema != "oddsledger_example" || o.batch != 5000 {
		t.Errorf("defaults: %+v", o)
	}
	for _, args := range [][]string{
		{"-events", "0"}, {"-change", "1.5"}, {"-change", "NaN"}, {"-interval", "0s"}, {"-batch", "0"},
		{"-schema", "public"}, {"-schema", "pg_catalog"}, {"-schema", ""}, {"-v", "loud"}, {"extra"}, {"-nope"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}

	if o.confirm != marketodds.ConfirmMarkets {
		t.Errorf("-confirm defaults to %s, want markets", o.confirm)
	}
	for args, want := range map[string]marketodds.ConfirmMode{
		"-confirm=markets": marketodds.ConfirmMarkets, "-confirm=scrapes": marketodds.ConfirmScrapes,
	} {
		if o, err := parseFlags([]string{args}, io.Discard); err != nil || o.confirm != want {
			t.Errorf("parseFlags(%q): %v, %v; want %s", args, o, err, want)
		}
	}
	if o, err := parseFlags([]string{"-confirm", "scrapes", "-confirm", "markets"}, io.Discard); err != nil ||
		o.confirm != marketodds.ConfirmMarkets {
		t.Errorf("the last -confirm wins: %v, %v", o, err)
	}
	var usage bytes.Buffer
	for _, bad := range []string{"-confirm=rows", "-confirm=", "-confirm=Scrapes", "-confirm=1"} {
		usage.Reset()
		if _, err := parseFlags([]string{bad}, &usage); err == nil || !strings.Contains(err.Error(), "markets or scrapes") {
			t.Errorf("parseFlags(%q): %v, want a refusal naming the modes", bad, err)
		}
	}
	if _, err := parseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) || !strings.Contains(usage.String(), "-confirm") {
		t.Errorf("-h does not list -confirm:\n%s", usage.String())
	}
}

// TestSnapshotDropCounted: a snapshot batch the queue gives up on is lost
// (the old design has no way back), counted and logged.
func TestSnapshotDropCounted(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h := &host{logger: slog.New(slog.NewTextHandler(&logs, nil))}
	h.onDropSnapshots(&legacySnapshotBatch{Rows: 7}, errors.New("gone"))
	if h.droppedRows.Load() != 7 || !strings.Contains(logs.String(), "snapshot batch dropped") ||
		!strings.Contains(logs.String(), "gone") {
		t.Errorf("snapshot drop not counted or logged:\n%s", logs.String())
	}
}
