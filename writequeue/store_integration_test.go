package writequeue_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/internal/faultproxy"
	"github.com/oddsledger/oddsledger/internal/pgbouncer"
	"github.com/oddsledger/oddsledger/internal/pgserver"
	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
	"github.com/oddsledger/oddsledger/writequeue"
)

// TestStoreUnderFaults runs marketodds.Store.WriteMarketBatch as the queue's
// handler and breaks the connection under it, four ways: backends
// terminated by pg_terminate_backend, connections cut by a TCP proxy
// (mid-message too), the server stopped and started again while batches
// wait, and the server connections of a PgBouncer in between terminated.
// Some batches are retried after a commit whose answer was lost.
//
// Each scenario runs in both confirmation modes, with a workload of its own:
//   - markets: ConfirmMarkets, with faultBatchSet's batches (each batch a
//     slice of markets, not whole scrapes). Afterwards every market of every
//     batch is in market_odds_current with its newest confirmation, and
//     market_odds_history holds exactly one row per changed write.
//   - scrapes: ConfirmScrapes, with scrapeBatchSet's batches: whole scrapes
//     as a changedetect.Classifier returns them, cut into batches. The same
//     checks, through the view market_odds_live; and every row of the view,
//     of history, of market_scrapes and of market_scrape_log must be what
//     the same batches written once, in order and without faults, in
//     ConfirmMarkets mode, left (see compareReference).
//
// In both, market_scrape_log holds exactly one row per scrape (distinct
// EventID, Bookmaker and CapturedAt of the writes), and market_scrapes each
// (event, bookmaker)'s newest: nothing lost, nothing duplicated.
//
// The scenarios run one after the other, each against a server of its own
// (all but the restart may use DATABASE_URL instead), so that breaking one
// server disturbs no other test.
func TestStoreUnderFaults(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("fault-injection integration test against PostgreSQL; skipped in -short mode (never under CI=true)")
	}
	scenarios := []struct {
		name string
		run  func(*testing.T, *faultWorkload)
	}{
		{"TerminateBackend", testTerminateBackend},
		{"ProxyCuts", testProxyCuts},
		{"ServerRestart", testServerRestart},
		{"PgBouncerTerminateServer", testPgBouncerTerminateServer},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Run("markets", func(t *testing.T) { sc.run(t, marketsWorkload()) })
			t.Run("scrapes", func(t *testing.T) { sc.run(t, scrapesWorkload()) })
		})
	}
}

// (a) A killer terminates the writer's backends every few milliseconds (and
// every few batches: see paceFaults).
func testTerminateBackend(t *testing.T, wl *faultWorkload) {
	db := faultDatabase(t, false)
	appName := "oddsledger-writer-" + randomHex(4)
	cfg := db.poolConfig(t, appName)
	h := newFaultHarness(t, db, cfg, 500*time.Millisecond, wl)

	// The killer's connection is opened here, so that a failure is a plain
	// t.Fatal.
	killer := db.connect(t)
	var kills, rounds atomic.Int64
	h.goFault(func(ctx context.Context) {
		defer killer.Close(context.WithoutCancel(ctx))
		for h.paceFaults(ctx, 6, 5*time.Millisecond, 25*time.Millisecond) {
			var n int64
			err := killer.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, appName).Scan(&n)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("killer: %v", err)
				}
				return
			}
			rounds.Add(1)
			kills.Add(n)
		}
	})

	h.enqueueAll(context.Background())
	stats := h.close()
	h.stopFaults()
	r := h.verify(stats)
	t.Logf("TerminateBackend: %s; backends terminated %d (in %d killer rounds)", r, kills.Load(), rounds.Load())
	if kills.Load() == 0 {
		t.Errorf("the killer terminated no backend in %d rounds: the scenario tested nothing", rounds.Load())
	}
}

