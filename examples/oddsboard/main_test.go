package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// TestMain runs the tests, stops the test server and checks that nothing
// the tests started (boards, browsers, their goroutines) outlives them.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// urlWriter is the board's stdout: it hands the URL the board serves on
// to whoever waits for it.
type urlWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	url  chan string
	sent bool
}

var servingLine = regexp.MustCompile(`Serving the board on (http://\S+/) `)

func (w *urlWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := servingLine.FindStringSubmatch(w.buf.String()); m != nil && !w.sent {
		w.sent = true
		w.url <- m[1]
	}
	return len(p), nil
}

func (w *urlWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// testBoard is a board run in-process by run(), as `go run` runs it, on a
// schema of the test's own and a random port.
type testBoard struct {
	url    string // ends in "/"
	schema string
	reader reader // the test's own, on the same tables
	client *http.Client
}

// startBoard runs the board with a small workload: 6 events whose matches
// kick off within the window, a lively market, 12 cycles of backfill. By
// default it does not feed itself after the backfill (-speed 1h), so that
// what the pages show and what the test reads agree exactly; extra flags
// override.
func startBoard(t *testing.T, extra ...string) *testBoard {
	t.Helper()
	schema := pgtest.Schema(t)
	args := append([]string{"-db", pgtest.URL(t), "-schema", schema, "-addr", "127.0.0.1:0", "-events", "6",
		"-backfill", "12", "-change", "0.2", "-horizon", "2h", "-speed", "1h", "-seed", "7", "-v", "warn"}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	out := &urlWriter{url: make(chan string, 1)}
	var logs bytes.Buffer
	var logsMu sync.Mutex
	stderr := writerFunc(func(p []byte) (int, error) {
		logsMu.Lock()
		defer logsMu.Unlock()
		return logs.Write(p)
	})
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out, stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		logsMu.Lock()
		defer logsMu.Unlock()
		if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("the board logged warnings or errors:\n%s", logs.String())
		}
	})
	var url string
	select {
	case url = <-out.url:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("run returned before serving: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), logs.String())
	}
	store, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &testBoard{url: url, schema: schema, reader: newReader(store, pgtest.Pool(t)),
		client: &http.Client{Transport: tr, Timeout: time.Minute}}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// get fetches a page and returns its status and body.
func (b *testBoard) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := b.client.Get(strings.TrimSuffix(b.url, "/") + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// vars reads /debug/vars.
func (b *testBoard) vars(t *testing.T) boardVars {
	t.Helper()
	code, body := b.get(t, "/debug/vars")
	if code != http.StatusOK {
		t.Fatalf("/debug/vars: %d", code)
	}
	var v struct {
		Memstats  json.RawMessage `json:"memstats"`
		Oddsboard boardVars       `json:"oddsboard"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("/debug/vars is not JSON: %v\n%s", err, body)
	}
	if len(v.Memstats) == 0 {
		t.Errorf("/debug/vars lacks the process's variables (memstats):\n%s", body)
	}
	return v.Oddsboard
}

type boardVars struct {
	Cycles        int    `json:"cycles"`
	Events        int    `json:"events"`
	SimulatedTime string `json:"simulated_time"`
	Feed          struct {
		Scrapes     int64 `json:"scrapes"`
		Writes      int64 `json:"writes"`
		Changes     int64 `json:"changes"`
		HistoryRows int64 `json:"history_rows"`
		Rejected    int64 `json:"rejected"`
		Queue       struct {
			Enqueued  int64 `json:"enqueued"`
			Succeeded int64 `json:"succeeded"`
			Dropped   int64 `json:"dropped"`
			Retries   int64 `json:"retries"`
		} `json:"queue"`
	} `json:"feed"`
	// Store is Store.Stats.
	Store map[string]int64 `json:"store"`
	// WriteBatches are the write calls, from Config.OnBatch.
	WriteBatches struct {
		Count        int64 `json:"count"`
		Errors       int64 `json:"errors"`
		BatchSizeSum int64 `json:"batch_size_sum"`
		DurationMs   struct {
			Bounds []float64 `json:"bounds"`
			Counts []int64   `json:"counts"`
			Sum    float64   `json:"sum"`
			Max    float64   `json:"max"`
		} `json:"duration_ms"`
	} `json:"write_batches"`
}

// storeKeys are the keys of "store" in /debug/vars: every counter of
// marketodds.Stats.
var storeKeys = []string{"batches", "succeeded", "failed", "writes", "invalid", "rows_isolated", "upserted", "stale",
	"confirmed_by_scrape", "history_added", "history_duplicate", "scrapes", "partitions_created", "partitions_dropped",
	"transient_errors", "permanent_errors"}

// checkStoreVars checks that "store" and "write_batches" are there, whole
// and plausible, for a board that has written and failed nothing.
func checkStoreVars(t *testing.T, v boardVars) {
	t.Helper()
	st := v.Store
	for _, k := range storeKeys {
		if _, ok := st[k]; !ok {
			t.Errorf("/debug/vars: store lacks %q: %v", k, st)
		}
	}
	if len(st) != len(storeKeys) {
		t.Errorf("/debug/vars: store has %d counters, want %d: %v", len(st), len(storeKeys), st)
	}
	if st["batches"] == 0 || st["writes"] < st["batches"] || st["upserted"] == 0 || st["history_added"] == 0 ||
		st["scrapes"] == 0 || st["partitions_created"] == 0 || st["failed"] != 0 || st["transient_errors"] != 0 ||
		st["permanent_errors"] != 0 || st["invalid"] != 0 || st["rows_isolated"] != 0 || st["confirmed_by_scrape"] != 0 {
		t.Errorf("/debug/vars: store %v", st)
	}
	wb := v.WriteBatches
	h := wb.DurationMs
	var inBuckets int64
	for _, n := range h.Counts {
		inBuckets += n
	}
	if wb.Count == 0 || wb.Errors != 0 || wb.BatchSizeSum < wb.Count || len(h.Bounds) < 3 ||
		len(h.Counts) != len(h.Bounds)+1 || inBuckets != wb.Count || !(h.Sum > 0) || !(h.Max > 0) ||
		h.Max > h.Sum || !slices.IsSorted(h.Bounds) {
		t.Errorf("/debug/vars: write_batches %+v (%d in the buckets)", wb, inBuckets)
	}
}

// firstEvent returns an event id the events page links to.
func firstEvent(t *testing.T, b *testBoard) string {
	t.Helper()
	_, body := b.get(t, "/")
	m := regexp.MustCompile(`href="/events/(\d+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the events page links to no event:\n%s", body)
	}
	return m[1]
}

// TestBoardHTTP runs the board as `go run` does, feeding itself quickly,
// and checks its pages over plain HTTP while it feeds: every page renders,
// the counters move, and bad requests get a 4xx page, never a 500.
func TestBoardHTTP(t *testing.T) {
	t.Parallel()
	b := startBoard(t, "-speed", "20ms")
	id := firstEvent(t, b)

	// It feeds itself: the cycles go on after the backfill.
	// (Should it stop, the test's -timeout ends the wait.)
	v := b.vars(t)
	for ; v.Cycles < 16; v = b.vars(t) {
		time.Sleep(20 * time.Millisecond)
	}
	if v.Events != 6 || v.Feed.HistoryRows == 0 || v.Feed.Writes < v.Feed.Changes || v.Feed.Queue.Enqueued == 0 ||
		v.Feed.Queue.Dropped != 0 || v.Feed.Rejected != 0 || v.SimulatedTime == "" {
		t.Errorf("/debug/vars: %+v", v)
	}
	checkStoreVars(t, v)
	// The board's variables are rendered in key order, "feed" before
	// "store", and a batch is counted by the store before the feed hears of
	// it: the store's count of history rows cannot be behind the feed's.
	if v.Store["history_added"] < v.Feed.HistoryRows {
		t.Errorf("/debug/vars: store %v behind the feed %+v", v.Store, v.Feed)
	}

	for _, c := range []struct {
		path string
		want int
		text string
	}{
		{"/", 200, "Upcoming"},
		{"/events/" + id, 200, `id="grid"`},
		{"/events/" + id + "/markets/3743", 200, `<polyline class="series"`},
		{"/events/" + id + "/markets/5000?line=2.5", 200, "Over/Under 2.5"},
		{"/events/" + id + "?at=2000-01-01T00:00", 200, `id="empty"`}, // before anything: an empty grid
		{"/events/12345", 404, "There is no event 12345"},
		{"/events/-1", 404, "There is no event"},
		{"/events/abc", 400, "not an event id"},
		{"/events/99999999999999999999", 400, "not an event id"},
		{"/events/" + id + "?at=yesterday", 400, "not a time"},
		{"/events/" + id + "?at=2999-01-01T00:00", 400, "later than"},
		{"/events/" + id + "?at=1969-12-31T23:00", 400, "before 1970"},
		{"/events/" + id + "/markets/9999", 404, "has no market"},
		{"/events/" + id + "/markets/5000?line=2.75", 404, "has no market"},
		{"/events/" + id + "/markets/5000?line=abc", 400, "not a number"},
		{"/events/" + id + "/markets/5000?line=NaN", 400, "not a number"},
		{"/events/" + id + "/markets/%3Cscript%3E", 400, "not a market id"},
		{"/events/" + id + "/markets/3743?from=2999-01-01T00:00", 400, "later than"},
		{"/events/" + id + "/markets/3743?from=x", 400, "not a time"},
		{"/events/" + id + "/markets/3743?from=2026-01-02T00:00&to=2026-01-01T00:00", 400, "must be before"},
		{"/events/12345/markets/3743", 404, "There is no event 12345"},
		{"/nope", 404, "no such page"},
		{"/events/" + id + "/markets", 404, "no such page"},
	} {
		code, body := b.get(t, c.path)
		if code != c.want || !strings.Contains(body, c.text) {
			t.Errorf("GET %s: %d, want %d with %q:\n%.600s", c.path, code, c.want, c.text, body)
		}
		if code == 200 && !strings.Contains(body, `data-stat="history"`) {
			t.Errorf("GET %s: no stats in the footer", c.path)
		}
	}
	resp, err := b.client.Post(b.url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		t.Errorf("POST /: %d, want a 4xx", resp.StatusCode)
	}

	// Pages render while the feed writes (go test -race watches).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, p := range []string{"/", "/events/" + id, "/events/" + id + "/markets/5000?line=2.5"} {
				resp, err := b.client.Get(strings.TrimSuffix(b.url, "/") + p)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("GET %s: %d", p, resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
}

// TestBoardVarsAgree: once the backfill is written and nothing feeds (the
// default -speed of startBoard), the store's counters, its write calls and
// the feed's agree with each other and with the tables.
func TestBoardVarsAgree(t *testing.T) {
	t.Parallel()
	b := startBoard(t)
	v := b.vars(t)
	checkStoreVars(t, v)
	var history, scrapes int64
	q := func(table string) string { return pgx.Identifier{b.schema, table}.Sanitize() }
	if err := pgtest.Pool(t).QueryRow(context.Background(), `SELECT (SELECT count(*) FROM `+q("market_odds_history")+
		`), (SELECT count(*) FROM `+q("market_scrape_log")+`)`).Scan(&history, &scrapes); err != nil {
		t.Fatal(err)
	}
	st := v.Store
	if st["history_added"] != history || v.Feed.HistoryRows != history || st["scrapes"] != scrapes ||
		st["batches"] != v.WriteBatches.Count || st["batches"] != v.Feed.Queue.Succeeded || st["succeeded"] != st["batches"] ||
		st["writes"] != v.WriteBatches.BatchSizeSum || st["writes"] != v.Feed.Writes || v.Feed.Scrapes != scrapes {
		t.Errorf("/debug/vars: store %v, write_batches %+v, feed %+v; the tables hold %d history rows, %d scrapes",
			st, v.WriteBatches, v.Feed, history, scrapes)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8080" || o.speed != time.Second || o.interval != 5*time.Minute || o.Schema != "oddsboard_example" {
		t.Errorf("defaults: %+v", o)
	}
	for _, args := range [][]string{
		{"-events", "0"}, {"-backfill", "0"}, {"-change", "2"}, {"-speed", "0s"}, {"-interval", "-1m"},
		{"-schema", "public"}, {"-schema", "pg_toast"}, {"-v", "loud"}, {"extra"}, {"-nope"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}
