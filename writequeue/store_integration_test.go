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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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
// Each time, afterwards, every market of every batch is in
// market_odds_current with its newest confirmation, and market_odds_history
// holds exactly one row per changed write: nothing lost, nothing duplicated,
// although some batches are retried after a commit whose answer was lost.
//
// The scenarios run one after the other, each against a server of its own
// (all but the restart may use DATABASE_URL instead), so that breaking one
// server disturbs no other test.
func TestStoreUnderFaults(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("fault-injection integration test against PostgreSQL; skipped in -short mode (never under CI=true)")
	}
	t.Run("TerminateBackend", testTerminateBackend)
	t.Run("ProxyCuts", testProxyCuts)
	t.Run("ServerRestart", testServerRestart)
	t.Run("PgBouncerTerminateServer", testPgBouncerTerminateServer)
}

// (a) A killer terminates the writer's backends every few milliseconds (and
// every few batches: see paceFaults).
func testTerminateBackend(t *testing.T) {
	db := faultDatabase(t, false)
	appName := "oddsledger-writer-" + randomHex(4)
	cfg := db.poolConfig(t, appName)
	h := newFaultHarness(t, db, cfg, 500*time.Millisecond)

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
func testProxyCuts(t *testing.T) {
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
	h := newFaultHarness(t, db, cfg, 500*time.Millisecond)

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
func testServerRestart(t *testing.T) {
	db := faultDatabase(t, true)
	cfg := db.poolConfig(t, "oddsledger-writer")
	h := newFaultHarness(t, db, cfg, time.Second)

	const restartAt = faultBatches / 3
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
func testPgBouncerTerminateServer(t *testing.T) {
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
	h := newFaultHarness(t, db, cfg, 500*time.Millisecond)

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

// histKey identifies a history row.
type histKey struct {
	key marketodds.Key
	at  int64 // captured_at, Unix microseconds
}

// expectation is what the tables must hold once every batch is written.
type expectation struct {
	writes    int
	confirmed map[marketodds.Key]time.Time // newest CapturedAt of each market
	updated   map[marketodds.Key]time.Time // newest CapturedAt of its changes
	history   map[histKey]bool             // one row per changed write
}

// faultBatchSet builds the scenarios' batches, deterministically: batch i
// holds 20 to 50 writes over distinct markets, captured at one time of its
// own (one second apart, across a midnight long past, for which Migrate
// creates no partition: the writes create two history partitions under
// fault), about 3 in 7 of them changes, a few of those disappearances.
func faultBatchSet() ([]*marketodds.Batch, *expectation) {
	base := time.Date(2025, 6, 30, 23, 55, 0, 0, time.UTC)
	exp := &expectation{confirmed: make(map[marketodds.Key]time.Time), updated: make(map[marketodds.Key]time.Time),
		history: make(map[histKey]bool)}
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
			w := marketodds.Write{Market: m, CapturedAt: at, Changed: changed, Unavailable: changed && (i+j)%11 == 0}
			b.Writes = append(b.Writes, w)

			key := m.Key()
			if at.After(exp.confirmed[key]) {
				exp.confirmed[key] = at
			}
			if changed {
				exp.history[histKey{key, at.UnixMicro()}] = true
				if at.After(exp.updated[key]) {
					exp.updated[key] = at
				}
			}
			exp.writes++
		}
		batches[i] = b
	}
	return batches, exp
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
	pool    *pgxpool.Pool
	store   *marketodds.Store
	queue   *writequeue.Queue
	batches []*marketodds.Batch
	exp     *expectation

	attempts     []atomic.Int32 // per batch
	historyAdded atomic.Int64   // Result.HistoryAdded of the successful attempts
	historyDup   atomic.Int64   // Result.HistoryDuplicate of the successful attempts
	replayed     atomic.Int64   // batches whose last attempt found its changes already written

	mu        sync.Mutex
	failures  map[string]int // error kind -> count, of failed attempts Retryable accepted
	permanent []string       // failed attempts Retryable refused
	drops     []string

	faultCtx    context.Context
	faultCancel context.CancelFunc
	faultWG     sync.WaitGroup
}

// newFaultHarness migrates db's schema, then starts a queue whose handler
// writes through a pool configured by cfg. Everything it starts is stopped
// by the test's cleanup at the latest.
func newFaultHarness(t *testing.T, db *faultDB, cfg *pgxpool.Config, maxBackoff time.Duration) *faultHarness {
	t.Helper()
	ctx := context.Background()
	h := &faultHarness{t: t, db: db, failures: make(map[string]int)}
	h.batches, h.exp = faultBatchSet()
	h.attempts = make([]atomic.Int32, len(h.batches))
	h.faultCtx, h.faultCancel = context.WithCancel(ctx)

	// Migrate over a direct connection, before any fault.
	conn := db.connect(t)
	admin, err := marketodds.NewStore(conn, &marketodds.Config{Schema: db.schema})
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
	if h.store, err = marketodds.NewStore(h.pool, &marketodds.Config{Schema: db.schema}); err != nil {
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
	// A hung attempt shows up as a dropped batch rather than a hung test.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := h.store.WriteMarketBatch(ctx, *b)
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return writequeue.Permanent(fmt.Errorf("batch %d: %d writes rejected, first: %v", b.Index, len(res.Rejected), res.Rejected[0].Err))
	}
	h.historyAdded.Add(int64(res.HistoryAdded))
	h.historyDup.Add(int64(res.HistoryDuplicate))
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
	stats                          writequeue.Stats
	batches, writes                int
	current, wantCurrent           int
	history, distinct, wantHistory int
	historyAdded, historyDup       int64
	replayed                       int64
	failures                       map[string]int
}

func (r *faultReport) String() string {
	// Most frequent first.
	kinds := slices.SortedFunc(maps.Keys(r.failures), func(a, b string) int {
		return cmp.Or(r.failures[b]-r.failures[a], strings.Compare(a, b))
	})
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d× %s", r.failures[k], k)
	}
	return fmt.Sprintf("%d batches (%d writes): enqueued %d, succeeded %d, dropped %d, retries %d; "+
		"current rows %d (want %d); history rows %d, distinct %d (want %d); "+
		"history rows reported added %d, already there %d: %d rows committed by attempts whose answer was lost, "+
		"%d batches replayed after such a commit; failed attempts by error: %s",
		r.batches, r.writes, r.stats.Enqueued, r.stats.Succeeded, r.stats.Dropped, r.stats.Retries,
		r.current, r.wantCurrent, r.history, r.distinct, r.wantHistory,
		r.historyAdded, r.historyDup, int64(r.wantHistory)-r.historyAdded, r.replayed, strings.Join(kinds, ", "))
}

// verify checks the tables against the expectation, over a new connection
// straight to the server.
func (h *faultHarness) verify(stats writequeue.Stats) *faultReport {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := h.db.connect(t)
	defer conn.Close(ctx)

	r := &faultReport{stats: stats, batches: len(h.batches), writes: h.exp.writes,
		wantCurrent: len(h.exp.confirmed), wantHistory: len(h.exp.history),
		historyAdded: h.historyAdded.Load(), historyDup: h.historyDup.Load(), replayed: h.replayed.Load()}
	h.mu.Lock()
	r.failures = maps.Clone(h.failures)
	h.mu.Unlock()

	schema := pgx.Identifier{h.db.schema}.Sanitize()
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
	current := scanKeys(`SELECT event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), last_confirmed_at
FROM ` + schema + `.market_odds_current`)
	r.current = len(current)
	var bad []string
	seen := make(map[marketodds.Key]bool, len(current))
	for _, c := range current {
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
    last_updated_at, change_count FROM `+schema+`.market_odds_current`)
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
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	if r.current != r.wantCurrent || r.history != r.wantHistory || r.distinct != r.wantHistory || len(bad) > 0 {
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