// (b) A TCP proxy between pgx and the server cuts connections: every few
// milliseconds (and every few batches: see paceFaults) all live ones at once,
// alternately with FIN and RST; and each one after
// a random byte budget, which lands anywhere in the conversation, halfway
// through a message or between a COMMIT and its answer.
func testProxyCuts(t *testing.T, wl *faultWorkload) {
	db := faultDatabase(t, false)
	proxy, err := faultproxy.Start(faultproxy.Config{
		Target: net.JoinHostPort(db.host, strconv.Itoa(int(db.port))),
		// A batch is a few kilobytes: most connections carry several
		// batches, and die in the middle of one.
		Budget: func() int64 { return 1 + mrand.Int64N(128<<10) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proxy.Close(); err != nil {
			t.Errorf("proxy: %v", err)
		}
	})

	cfg := db.poolConfig(t, "oddsledger-writer")
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(proxy.Port())
	cfg.ConnConfig.Fallbacks = nil
	h := newFaultHarness(t, db, cfg, 500*time.Millisecond, wl)

	h.goFault(func(ctx context.Context) {
		for i := 0; h.paceFaults(ctx, 6, 5*time.Millisecond, 25*time.Millisecond); i++ {
			if i%2 == 0 {
				proxy.Cut()
			} else {
				proxy.Reset()
			}
		}
	})

	h.enqueueAll(context.Background())
	stats := h.close()
	h.stopFaults()
	ps := proxy.Stats()
	r := h.verify(stats)
	t.Logf("ProxyCuts: %s; connections through the proxy %d, cut on the timer %d, cut at their byte budget %d",
		r, ps.Accepted, ps.Cut, ps.BudgetCut)
	if ps.Cut+ps.BudgetCut == 0 {
		t.Errorf("the proxy cut no connection: the scenario tested nothing")
	}
}

// (c) The server is stopped, and started again 1.5s later, while a producer
// keeps enqueueing: the queue's retries outlast the restart, and the pool
// reconnects on its own.
func testServerRestart(t *testing.T, wl *faultWorkload) {
	db := faultDatabase(t, true)
	cfg := db.poolConfig(t, "oddsledger-writer")
	h := newFaultHarness(t, db, cfg, time.Second, wl)

	restartAt := len(h.batches) / 3
	reached := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		h.enqueue(context.Background(), func(i int) {
			if i == restartAt {
				close(reached)
			}
		})
	}()
	t.Cleanup(func() { h.closeQueue(10 * time.Second); <-produced })

	select {
	case <-reached:
	case <-produced:
		t.Fatal("producer stopped before the restart point")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := h.queue.Stats()
	if err := db.server.Stop(ctx); err != nil {
		t.Fatalf("stop server: %v", err)
	}
	stopped := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if err := db.server.Restart(ctx); err != nil {
		t.Fatalf("restart server: %v", err)
	}
	down := time.Since(stopped)
	<-produced

	stats := h.close()
	r := h.verify(stats)
	t.Logf("ServerRestart: %s; server down %v, with %d batches queued and %d in flight when it stopped (%d succeeded by then)",
		r, down.Round(time.Millisecond), before.Queued, before.InFlight, before.Succeeded)
}

// (d) PgBouncer in transaction pooling, with two server connections for
// the four workers, between the writer (pgx in exec mode, or the mode
// ODDSLEDGER_TEST_PGBOUNCER names) and the server. Every ~40ms (and every
// few batches: see paceFaults) a killer terminates the server connections
// PgBouncer holds, found by their backend pids on PgBouncer's admin
// console, over a connection straight to the server. The writer sees the
// server's 57P01 passed on, or PgBouncer's FATAL 08P01 "server conn
// crashed?", "server connection closed" or "invalid server parameter" (the
// server connection died under PgBouncer's SET application_name), which
// IsTransient must accept.
func testPgBouncerTerminateServer(t *testing.T, wl *faultWorkload) {
	if _, err := pgbouncer.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: database tests must run, not skip)", err)
		}
		t.Skip(err)
	}
	db := faultDatabase(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bouncer, err := pgbouncer.Start(ctx, db.url, pgbouncer.Options{DefaultPoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bouncer.Close(); err != nil {
			t.Errorf("stop PgBouncer: %v", err)
		}
	})

	// exec, unless ODDSLEDGER_TEST_PGBOUNCER names another mode.
	mode := cmp.Or(pgtest.PgBouncerExecMode(t), "exec")
	pc, err := pgx.ParseConfig(bouncer.URL() + "&default_query_exec_mode=" + mode)
	if err != nil {
		t.Fatal(err)
	}
	cfg := db.poolConfig(t, "oddsledger-writer")
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(bouncer.Port())
	cfg.ConnConfig.Fallbacks = nil
	cfg.ConnConfig.DefaultQueryExecMode = pc.DefaultQueryExecMode
	h := newFaultHarness(t, db, cfg, 500*time.Millisecond, wl)

	admin, err := pgx.Connect(ctx, bouncer.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	killer := db.connect(t)
	var kills, rounds atomic.Int64
	h.goFault(func(ctx context.Context) {
		defer admin.Close(context.WithoutCancel(ctx))
		defer killer.Close(context.WithoutCancel(ctx))
		for h.paceFaults(ctx, 6, 30*time.Millisecond, 50*time.Millisecond) {
			pids, err := serverPIDs(ctx, admin)
			var n int64
			if err == nil {
				err = killer.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM unnest($1::int[]) AS pid`, pids).Scan(&n)
			}
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("killer: %v", err)
				}
				return
			}
			rounds.Add(1)
			kills.Add(n)
		}
	})

	h.enqueueAll(context.Background())
	stats := h.close()
	h.stopFaults()
	r := h.verify(stats)
	t.Logf("PgBouncerTerminateServer (pgx %s mode): %s; server connections terminated %d (in %d killer rounds)", mode, r, kills.Load(), rounds.Load())
	if kills.Load() == 0 {
		t.Errorf("the killer terminated no server connection in %d rounds: the scenario tested nothing", rounds.Load())
	}
}

// serverPIDs returns the backend pids of the server connections PgBouncer
// holds (SHOW SERVERS on its admin console; 0 while one logs in).
func serverPIDs(ctx context.Context, admin *pgx.Conn) ([]int32, error) {
	rows, err := admin.Query(ctx, "SHOW SERVERS")
	if err != nil {
		return nil, err
	}
	pids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (int32, error) {
		m, err := pgx.RowToMap(row)
		if err != nil {
			return 0, err
		}
		pid, ok := m["remote_pid"].(int32)
		if !ok {
			return 0, fmt.Errorf("SHOW SERVERS: remote_pid %v (%T), want an int4", m["remote_pid"], m["remote_pid"])
		}
		return pid, nil
	})
	return slices.DeleteFunc(pids, func(pid int32) bool { return pid == 0 }), err
}

// Batches of the scenarios.
const (
	faultBatches = 1000
	faultEvents  = 40
	faultRun     = 42 // Batch.RunID
)

// faultMarkets are the markets of every event at every bookmaker.
var faultMarkets = []struct {
	id       string
	line     float64 // 0: no line
	name     string
	outcomes []string
}{
	{"3743", 0, "1X2 | Full Time", []string{"1", "X", "2"}},
	{"5000", 1.5, "Over/Under | Full Time", []string{"Over", "Under"}},
	{"5000", 2.5, "Over/Under | Full Time", []string{"Over", "Under"}},
	{"5000", 3.5, "Over/Under | Full Time", []string{"Over", "Under"}},
}

var faultBookmakers = []string{"betpawa", "sportybet", "bet9ja"}

// faultKeys is the number of distinct markets the batches cover.
var faultKeys = faultEvents * len(faultBookmakers) * len(faultMarkets)

// faultWorkload is what a scenario writes, and in which confirmation mode.
type faultWorkload struct {
	mode    marketodds.ConfirmMode
	batches []*marketodds.Batch
	exp     *expectation
	about   string // for the log

	// reference, for a workload of whole scrapes: what the batches make
	// written in order without faults (ConfirmMarkets), computed once.
	refMu sync.Mutex
	ref   *schemaRows
}

// marketsWorkload is faultBatchSet in ConfirmMarkets mode.
var marketsWorkload = sync.OnceValue(func() *faultWorkload {
	bs := faultBatchSet()
	return &faultWorkload{mode: marketodds.ConfirmMarkets, batches: bs, exp: expect(bs), about: "markets mode, batches of markets"}
})

// scrapesWorkload is scrapeBatchSet in ConfirmScrapes mode.
var scrapesWorkload = sync.OnceValue(func() *faultWorkload {
	bs, about := scrapeBatchSet()
	return &faultWorkload{mode: marketodds.ConfirmScrapes, batches: bs, exp: expect(bs), about: "scrapes mode, " + about}
})

// histKey identifies a history row.
type histKey struct {
	key marketodds.Key
	at  int64 // captured_at, Unix microseconds
}

// bookKey is an (event, bookmaker): a row of market_scrapes.
type bookKey struct {
	event     int64
	bookmaker string
}

// scrapeKey is a scrape: a row of market_scrape_log.
type scrapeKey struct {
	book bookKey
	at   int64 // scraped_at, Unix microseconds
}

// expectation is what the tables must hold once every batch is written.
type expectation struct {
	writes    int
	confirmed map[marketodds.Key]time.Time // newest CapturedAt of each market
	updated   map[marketodds.Key]time.Time // newest CapturedAt of its changes
	history   map[histKey]bool             // one row per changed write
	scrapes   map[scrapeKey]bool           // one scrape log row per distinct (event, bookmaker, CapturedAt)
	newest    map[bookKey]time.Time        // market_scrapes: newest CapturedAt per (event, bookmaker)
	// changeBatches lists, per market, the batches that hold its changes,
	// in order: the scrape order.
	changeBatches map[marketodds.Key][]int
}

// expect is what the batches must leave in the tables.
func expect(batches []*marketodds.Batch) *expectation {
	exp := &expectation{confirmed: make(map[marketodds.Key]time.Time), updated: make(map[marketodds.Key]time.Time),
		history: make(map[histKey]bool), scrapes: make(map[scrapeKey]bool), newest: make(map[bookKey]time.Time),
		changeBatches: make(map[marketodds.Key][]int)}
	for i, b := range batches {
		for _, w := range b.Writes {
			at := w.CapturedAt.Truncate(time.Microsecond) // as PostgreSQL keeps it
			key := w.Key()
			if at.After(exp.confirmed[key]) {
				exp.confirmed[key] = at
			}
			if w.Changed {
				exp.history[histKey{key, at.UnixMicro()}] = true
				if at.After(exp.updated[key]) {
					exp.updated[key] = at
				}
				if cb := exp.changeBatches[key]; len(cb) == 0 || cb[len(cb)-1] != i {
					exp.changeBatches[key] = append(cb, i)
				}
			}
			book := bookKey{w.EventID, w.Bookmaker}
			exp.scrapes[scrapeKey{book, at.UnixMicro()}] = true
			if at.After(exp.newest[book]) {
				exp.newest[book] = at
			}
			exp.writes++
		}
	}
	return exp
}

// faultBatchSet builds the markets workload's batches, deterministically:
// batch i holds 20 to 50 writes over distinct markets, captured at one time
// of its own (one second apart, across a midnight long past, for which
// Migrate creates no partition: the writes create two partitions of history
// and of the scrape log under fault), about 3 in 7 of them changes, a few of
// those disappearances. They are not whole scrapes: a batch holds some of a
// book's markets, and a market's first write may be unchanged.
func faultBatchSet() []*marketodds.Batch {
	base := time.Date(2025, 6, 30, 23, 55, 0, 0, time.UTC)
	batches := make([]*marketodds.Batch, faultBatches)
	for i := range batches {
		n := 20 + (i*7)%31
		start := (i * 97) % faultKeys
		at := base.Add(time.Duration(i) * time.Second).Add(time.Duration(i%1000) * time.Microsecond)
		b := &marketodds.Batch{RunID: faultRun, Index: i, Writes: make([]marketodds.Write, 0, n)}
		for k := range n {
			j := (start + k) % faultKeys
			event := j / (len(faultBookmakers) * len(faultMarkets))
			bm := faultBookmakers[j/len(faultMarkets)%len(faultBookmakers)]
			mk := faultMarkets[j%len(faultMarkets)]
			m := marketodds.Market{EventID: 7_000_000 + int64(event), Bookmaker: bm, MarketID: mk.id,
				Name: mk.name, Groups: []string{"main"}}
			if mk.line != 0 {
				m.Line = &mk.line
			}
			for o, name := range mk.outcomes {
				m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: name, Odds: 1.01 + float64((i*13+j*7+o*5)%400)/100})
			}
			changed := (i*31+j*17)%7 < 3
			b.Writes = append(b.Writes, marketodds.Write{Market: m, CapturedAt: at, Changed: changed,
				Unavailable: changed && (i+j)%11 == 0})
		}
		batches[i] = b
	}
	return batches
}

// The scrapes workload: every book (event, bookmaker) is scraped once a
// round, the books one after the other.
const (
	scrapeEvents = 40
	scrapeRounds = 29 // ~35,000 writes: ~1,000 batches
	scrapeRound  = 3 * time.Minute
	scrapeSeed   = 11
)

// scrapeMarket is one market of a book in the scrapes workload, and its
// state. Its data is never changed in place: the classifier's writes share
// it.
type scrapeMarket struct {
	m        marketodds.Market // the data while offered
	appears  int               // the round it is first offered
	canGo    bool              // it may be withdrawn for a while, and come back
	toggles  bool              // its line alternates between nil and 0: one market, other data
	offered  bool
	appeared bool
}

// scrapeBookMarkets are a book's 11 markets: no line, line 0, a line that is
// sometimes nil and sometimes 0, lines, handicaps, no groups, and two that
// appear some rounds in.
func scrapeBookMarkets(rng *mrand.Rand) []*scrapeMarket {
	mk := func(id, name string, line *float64, h *marketodds.Handicap, groups []string, outcomes ...string) marketodds.Market {
		m := marketodds.Market{MarketID: id, Line: line, Name: name, Groups: groups, Handicap: h}
		for _, o := range outcomes {
			m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: o, Odds: scrapeOdds(rng)})
		}
		return m
	}
	line := func(f float64) *float64 { return &f }
	return []*scrapeMarket{
		{m: mk("3743", "1X2 | Full Time", nil, nil, []string{"main", "popular"}, "1", "X", "2")}, // never goes: no scrape is empty
		{m: mk("5000", "Over/Under | Full Time", line(1.5), nil, []string{"goals"}, "Over", "Under"), canGo: true},
		{m: mk("5000", "Over/Under | Full Time", line(2.5), nil, []string{"goals", "popular"}, "Over", "Under"), canGo: true},
		{m: mk("5000", "Over/Under | Full Time", line(3.5), nil, []string{"goals"}, "Over", "Under"), canGo: true, appears: 1 + rng.IntN(6)},
		{m: mk("3795", "Both Teams To Score", line(0), nil, []string{"main"}, "Yes", "No"), canGo: true},
		{m: mk("4693", "Double Chance", nil, nil, nil, "1X", "12", "X2"), canGo: true, toggles: true},
		{m: mk("3774", "Asian Handicap", nil, &marketodds.Handicap{Type: "asian"}, []string{"handicap"}, "1", "2"), canGo: true},
		{m: mk("3774", "Asian Handicap", line(-0.5), &marketodds.Handicap{Type: "asian", Home: -0.5, Away: 0.5}, []string{"handicap"}, "1", "2"), canGo: true},
		{m: mk("3774", "Asian Handicap", line(1.25), &marketodds.Handicap{Type: "asian", Home: 1.25, Away: -1.25}, []string{"handicap"}, "1", "2"), canGo: true},
		{m: mk("4703", "European Handicap", line(-1), &marketodds.Handicap{Type: "european", Home: -1, Away: 1}, nil, "1", "X", "2"), canGo: true},
		{m: mk("4710", "Correct Score", nil, nil, []string{"scores"}, "1:0", "0:0", "0:1", "2:1", "other"), canGo: true, appears: 2 + rng.IntN(12)},
	}
}

func scrapeOdds(rng *mrand.Rand) float64 { return float64(101+rng.IntN(1900)) / 100 }

// step moves the market to its state in round r and reports whether it is
// offered: odds move, an outcome is suspended or back, the line goes from
// nil to 0 and back, the market is withdrawn and comes back a few rounds
// later, maybe with other odds.
func (m *scrapeMarket) step(rng *mrand.Rand, r int) bool {
	switch {
	case r < m.appears:
		return false
	case !m.appeared:
		m.appeared, m.offered = true, true
		return true
	case !m.offered:
		if rng.IntN(3) == 0 {
			m.offered = true
			if rng.IntN(2) == 0 {
				m.changeOdds(rng)
			}
		}
		return m.offered
	case m.canGo && rng.IntN(25) == 0:
		m.offered = false
		return false
	}
	if rng.IntN(10) == 0 {
		m.changeOdds(rng)
	}
	if rng.IntN(25) == 0 {
		os := slices.Clone(m.m.Outcomes)
		i := rng.IntN(len(os))
		os[i].Suspended = !os[i].Suspended
		m.m.Outcomes = os
	}
	if m.toggles && rng.IntN(10) == 0 {
		if m.m.Line == nil {
			zero := 0.0
			m.m.Line = &zero
		} else {
			m.m.Line = nil
		}
	}
	return true
}

func (m *scrapeMarket) changeOdds(rng *mrand.Rand) {
	os := slices.Clone(m.m.Outcomes)
	os[rng.IntN(len(os))].Odds = scrapeOdds(rng)
	m.m.Outcomes = os
}

// scrapeBatchSet builds the scrapes workload's batches, deterministically:
// scrapeEvents events at every bookmaker, each book scraped once a round
// (the books 1.4 s apart, rounds scrapeRound apart, from 23:20 on a day long
// past: the writes cross midnight and create two partitions of history and
// of the scrape log under fault), each scrape classified by one
// changedetect.Classifier in scrape order, so whole: every market offered
// (changed or not), and a disappearance for each market withdrawn. The
// writes, in scrape order, are cut into batches of 20 to 50 (about
// faultBatches of them): about one scrape in four is split over two batches. It also
// returns a description of the workload for the log.
func scrapeBatchSet() ([]*marketodds.Batch, string) {
	rng := mrand.New(mrand.NewPCG(scrapeSeed, 42))
	start := time.Date(2025, 7, 31, 23, 20, 0, 0, time.UTC)
	type book struct {
		event     int64
		bookmaker string
		offset    time.Duration
		markets   []*scrapeMarket
	}
	var books []*book
	for e := range scrapeEvents {
		event := 8_000_000 + int64(e)
		if e == 0 {
			event = -event // event ids may be negative
		}
		for _, bm := range faultBookmakers {
			books = append(books, &book{event: event, bookmaker: bm,
				offset:  time.Duration(len(books))*1400*time.Millisecond + time.Duration(rng.IntN(1000))*time.Microsecond,
				markets: scrapeBookMarkets(rng)})
		}
	}

	c := changedetect.New(nil)
	var stream []marketodds.Write
	var scrapes, changes, gone, back int
	for r := range scrapeRounds {
		for _, b := range books {
			at := start.Add(time.Duration(r)*scrapeRound + b.offset)
			var ms []marketodds.Market
			for _, m := range b.markets {
				wasGone := m.appeared && !m.offered
				if m.step(rng, r) {
					ms = append(ms, m.m)
					if wasGone {
						back++
					}
				}
			}
			rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
			ws := c.Classify(b.event, b.bookmaker, ms, at)
			for _, w := range ws {
				if w.Changed {
					changes++
				}
				if w.Unavailable {
					gone++
				}
			}
			stream = append(stream, ws...)
			scrapes++
		}
	}

	var batches []*marketodds.Batch
	split := 0
	for pos := 0; pos < len(stream); {
		i := len(batches)
		n := min(20+(i*7)%31, len(stream)-pos)
		b := &marketodds.Batch{RunID: faultRun, Index: i, Writes: stream[pos : pos+n : pos+n]}
		if pos > 0 && scrapeOf(stream[pos-1]) == scrapeOf(stream[pos]) {
			split++
		}
		batches = append(batches, b)
		pos += n
	}
	return batches, fmt.Sprintf("whole scrapes: %d rounds of %d books (%s to %s), %d scrapes (%d split over two batches), "+
		"%d writes of which %d changes (%d disappearances, %d returns)",
		scrapeRounds, len(books), start.Format("2006-01-02 15:04"), stream[len(stream)-1].CapturedAt.Format("2006-01-02 15:04"),
		scrapes, split, len(stream), changes, gone, back)
}

func scrapeOf(w marketodds.Write) scrapeKey {
	return scrapeKey{bookKey{w.EventID, w.Bookmaker}, w.CapturedAt.UnixMicro()}
}

// faultDB is the database a scenario breaks.
type faultDB struct {
	url    string // direct to the server
	host   string
	port   uint16
	schema string
	server *pgserver.Server // nil under DATABASE_URL
}

// faultDatabase returns a database with a fresh schema: on a throwaway
// server of the test's own, or, unless needServer (the test stops the
// server), on ODDSLEDGER_TEST_DATABASE_URL or DATABASE_URL when set. Without
// server binaries it skips the test, or fails it under CI=true.
func faultDatabase(t *testing.T, needServer bool) *faultDB {
	t.Helper()
	db := &faultDB{schema: "faults_" + randomHex(6)}
	db.url = cmp.Or(os.Getenv("ODDSLEDGER_TEST_DATABASE_URL"), os.Getenv("DATABASE_URL"))
	if needServer || db.url == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv, err := pgserver.Start(ctx, pgserver.Options{})
		if err != nil {
			if errors.Is(err, pgserver.ErrNoBinaries) {
				if os.Getenv("CI") == "true" {
					t.Fatalf("no PostgreSQL server for this test: %v (CI=true: database tests must run, not skip)", err)
				}
				t.Skipf("no PostgreSQL server for this test: %v", err)
			}
			t.Fatalf("start PostgreSQL: %v", err)
		}
		t.Cleanup(func() {
			if err := srv.Close(); err != nil {
				t.Errorf("stop PostgreSQL: %v", err)
			}
		})
		db.server, db.url = srv, srv.URL()
	}
	cc, err := pgx.ParseConfig(db.url)
	if err != nil {
		t.Fatal(err)
	}
	db.host, db.port = cc.Host, cc.Port

	conn := db.connect(t)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+pgx.Identifier{db.schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A fresh context and connection: the server may have been restarted.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, db.url)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{db.schema}.Sanitize()+" CASCADE")
			conn.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop schema %s: %v", db.schema, err)
		}
	})
	return db
}

// connect opens a connection straight to the server.
func (db *faultDB) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

// poolConfig is the writer pool's configuration: one connection per worker,
// named appName in pg_stat_activity.
func (db *faultDB) poolConfig(t *testing.T, appName string) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = faultWorkers
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = appName
	return cfg
}

const faultWorkers = 4

// faultHarness is a queue whose handler writes batches to a store, and the
// bookkeeping to check the outcome.
type faultHarness struct {
	t       *testing.T
	db      *faultDB
	wl      *faultWorkload
	pool    *pgxpool.Pool
	store   *marketodds.Store
	queue   *writequeue.Queue
	batches []*marketodds.Batch
	exp     *expectation
	ref     *schemaRows // the scrapes workload's reference, nil for the markets workload

	attempts     []atomic.Int32 // per batch
	historyAdded atomic.Int64   // Result.HistoryAdded of the successful attempts
	historyDup   atomic.Int64   // Result.HistoryDuplicate of the successful attempts
	scrapesAdded atomic.Int64   // Result.Scrapes of the successful attempts
	byScrape     atomic.Int64   // Result.ConfirmedByScrape of the successful attempts
	replayed     atomic.Int64   // batches whose last attempt found its changes already written

	// A logical clock of the handler: every attempt's start and every
	// success's end take the next tick. A batch's write took effect (its
	// commit, perhaps by an attempt whose answer was lost) between its
	// first attempt's start and its successful attempt's end: batch a
	// certainly took effect before batch b when done[a] < started[b].
	clock   atomic.Int64
	started []atomic.Int64 // per batch: its first attempt's start
	done    []atomic.Int64 // per batch: its successful attempt's end

	mu        sync.Mutex
	failures  map[string]int // error kind -> count, of failed attempts Retryable accepted
	permanent []string       // failed attempts Retryable refused
	drops     []string

	faultCtx    context.Context
	faultCancel context.CancelFunc
	faultWG     sync.WaitGroup
}

// newFaultHarness migrates db's schema in the workload's confirmation mode,
// then starts a queue whose handler writes the workload's batches through a
// pool configured by cfg. For a workload of whole scrapes it first makes
// sure the reference is known (see reference). Everything it starts is
// stopped by the test's cleanup at the latest.
func newFaultHarness(t *testing.T, db *faultDB, cfg *pgxpool.Config, maxBackoff time.Duration, wl *faultWorkload) *faultHarness {
	t.Helper()
	ctx := context.Background()
	h := &faultHarness{t: t, db: db, wl: wl, batches: wl.batches, exp: wl.exp, failures: make(map[string]int)}
	h.attempts = make([]atomic.Int32, len(h.batches))
	h.started = make([]atomic.Int64, len(h.batches))
	h.done = make([]atomic.Int64, len(h.batches))
	h.faultCtx, h.faultCancel = context.WithCancel(ctx)
	if wl.mode == marketodds.ConfirmScrapes {
		h.ref = wl.reference(t, db)
	}

	// Migrate over a direct connection, before any fault.
	conn := db.connect(t)
	admin, err := marketodds.NewStore(conn, &marketodds.Config{Schema: db.schema, Confirm: wl.mode})
	if err == nil {
		err = admin.Migrate(ctx)
	}
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if h.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if h.store, err = marketodds.NewStore(h.pool, &marketodds.Config{Schema: db.schema, Confirm: wl.mode}); err != nil {
		h.pool.Close()
		t.Fatal(err)
	}
	h.queue = writequeue.New(&writequeue.Config{
		Buffer:      64,
		Workers:     faultWorkers,
		MaxAttempts: 50,
		BaseBackoff: 10 * time.Millisecond,
		MaxBackoff:  maxBackoff,
		Retryable:   h.retryable,
		OnDrop:      h.onDrop,
		Logger:      slog.New(slog.DiscardHandler),
	})
	writequeue.Handle(h.queue, h.write)
	// The queue's run context outlives the test function: Close, not a
	// cancelled context, stops the queue.
	if err := h.queue.Start(context.WithoutCancel(ctx)); err != nil {
		h.pool.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.closeQueue(10 * time.Second)
		h.stopFaults()
		h.pool.Close()
	})
	return h
}

// write is the queue's handler.
func (h *faultHarness) write(ctx context.Context, b *marketodds.Batch) error {
	attempt := h.attempts[b.Index].Add(1)
	h.started[b.Index].CompareAndSwap(0, h.clock.Add(1))
	// A hung attempt shows up as a dropped batch rather than a hung test.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := h.store.WriteMarketBatch(ctx, *b)
	if err != nil {
		return err
	}
	h.done[b.Index].Store(h.clock.Add(1))
	if len(res.Rejected) > 0 {
		return writequeue.Permanent(fmt.Errorf("batch %d: %d writes rejected, first: %v", b.Index, len(res.Rejected), res.Rejected[0].Err))
	}
	h.historyAdded.Add(int64(res.HistoryAdded))
	h.historyDup.Add(int64(res.HistoryDuplicate))
	h.scrapesAdded.Add(int64(res.Scrapes))
	h.byScrape.Add(int64(res.ConfirmedByScrape))
	if attempt > 1 && res.HistoryAdded == 0 && res.HistoryDuplicate > 0 {
		h.replayed.Add(1)
	}
	return nil
}

// retryable is marketodds.IsTransient, counting what it sees.
func (h *faultHarness) retryable(err error) bool {
	ok := marketodds.IsTransient(err)
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		h.failures[errKind(err)]++
	} else {
		h.permanent = append(h.permanent, fmt.Sprintf("%v [%s]", err, errKind(err)))
	}
	return ok
}

func (h *faultHarness) onDrop(batch any, err error) {
	b := batch.(*marketodds.Batch)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drops = append(h.drops, fmt.Sprintf("batch %d: %v [%s]", b.Index, err, errKind(err)))
}

// goFault runs fn on a goroutine until stopFaults.
func (h *faultHarness) goFault(fn func(ctx context.Context)) {
	h.faultWG.Add(1)
	go func() {
		defer h.faultWG.Done()
		fn(h.faultCtx)
	}()
}

// stopFaults stops the goroutines of goFault and waits for them.
func (h *faultHarness) stopFaults() {
	h.faultCancel()
	h.faultWG.Wait()
}

// enqueue enqueues every batch in order, calling enqueued after each.
func (h *faultHarness) enqueue(ctx context.Context, enqueued func(i int)) {
	for i, b := range h.batches {
		if err := h.queue.Enqueue(ctx, b); err != nil {
			h.t.Errorf("enqueue batch %d: %v", i, err)
			return
		}
		if enqueued != nil {
			enqueued(i)
		}
	}
}

func (h *faultHarness) enqueueAll(ctx context.Context) { h.enqueue(ctx, nil) }

// closeQueue closes the queue, giving it timeout to drain.
func (h *faultHarness) closeQueue(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return h.queue.Close(ctx)
}

// close drains and closes the queue and checks that no batch was dropped.
func (h *faultHarness) close() writequeue.Stats {
	h.t.Helper()
	if err := h.closeQueue(2 * time.Minute); err != nil {
		h.t.Errorf("Close: %v", err)
	}
	s := h.queue.Stats()
	if s.Enqueued != s.Succeeded+s.Dropped || s.Queued != 0 || s.InFlight != 0 {
		h.t.Errorf("after Close: %+v, want Enqueued == Succeeded + Dropped and nothing queued or in flight", s)
	}
	if s.Enqueued != int64(len(h.batches)) || s.Dropped != 0 {
		h.t.Errorf("after Close: %d enqueued, %d dropped; want %d enqueued, none dropped", s.Enqueued, s.Dropped, len(h.batches))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, d := range h.drops {
		if i == 10 {
			h.t.Errorf("... and %d more drops", len(h.drops)-i)
			break
		}
		h.t.Errorf("dropped: %s", d)
	}
	for i, p := range h.permanent {
		if i == 10 {
			h.t.Errorf("... and %d more", len(h.permanent)-i)
			break
		}
		h.t.Errorf("IsTransient(err) = false for an error of a fault the test injected: %s", p)
	}
	return s
}

// faultReport is what a scenario did, for the log.
type faultReport struct {
	about                          string
	stats                          writequeue.Stats
	batches, writes                int
	current, wantCurrent           int
	history, distinct, wantHistory int
	historyAdded, historyDup       int64
	replayed                       int64
	scrapeLog, wantScrapeLog       int   // market_scrape_log rows
	scrapeRows, wantScrapeRows     int   // market_scrapes rows
	scrapesAdded, byScrape         int64 // Result.Scrapes, Result.ConfirmedByScrape
	undercounted                   int   // markets whose change_count is below their history rows
	failures                       map[string]int

	// Against the reference (the scrapes workload).
	referenced  bool
	refRows     int // rows compared, all four relations
	differences int // rows of the faulted schema or the reference without their like in the other
	reordered   int // markets whose changes may have taken effect out of order
	lateCounted int // of those, markets whose change_count is lower than the reference's
}

func (r *faultReport) String() string {
	// Most frequent first.
	kinds := slices.SortedFunc(maps.Keys(r.failures), func(a, b string) int {
		return cmp.Or(r.failures[b]-r.failures[a], strings.Compare(a, b))
	})
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d× %s", r.failures[k], k)
	}
	s := fmt.Sprintf("%s; %d batches (%d writes): enqueued %d, succeeded %d, dropped %d, retries %d; "+
		"current rows %d (want %d); history rows %d, distinct %d (want %d); "+
		"history rows reported added %d, already there %d: %d rows committed by attempts whose answer was lost, "+
		"%d batches replayed after such a commit; scrape log rows %d (want %d), reported added %d; "+
		"market_scrapes rows %d (want %d); markets confirmed by their scrape %d; "+
		"markets whose change_count is below their history rows %d",
		r.about, r.batches, r.writes, r.stats.Enqueued, r.stats.Succeeded, r.stats.Dropped, r.stats.Retries,
		r.current, r.wantCurrent, r.history, r.distinct, r.wantHistory,
		r.historyAdded, r.historyDup, int64(r.wantHistory)-r.historyAdded, r.replayed,
		r.scrapeLog, r.wantScrapeLog, r.scrapesAdded, r.scrapeRows, r.wantScrapeRows, r.byScrape, r.undercounted)
	if r.referenced {
		s += fmt.Sprintf("; against the reference (%d rows): %d differences; markets whose changes may have taken effect "+
			"out of order %d, of which with fewer changes counted %d", r.refRows, r.differences, r.reordered, r.lateCounted)
	}
	return s + "; failed attempts by error: " + strings.Join(kinds, ", ")
}

// verify checks the tables against the expectation, and for the scrapes
// workload against the reference, over a new connection straight to the
// server.
func (h *faultHarness) verify(stats writequeue.Stats) *faultReport {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := h.db.connect(t)
	defer conn.Close(ctx)

	r := &faultReport{about: h.wl.about, stats: stats, batches: len(h.batches), writes: h.exp.writes,
		wantCurrent: len(h.exp.confirmed), wantHistory: len(h.exp.history),
		wantScrapeLog: len(h.exp.scrapes), wantScrapeRows: len(h.exp.newest),
		historyAdded: h.historyAdded.Load(), historyDup: h.historyDup.Load(), replayed: h.replayed.Load(),
		scrapesAdded: h.scrapesAdded.Load(), byScrape: h.byScrape.Load()}
	h.mu.Lock()
	r.failures = maps.Clone(h.failures)
	h.mu.Unlock()

	schema := pgx.Identifier{h.db.schema}.Sanitize()
	// The current rows as ConfirmMarkets stores them: the table itself, or
	// in ConfirmScrapes the view that reads each available market's
	// confirmation from its scrape.
	current := schema + ".market_odds_current"
	if h.wl.mode == marketodds.ConfirmScrapes {
		current = schema + ".market_odds_live"
	}
	type keyRow struct {
		key marketodds.Key
		at  time.Time
	}
	scanKeys := func(sql string) []keyRow {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keyRow, error) {
			var kr keyRow
			err := row.Scan(&kr.key.EventID, &kr.key.Bookmaker, &kr.key.MarketID, &kr.key.Line, &kr.at)
			return kr, err
		})
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return out
	}

	// Every market, with its newest confirmation: nothing lost, nothing
	// moved backwards.
	currentRows := scanKeys(`SELECT event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), last_confirmed_at
FROM ` + current)
	r.current = len(currentRows)
	var bad []string
	seen := make(map[marketodds.Key]bool, len(currentRows))
	for _, c := range currentRows {
		want, ok := h.exp.confirmed[c.key]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("current: unexpected market %s", c.key))
		case seen[c.key]:
			bad = append(bad, fmt.Sprintf("current: market %s twice", c.key))
		case !c.at.Equal(want):
			bad = append(bad, fmt.Sprintf("current: market %s last confirmed at %s, want %s", c.key, c.at.UTC(), want))
		}
		seen[c.key] = true
	}
	for k := range h.exp.confirmed {
		if !seen[k] {
			bad = append(bad, fmt.Sprintf("current: market %s missing", k))
		}
	}

	// One history row per changed write.
	history := scanKeys(`SELECT event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at
FROM ` + schema + `.market_odds_history`)
	r.history = len(history)
	counts := make(map[histKey]int, len(history))
	for _, hr := range history {
		hk := histKey{hr.key, hr.at.UnixMicro()}
		counts[hk]++
		switch {
		case !h.exp.history[hk]:
			bad = append(bad, fmt.Sprintf("history: unexpected row %s at %s", hk.key, hr.at.UTC()))
		case counts[hk] == 2:
			bad = append(bad, fmt.Sprintf("history: duplicated row %s at %s", hk.key, hr.at.UTC()))
		}
	}
	r.distinct = len(counts)
	for hk := range h.exp.history {
		if counts[hk] == 0 {
			bad = append(bad, fmt.Sprintf("history: missing row %s at %s", hk.key, time.UnixMicro(hk.at).UTC()))
		}
	}

	// The newest change reached the current row, whatever order retries
	// delivered the batches in, and change_count counted no change twice (a
	// change that arrived after a newer one is in history only).
	changes := make(map[marketodds.Key]int, len(counts))
	for hk := range counts {
		changes[hk.key]++
	}
	rows, err := conn.Query(ctx, `SELECT event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0),
    last_updated_at, change_count FROM `+current)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k marketodds.Key
		var updated time.Time
		var n int
		if err := rows.Scan(&k.EventID, &k.Bookmaker, &k.MarketID, &k.Line, &updated, &n); err != nil {
			t.Fatal(err)
		}
		if want, ok := h.exp.updated[k]; ok && !updated.Equal(want) {
			bad = append(bad, fmt.Sprintf("current: market %s last updated at %s, want its newest change %s", k, updated.UTC(), want))
		}
		if n > changes[k] || (changes[k] > 0 && n == 0) {
			bad = append(bad, fmt.Sprintf("current: market %s change_count %d, want 1 to %d (its history rows)", k, n, changes[k]))
		}
		if n < changes[k] {
			r.undercounted++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// One scrape log row per scrape: per distinct (event, bookmaker,
	// CapturedAt) of the writes, however many batches it was split over and
	// however often they were retried.
	logRows, err := conn.Query(ctx, `SELECT event_id, bookmaker_slug, scraped_at FROM `+schema+`.market_scrape_log`)
	if err != nil {
		t.Fatal(err)
	}
	logCounts := make(map[scrapeKey]int, len(h.exp.scrapes))
	var sk scrapeKey
	var at time.Time
	if _, err := pgx.ForEachRow(logRows, []any{&sk.book.event, &sk.book.bookmaker, &at}, func() error {
		r.scrapeLog++
		sk.at = at.UnixMicro()
		logCounts[sk]++
		switch {
		case !h.exp.scrapes[sk]:
			bad = append(bad, fmt.Sprintf("scrape log: unexpected scrape of %d at %s at %s", sk.book.event, sk.book.bookmaker, at.UTC()))
		case logCounts[sk] == 2:
			bad = append(bad, fmt.Sprintf("scrape log: scrape of %d at %s at %s twice", sk.book.event, sk.book.bookmaker, at.UTC()))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for sk := range h.exp.scrapes {
		if logCounts[sk] == 0 {
			bad = append(bad, fmt.Sprintf("scrape log: missing scrape of %d at %s at %s", sk.book.event, sk.book.bookmaker,
				time.UnixMicro(sk.at).UTC()))
		}
	}

	// market_scrapes: each book's newest scrape, never an older one.
	newestRows, err := conn.Query(ctx, `SELECT event_id, bookmaker_slug, last_scraped_at FROM `+schema+`.market_scrapes`)
	if err != nil {
		t.Fatal(err)
	}
	seenBooks := make(map[bookKey]bool, len(h.exp.newest))
	var bk bookKey
	if _, err := pgx.ForEachRow(newestRows, []any{&bk.event, &bk.bookmaker, &at}, func() error {
		r.scrapeRows++
		want, ok := h.exp.newest[bk]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("market_scrapes: unexpected book %d at %s", bk.event, bk.bookmaker))
		case seenBooks[bk]:
			bad = append(bad, fmt.Sprintf("market_scrapes: book %d at %s twice", bk.event, bk.bookmaker))
		case !at.Equal(want):
			bad = append(bad, fmt.Sprintf("market_scrapes: book %d at %s last scraped at %s, want %s", bk.event, bk.bookmaker, at.UTC(), want))
		}
		seenBooks[bk] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for bk := range h.exp.newest {
		if !seenBooks[bk] {
			bad = append(bad, fmt.Sprintf("market_scrapes: book %d at %s missing", bk.event, bk.bookmaker))
		}
	}

	if h.ref != nil {
		h.compareReference(ctx, conn, r)
	}

	if r.current != r.wantCurrent || r.history != r.wantHistory || r.distinct != r.wantHistory ||
		r.scrapeLog != r.wantScrapeLog || r.scrapeRows != r.wantScrapeRows || r.differences != 0 || len(bad) > 0 {
		t.Errorf("tables after the run: %s", r)
		slices.Sort(bad)
		for i, b := range bad {
			if i == 20 {
				t.Errorf("... and %d more", len(bad)-i)
				break
			}
			t.Error(b)
		}
	}
	return r
}

// schemaRows is every row that compareReference compares, sorted.
type schemaRows struct {
	live   []liveRow           // market_odds_live, in key order
	tables map[string][]string // each of refTables: every row, all columns, as PostgreSQL prints it
	// historyKeys is the market of each row of tables["market_odds_history"].
	historyKeys map[string]marketodds.Key
}

// refTables are compared row for row, as text.
var refTables = []string{"market_odds_history", "market_scrapes", "market_scrape_log"}

// liveRow is a row of market_odds_live.
type liveRow struct {
	Key         marketodds.Key
	ChangeCount int
	Rest        string // every column but change_count: the row as jsonb (to_jsonb(row) - 'change_count')
}

// readRows reads the rows compareReference compares from schema, times in
// UTC, so that rows read on different servers compare.
func readRows(ctx context.Context, conn *pgx.Conn, schema string) (*schemaRows, error) {
	if _, err := conn.Exec(ctx, "SET TIME ZONE 'UTC'"); err != nil {
		return nil, err
	}
	sr := &schemaRows{tables: make(map[string][]string)}
	rows, err := conn.Query(ctx, `SELECT event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), change_count,
    (to_jsonb(x) - 'change_count')::text FROM `+pgx.Identifier{schema, "market_odds_live"}.Sanitize()+` x`)
	if err != nil {
		return nil, err
	}
	sr.live, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (liveRow, error) {
		var lr liveRow
		err := row.Scan(&lr.Key.EventID, &lr.Key.Bookmaker, &lr.Key.MarketID, &lr.Key.Line, &lr.ChangeCount, &lr.Rest)
		return lr, err
	})
	if err != nil {
		return nil, fmt.Errorf("market_odds_live: %w", err)
	}
	slices.SortFunc(sr.live, func(a, b liveRow) int { return a.Key.Compare(b.Key) })
	for _, table := range refTables {
		rows, err := conn.Query(ctx, `SELECT x::text FROM `+pgx.Identifier{schema, table}.Sanitize()+` x`)
		if err != nil {
			return nil, err
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		slices.Sort(texts)
		sr.tables[table] = texts
	}
	rows, err = conn.Query(ctx, `SELECT x::text, event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)
FROM `+pgx.Identifier{schema, "market_odds_history"}.Sanitize()+` x`)
	if err != nil {
		return nil, err
	}
	sr.historyKeys = make(map[string]marketodds.Key)
	var text string
	var k marketodds.Key
	if _, err := pgx.ForEachRow(rows, []any{&text, &k.EventID, &k.Bookmaker, &k.MarketID, &k.Line}, func() error {
		sr.historyKeys[text] = k
		return nil
	}); err != nil {
		return nil, fmt.Errorf("market_odds_history: %w", err)
	}
	return sr, nil
}

// reference returns what the workload's batches make written once, in
// order and without faults, by a store in ConfirmMarkets mode: what the
// faulted ConfirmScrapes run must read the same as. It writes them in a
// schema of its own on db's server, dropped afterwards, once for the whole
// test: the rows do not depend on the server, and readRows reads times in
// UTC. In order, the reference counts every change: its change_count is
// each market's number of history rows.
func (wl *faultWorkload) reference(t *testing.T, db *faultDB) *schemaRows {
	t.Helper()
	wl.refMu.Lock()
	defer wl.refMu.Unlock()
	if wl.ref != nil {
		return wl.ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn := db.connect(t)
	defer conn.Close(context.WithoutCancel(ctx))
	schema := "faults_ref_" + randomHex(6)
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	}()
	store, err := marketodds.NewStore(conn, &marketodds.Config{Schema: schema, Confirm: marketodds.ConfirmMarkets})
	if err == nil {
		err = store.Migrate(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range wl.batches {
		res, err := store.WriteMarketBatch(ctx, *b)
		if err == nil && len(res.Rejected) > 0 {
			err = fmt.Errorf("%d writes rejected, first: %v", len(res.Rejected), res.Rejected[0].Err)
		}
		if err != nil {
			t.Fatalf("reference: batch %d: %v", b.Index, err)
		}
	}
	ref, err := readRows(ctx, conn, schema)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	changes := make(map[marketodds.Key]int)
	for hk := range wl.exp.history {
		changes[hk.key]++
	}
	if len(ref.live) != len(wl.exp.confirmed) || len(ref.tables["market_odds_history"]) != len(wl.exp.history) ||
		len(ref.tables["market_scrape_log"]) != len(wl.exp.scrapes) || len(ref.tables["market_scrapes"]) != len(wl.exp.newest) {
		t.Fatalf("reference: %d current rows, %d history, %d scrape log, %d market_scrapes; want %d, %d, %d, %d",
			len(ref.live), len(ref.tables["market_odds_history"]), len(ref.tables["market_scrape_log"]), len(ref.tables["market_scrapes"]),
			len(wl.exp.confirmed), len(wl.exp.history), len(wl.exp.scrapes), len(wl.exp.newest))
	}
	for _, lr := range ref.live {
		if lr.ChangeCount != changes[lr.Key] {
			t.Fatalf("reference: market %s change_count %d, want its %d changes", lr.Key, lr.ChangeCount, changes[lr.Key])
		}
	}
	wl.ref = ref
	return ref
}

// compareReference compares the faulted schema with the reference: every
// row of market_odds_live (all columns), of history (all columns), of
// market_scrapes and of market_scrape_log must be the same, none missing,
// none more. It reports the first differences of each.
//
// One difference is expected, and counted instead: the retries deliver
// batches out of order, and the store does not count in change_count a
// change that arrives after a newer change of its market (the upsert's
// stale guard in write_markets.sql refuses it; repair_current.sql, which
// then places it, leaves change_count as it is; verify's bound allows it).
// So a market may have fewer changes counted than the reference, at most
// as many fewer as it has changes that may have taken effect after a newer
// one (their batch was still in flight, by the handler's clock, when a
// later batch of the market's changes started), with every other column
// the same. Any other difference fails.
func (h *faultHarness) compareReference(ctx context.Context, conn *pgx.Conn, r *faultReport) {
	t := h.t
	t.Helper()
	got, err := readRows(ctx, conn, h.db.schema)
	if err != nil {
		t.Fatalf("faulted schema: %v", err)
	}
	r.referenced = true

	// late[k]: how many of market k's changes may have taken effect after
	// a newer change of it (their batch was in flight when a later batch
	// of the market's changes started).
	late := make(map[marketodds.Key]int)
	for k, bs := range h.exp.changeBatches {
		for i, a := range bs {
			if slices.ContainsFunc(bs[i+1:], func(b int) bool { return h.done[a].Load() > h.started[b].Load() }) {
				late[k]++
			}
		}
		if late[k] == 0 {
			delete(late, k)
		}
	}
	r.reordered = len(late)
	refLive := make(map[marketodds.Key]liveRow, len(h.ref.live))
	for _, lr := range h.ref.live {
		refLive[lr.Key] = lr
	}
	live := slices.Clone(got.live)
	var lateCounted []string
	for i, lr := range live {
		if want, ok := refLive[lr.Key]; ok && lr.Rest == want.Rest &&
			lr.ChangeCount < want.ChangeCount && lr.ChangeCount >= want.ChangeCount-late[lr.Key] {
			lateCounted = append(lateCounted, fmt.Sprintf("%s: %d, the reference %d, %d changes possibly late",
				lr.Key, lr.ChangeCount, want.ChangeCount, late[lr.Key]))
			live[i].ChangeCount = want.ChangeCount
		}
	}
	r.lateCounted = len(lateCounted)
	if len(lateCounted) > 0 {
		t.Logf("change_count lower than the reference's, all other columns equal, for %d markets whose changes may have "+
			"arrived after newer ones (in history only), e.g. %s", len(lateCounted), strings.Join(lateCounted[:min(3, len(lateCounted))], "; "))
	}

	report := func(name string, d string, n int) {
		r.differences += n
		if d == "" {
			return
		}
		lines := strings.Split(d, "\n")
		if len(lines) > 40 {
			lines = append(lines[:40], fmt.Sprintf("... (%d more lines)", len(lines)-40))
		}
		t.Errorf("%s: %d rows differ from the reference (-reference +faulted):\n%s", name, n, strings.Join(lines, "\n"))
	}
	r.refRows = len(h.ref.live)
	report("market_odds_live", gocmp.Diff(h.ref.live, live), unmatched(h.ref.live, live))
	for _, table := range refTables {
		r.refRows += len(h.ref.tables[table])
		report(table, gocmp.Diff(h.ref.tables[table], got.tables[table]), unmatched(h.ref.tables[table], got.tables[table]))
	}

	// The markets that differ, and how their changes reached the store.
	var differ []marketodds.Key
	for _, lr := range live {
		if want, ok := refLive[lr.Key]; !ok || want != lr {
			differ = append(differ, lr.Key)
		}
	}
	for text, k := range got.historyKeys {
		if _, found := slices.BinarySearch(h.ref.tables["market_odds_history"], text); !found {
			differ = append(differ, k)
		}
	}
	slices.SortFunc(differ, marketodds.Key.Compare)
	differ = slices.Compact(differ)
	for i, k := range differ {
		if i == 5 {
			t.Errorf("... and %d more markets differ", len(differ)-i)
			break
		}
		t.Errorf("market %s differs; %s", k, h.changeDelivery(k))
	}
}

// changeDelivery describes how a market's changes reached the store: the
// batches that hold them, each with its first attempt's start and its
// successful attempt's end on the handler's clock, and which were in flight
// while a later one of them started.
func (h *faultHarness) changeDelivery(k marketodds.Key) string {
	bs := h.exp.changeBatches[k]
	parts := make([]string, len(bs))
	for i, a := range bs {
		var at time.Time
		for _, w := range h.batches[a].Writes {
			if w.Key() == k && w.Changed {
				at = w.CapturedAt
			}
		}
		parts[i] = fmt.Sprintf("batch %d (%s, %d attempts, ticks %d-%d)", a, at.UTC().Format("15:04:05.000000"),
			h.attempts[a].Load(), h.started[a].Load(), h.done[a].Load())
		var with []string
		for _, b := range bs[i+1:] {
			if h.done[a].Load() > h.started[b].Load() {
				with = append(with, strconv.Itoa(b))
			}
		}
		if len(with) > 0 {
			parts[i] += " in flight when batch " + strings.Join(with, ", ") + " started"
		}
	}
	return "its changes: " + strings.Join(parts, "; ")
}

// unmatched counts the rows of a and of b that have no equal row in the
// other (as multisets).
func unmatched[T comparable](a, b []T) int {
	n := make(map[T]int, len(a))
	for _, x := range a {
		n[x]++
	}
	for _, x := range b {
		n[x]--
	}
	d := 0
	for _, c := range n {
		d += max(c, -c)
	}
	return d
}

// errKind describes an error by the types along its chain (fmt's wrappers
// left out), with SQLSTATEs, errnos and sentinel texts: "what broke", for
// the report.
func errKind(err error) string {
	var parts []string
	for err != nil {
		switch e := err.(type) {
		case *pgconn.PgError:
			if e.Code == "08P01" { // PgBouncer's errors: the message says which
				parts = append(parts, "PgError "+e.Code+" "+strconv.Quote(e.Message))
			} else {
				parts = append(parts, "PgError "+e.Code)
			}
		case syscall.Errno:
			parts = append(parts, "Errno "+e.Error())
		default:
			typ := fmt.Sprintf("%T", err)
			switch {
			case typ == "*fmt.wrapError" || typ == "*fmt.wrapErrors":
			case typ == "*errors.errorString":
				parts = append(parts, strconv.Quote(err.Error()))
			default:
				parts = append(parts, typ)
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			var subs []string
			for _, e := range u.Unwrap() {
				subs = append(subs, errKind(e))
			}
			parts = append(parts, "["+strings.Join(subs, " | ")+"]")
			err = nil
		default:
			err = nil
		}
	}
	return strings.Join(parts, " > ")
}

// paceFaults waits before the next fault of a goFault loop: a random time
// in [lo, hi), and then until at least n more batches have been written,
// so that the faults keep pace with the writes however slow the machine is.
// That bounds the retries, and so the test's duration. It reports whether
// ctx is still alive.
func (h *faultHarness) paceFaults(ctx context.Context, n int64, lo, hi time.Duration) bool {
	start := h.queue.Stats().Succeeded
	if !writequeue.SleepCtx(ctx, lo+mrand.N(hi-lo)) {
		return false
	}
	for h.queue.Stats().Succeeded < start+n {
		if !writequeue.SleepCtx(ctx, time.Millisecond) {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
