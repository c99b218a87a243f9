package feed

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oddsledger/oddsledger/examples/internal/sim"
	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
	"github.com/oddsledger/oddsledger/writequeue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var simStart = time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)

func testSim(events int, change float64, seed uint64) *sim.Simulator {
	return sim.New(sim.Config{Events: events, ChangeRate: change, Interval: 5 * time.Minute,
		Horizon: 72 * time.Hour, Seed: seed, Start: simStart})
}

// newTestStore is a migrated store in a schema of the test's own.
func newTestStore(t *testing.T) *marketodds.Store {
	t.Helper()
	store, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: pgtest.Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

// unstartedStore is a store that is never written to: for tests of the
// feed's logic only.
func unstartedStore(t *testing.T) *marketodds.Store {
	t.Helper()
	store, err := marketodds.NewStore(pgtest.Pool(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// TestDroppedBatchIsForgotten: a batch the queue gives up on must not lose
// its changes: the next scrape reports them changed again.
func TestDroppedBatchIsForgotten(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	f := New(Config{Store: unstartedStore(t), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s := testSim(1, 0, 1)
	s.Advance()
	e := s.Events()[0]
	markets := s.Scrape(e, 0)
	writes := f.Classifier.Classify(e.ID, "betpawa", markets, simStart)
	f.onDrop(&marketodds.Batch{Writes: writes, Index: 3}, &writequeue.DropError{Attempts: 5, Err: errors.New("boom")})

	again := f.Classifier.Classify(e.ID, "betpawa", markets, simStart.Add(time.Minute))
	for _, w := range again {
		if !w.Changed {
			t.Fatalf("market %v unchanged after its batch was dropped: its change would be lost", w.Key())
		}
	}
	// Unchanged writes carry no change: dropping them forgets nothing.
	f.onDrop(&marketodds.Batch{Writes: f.Classifier.Classify(e.ID, "betpawa", markets, simStart.Add(2*time.Minute))},
		errors.New("boom"))
	for _, w := range f.Classifier.Classify(e.ID, "betpawa", markets, simStart.Add(3*time.Minute)) {
		if w.Changed {
			t.Fatalf("market %v changed: forgetting an unchanged write costs a history row for nothing", w.Key())
		}
	}
	if !strings.Contains(logs.String(), "market batch dropped") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("drop not logged with its reason:\n%s", logs.String())
	}
	if got := f.Stats().DroppedWrites; got != int64(2*len(writes)) {
		t.Errorf("DroppedWrites %d, want %d", got, 2*len(writes))
	}

	// Batches of other types go to OnDropOther.
	var other any
	f2 := New(Config{Store: unstartedStore(t), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnDropOther: func(batch any, err error) { other = batch }})
	f2.onDrop("a snapshot", errors.New("gone"))
	if other != "a snapshot" {
		t.Errorf("OnDropOther got %v", other)
	}
}

// TestRejectedWritesLogged: the handler logs every rejected write with its
// reason, and the rest of the batch is written.
func TestRejectedWritesLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs bytes.Buffer
	f := New(Config{Store: newTestStore(t), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s := testSim(1, 0, 1)
	s.Advance()
	markets := s.Scrape(s.Events()[0], 0)
	bad := markets[0]
	bad.Outcomes = []marketodds.Outcome{{Name: "1", Odds: 0.5}}
	b := &marketodds.Batch{Writes: []marketodds.Write{
		{Market: markets[1], CapturedAt: simStart, Changed: true},
		{Market: bad, CapturedAt: simStart, Changed: true},
	}}
	if err := f.WriteMarkets(ctx, b); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Rejected != 1 || st.HistoryAdded != 1 {
		t.Errorf("rejected %d, history added %d: want 1 and 1", st.Rejected, st.HistoryAdded)
	}
	if l := logs.String(); !strings.Contains(l, "write rejected") || !strings.Contains(l, "Outcomes[0].Odds") {
		t.Errorf("rejection not logged with its reason:\n%s", l)
	}
}

// TestDroppedBatchReachesHistory is the guarantee end to end: a batch that
// fails for good is dropped, its changes are forgotten by the classifier,
// and the next cycle writes them, so history misses nothing. A transient
// failure is retried.
func TestDroppedBatchReachesHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newTestStore(t)
	schema := store.Config().Schema
	var logs bytes.Buffer
	var failedOnce, retriedOnce atomic.Bool
	f := New(Config{Store: store, Logger: slog.New(slog.NewTextHandler(&logs, nil)), BatchSize: 300,
		Queue: &writequeue.Config{Workers: 2, BaseBackoff: time.Millisecond},
		Intercept: func(ctx context.Context, b *marketodds.Batch, write func(context.Context, *marketodds.Batch) error) error {
			switch {
			case b.Index == 1 && failedOnce.CompareAndSwap(false, true):
				return writequeue.Permanent(errors.New("disk on fire"))
			case b.Index == 2 && retriedOnce.CompareAndSwap(false, true):
				return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
			}
			return write(ctx, b)
		}})
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx, time.Minute)

	// No change after the first cycle: what the second cycle appends to
	// history is what the dropped batch lost.
	s := testSim(6, 0, 1)
	scrape := func(ctx context.Context, eventID int64, bookmaker string, markets []marketodds.Market, at time.Time) error {
		_, err := f.Scrape(ctx, eventID, bookmaker, markets, at)
		return err
	}
	cycle := func() {
		s.Advance()
		if err := s.ScrapeCycle(ctx, scrape); err != nil {
			t.Fatal(err)
		}
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (current, history int64) {
		err := pgtest.Pool(t).QueryRow(ctx, `SELECT (SELECT count(*) FROM `+pgx.Identifier{schema, "market_odds_current"}.Sanitize()+
			`), (SELECT count(DISTINCT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0))) FROM `+
			pgx.Identifier{schema, "market_odds_history"}.Sanitize()+`)`).Scan(&current, &history)
		if err != nil {
			t.Fatal(err)
		}
		return current, history
	}

	cycle()
	st := f.Stats()
	if st.Queue.Dropped != 1 || st.Queue.Retries != 1 || st.DroppedWrites == 0 {
		t.Fatalf("after cycle 1: %+v; want one batch dropped, one retried", st)
	}
	if cur, hist := count(); hist >= int64(s.Distinct()) || cur != hist {
		t.Fatalf("after cycle 1: %d current rows, history of %d markets, %d markets seen: want the dropped batch missing",
			cur, hist, s.Distinct())
	}
	cycle()
	if cur, hist := count(); cur != int64(s.Distinct()) || hist != cur {
		t.Errorf("after cycle 2: %d current rows, history of %d markets, %d markets seen: want all of them", cur, hist, s.Distinct())
	}
	if st := f.Stats(); st.HistoryAdded != int64(s.Distinct()) {
		t.Errorf("%d history rows for %d markets: want one each, the re-sent ones included", st.HistoryAdded, s.Distinct())
	}
	if !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), "will retry") {
		t.Errorf("drop and retry not logged:\n%s", logs.String())
	}
}

// TestResetSchema: the schema is dropped and recreated when it holds only
// oddsledger's tables (every one its migrations make) and the caller's own,
// and left alone when it holds anything else.
func TestResetSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newTestStore(t)
	schema := store.Config().Schema
	pool := pgtest.Pool(t)
	q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
	if _, err := pool.Exec(ctx, "CREATE TABLE "+q("mine")+" (x int)"); err != nil {
		t.Fatal(err)
	}
	exists := func(table string) bool {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", q(table)).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if err := ResetSchema(ctx, pool, schema); err == nil || !strings.Contains(err.Error(), "mine") {
		t.Fatalf("ResetSchema of a schema holding another table: %v, want a refusal naming it", err)
	}
	if !exists("mine") || !exists("market_odds_history") {
		t.Fatal("a refused reset dropped tables")
	}
	if err := ResetSchema(ctx, pool, schema, "mine"); err != nil {
		t.Fatal(err)
	}
	if exists("mine") || exists("market_odds_history") {
		t.Error("the schema was not emptied")
	}
	names, err := libraryRelations()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"market_odds_current", "market_odds_history", "oddsledger_migrations"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("library relations %v lack %s", names, want)
		}
	}
}
