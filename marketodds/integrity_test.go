package marketodds_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// Tests for the integrity findings of issue #9, against a real PostgreSQL.

// readmeGrants returns the SQL of the ```sql block under "Grants" in the
// README, with the schema odds and the role odds_writer replaced by the
// test's own: the README is the one place the writer's grants live.
func readmeGrants(t *testing.T, schema, role string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "Grants")
	if i < 0 {
		t.Fatal(`README.md has no "Grants" section`)
	}
	doc = doc[i:]
	start := strings.Index(doc, "```sql\n")
	if start < 0 {
		t.Fatal("README.md: no ```sql block under Grants")
	}
	doc = doc[start+len("```sql\n"):]
	end := strings.Index(doc, "```")
	if end < 0 {
		t.Fatal("README.md: the ```sql block under Grants is not closed")
	}
	var lines []string
	for l := range strings.SplitSeq(doc[:end], "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	sql := strings.Join(lines, "\n")
	if !strings.Contains(strings.ToUpper(sql), "GRANT") {
		t.Fatalf("README.md: the block under Grants has no GRANT: %q", sql)
	}
	names := map[string]string{"odds": pgx.Identifier{schema}.Sanitize(), "odds_writer": pgx.Identifier{role}.Sanitize()}
	return regexp.MustCompile(`\b(odds_writer|odds)\b`).ReplaceAllStringFunc(sql, func(s string) string { return names[s] })
}

// newPool is a pool of its own on the test server, with the shared pool's
// settings changed by mutate.
func newPool(t *testing.T, mutate func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	// The server itself, not a pooler in front of it
	// (ODDSLEDGER_TEST_PGBOUNCER): these pools set session parameters at
	// login, which a transaction pooler refuses.
	cfg, err := pgxpool.ParseConfig(pgtest.DirectURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	mutate(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newWriterStore creates a LOGIN role with exactly the README's grants on
// owner's schema and returns a new store connected as that role.
func newWriterStore(t *testing.T, owner *testStore) *marketodds.Store {
	t.Helper()
	ctx := context.Background()
	role := owner.schema + "_writer"
	const password = "writer-password"
	admin := pgtest.Pool(t)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // roles are cluster-wide: drop it (after its pool, closed first)
		id := pgx.Identifier{role}.Sanitize()
		if _, err := admin.Exec(context.Background(), "DROP OWNED BY "+id+"; DROP ROLE "+id); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	if _, err := admin.Exec(ctx, readmeGrants(t, owner.schema, role)); err != nil {
		t.Fatalf("README grants: %v", err)
	}
	pool := newPool(t, func(c *pgxpool.Config) {
		c.ConnConfig.User, c.ConnConfig.Password = role, password
	})
	var user string
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != role {
		t.Fatalf("connected as %q (%v), want %q", user, err, role)
	}
	s, err := marketodds.NewStore(pool, &marketodds.Config{Schema: owner.schema})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// nowMicro is the wall clock as PostgreSQL stores it.
func nowMicro() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// endingBy lists, sorted, the names of the partitions s lists that end at
// or before t: what DropPartitionsBefore(t) is to drop.
func endingBy(t *testing.T, s *marketodds.Store, cut time.Time) []string {
	t.Helper()
	parts, err := s.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		if !p.To.After(cut) {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

// Finding 1: a new process connected as a role with only the README's
// grants writes a change and a confirmation into days the owner's Migrate
// created, and reads them back.
func TestIntegrityLeastPrivilegeWriterWrites(t *testing.T) {
	t.Parallel()
	owner := newTestStore(t)
	w := newWriterStore(t, owner)
	ctx := context.Background()
	now := nowMicro()
	m := market1X2(91, "betpawa", 2, 3, 4)
	if _, err := w.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{changed(m, now)}}); err != nil {
		t.Fatalf("writer's change: %v", err)
	}
	if _, err := w.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{confirmed(m, now.Add(time.Second))}}); err != nil {
		t.Fatalf("writer's confirmation: %v", err)
	}
	cur, err := w.CurrentMarkets(ctx, 91)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != 1 || !cur[0].LastUpdatedAt.Equal(now) || !cur[0].LastConfirmedAt.Equal(now.Add(time.Second)) {
		t.Fatalf("current rows %+v, want one updated at %v, confirmed at %v", cur, now, now.Add(time.Second))
	}
	if diff := cmp.Diff(m, cur[0].Market); diff != "" {
		t.Errorf("current row (-want +got):\n%s", diff)
	}
	h, err := w.MarketHistory(ctx, m.Key(), now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || !h[0].CapturedAt.Equal(now) {
		t.Errorf("history %+v, want one row at %v", h, now)
	}

	// A change that arrives behind the disappearance it preceded: the
	// writer recomputes the row and corrects the disappearance's copy of
	// the data, which its grants allow.
	m2 := market1X2(91, "betpawa", 5, 5, 5)
	gone := marketodds.Write{Market: marketodds.Market{EventID: 91, Bookmaker: "betpawa", MarketID: m.MarketID},
		CapturedAt: now.Add(3 * time.Second), Changed: true, Unavailable: true}
	for _, ws := range [][]marketodds.Write{{gone}, {changed(m2, now.Add(2*time.Second))}} {
		if _, err := w.WriteMarketBatch(ctx, marketodds.Batch{Writes: ws}); err != nil {
			t.Fatalf("writer's late change: %v", err)
		}
	}
	cur, err = w.CurrentMarkets(ctx, 91)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != 1 || cur[0].Outcomes[0].Odds != 5 || cur[0].UnavailableAt == nil || !cur[0].UnavailableAt.Equal(gone.CapturedAt) {
		t.Errorf("current rows %+v, want the late change's data, unavailable since the disappearance", cur)
	}
	h, err = w.MarketHistory(ctx, m.Key(), now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || !h[2].Unavailable || h[2].Outcomes[0].Odds != 5 {
		t.Errorf("history %+v, want the disappearance to carry the late change's data", h)
	}
}

// Finding 1: a write of the least-privilege writer into a day without a
// partition fails with a permanent ErrNoPartition that points at
// EnsurePartitions, and nothing of its batch is written.
func TestIntegrityLeastPrivilegeWriterMissingPartition(t *testing.T) {
	t.Parallel()
	owner := newTestStore(t)
	w := newWriterStore(t, owner)
	ctx := context.Background()
	now := nowMicro()
	known := market1X2(92, "betpawa", 2, 3, 4)
	owner.write(changed(known, now))

	future := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	res, err := w.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{
		changed(overUnder(92, "betpawa", 2.5, 1.9, 1.9), now), // its partition exists
		confirmed(known, now.Add(time.Second)),
		changed(market1X2(92, "sportybet", 2, 3, 4), future), // its partition does not
	}})
	if err == nil {
		t.Fatalf("write into a missing partition by a writer without DDL rights succeeded: %+v", res)
	}
	if !errors.Is(err, marketodds.ErrNoPartition) {
		t.Errorf("errors.Is(%v, ErrNoPartition) = false", err)
	}
	if marketodds.IsTransient(err) {
		t.Errorf("IsTransient(%v) = true, want a permanent error", err)
	}
	if !strings.Contains(err.Error(), "EnsurePartitions") {
		t.Errorf("error %q does not mention EnsurePartitions", err)
	}
	if n := owner.count("SELECT count(*) FROM market_odds_current WHERE event_id = 92"); n != 1 {
		t.Errorf("%d current rows of event 92, want only the owner's 1", n)
	}
	if row := owner.current(92)[known.Key()]; !row.LastConfirmedAt.Equal(now) {
		t.Errorf("the failed batch's confirmation moved last_confirmed_at to %v", row.LastConfirmedAt)
	}
	if n := owner.count("SELECT count(*) FROM market_odds_history WHERE event_id = 92"); n != 1 {
		t.Errorf("%d history rows of event 92, want only the owner's 1", n)
	}
}

// Finding 1: once the owner ran EnsurePartitions over some days, the
// least-privilege writer writes into them.
func TestIntegrityLeastPrivilegeWriterAfterOwnerEnsurePartitions(t *testing.T) {
	t.Parallel()
	owner := newTestStore(t)
	w := newWriterStore(t, owner)
	ctx := context.Background()
	day := time.Date(2031, 3, 4, 0, 0, 0, 0, time.UTC)
	if err := owner.EnsurePartitions(ctx, day, day.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	m := market1X2(93, "betpawa", 2, 3, 4)
	res, err := w.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{
		changed(m, day.Add(5*time.Hour)),
		changed(overUnder(93, "betpawa", 2.5, 1.9, 1.9), day.Add(29*time.Hour)),
	}})
	if err != nil {
		t.Fatalf("writer's write into days the owner prepared: %v", err)
	}
	if res.HistoryAdded != 2 || res.Upserted != 2 {
		t.Errorf("result %+v, want 2 upserted, 2 history rows", res)
	}
	if n := owner.count("SELECT count(*) FROM market_odds_history WHERE event_id = 93"); n != 2 {
		t.Errorf("%d history rows, want 2", n)
	}
}

// Finding 2: a host transaction holding an uncommitted WriteMarketBatchTx
// does not stall another process writing other markets of the same day.
func TestIntegrityOpenHostTxDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	owner := newTestStore(t)
	ctx := context.Background()
	pool := pgtest.Pool(t)
	storeA, err := marketodds.NewStore(pool, &marketodds.Config{Schema: owner.schema})
	if err != nil {
		t.Fatal(err)
	}
	storeB, err := marketodds.NewStore(pool, &marketodds.Config{Schema: owner.schema})
	if err != nil {
		t.Fatal(err)
	}
	now := nowMicro()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := storeA.WriteMarketBatchTx(ctx, tx, marketodds.Batch{Writes: []marketodds.Write{
		changed(market1X2(21, "betpawa", 2, 3, 4), now)}}); err != nil {
		t.Fatalf("A's WriteMarketBatchTx: %v", err)
	}

	// A's transaction stays open while B writes. Blocked, B would wait for
	// as long as A's transaction lasts; the bound is generous, for a loaded
	// machine and a pooler whose few server connections other tests share.
	bctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	_, err = storeB.WriteMarketBatch(bctx, marketodds.Batch{Writes: []marketodds.Write{
		changed(market1X2(22, "betpawa", 2, 3, 4), now)}})
	if err != nil {
		t.Errorf("B's write while A's transaction is open: %v (B was blocked by A)", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(owner.current(21)); n != 0 {
		t.Errorf("%d rows of A's rolled back write", n)
	}
	if n := len(owner.current(22)); n != 1 {
		t.Errorf("%d rows of B's write, want 1", n)
	}
}

// slowTrigger makes every history insert of market id "slow" sleep, so that
// a statement_timeout cancels the statement that writes it.
func slowTrigger(s *testStore) {
	s.exec(`CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.betpawa_market_id = 'slow' THEN PERFORM pg_sleep(10); END IF; RETURN NEW; END $$`)
	s.exec(`CREATE TRIGGER slow BEFORE INSERT ON market_odds_history FOR EACH ROW EXECUTE FUNCTION slow()`)
}

// slowBatch is 11 changed markets of one event, one of them slow.
func slowBatch(event int64) marketodds.Batch {
	var b marketodds.Batch
	for i := range 11 {
		m := market1X2(event, "betpawa", 2, 3, 4)
		m.MarketID = fmt.Sprintf("m%02d", i)
		if i == 6 {
			m.MarketID = "slow"
		}
		b.Writes = append(b.Writes, changed(m, at(0)))
	}
	return b
}

// Finding 3: a WriteMarketBatchTx that fails (statement timeout on one
// market) leaves nothing of its batch in the host's transaction.
func TestIntegrityFailedWriteTxLeavesNothing(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	if err := s.EnsurePartitions(ctx, at(0), at(0)); err != nil { // no DDL under the timeout
		t.Fatal(err)
	}
	slowTrigger(s)
	tx, err := pgtest.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '300ms'"); err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteMarketBatchTx(ctx, tx, slowBatch(31))
	var pgErr *pgconn.PgError
	if err != nil && (!errors.As(err, &pgErr) || pgErr.Code != "57014") {
		t.Errorf("err = %v, want the statement timeout (57014)", err)
	}
	if cerr := tx.Commit(ctx); cerr != nil {
		t.Logf("host commit: %v", cerr)
	}
	cur := s.count("SELECT count(*) FROM market_odds_current WHERE event_id = 31")
	hist := s.count("SELECT count(*) FROM market_odds_history WHERE event_id = 31")
	if err != nil {
		if cur != 0 || hist != 0 {
			t.Errorf("WriteMarketBatchTx failed (%v) but the host's commit wrote %d current and %d history rows of its batch, want 0 and 0 (result %+v)",
				err, cur, hist, res)
		}
		return
	}
	// No error: the slow market must have been rejected and the rest written.
	if len(res.Rejected) != 1 || cur != 10 || hist != 10 || res.Upserted != cur || res.HistoryAdded != hist {
		t.Errorf("no error, result %+v, %d current and %d history rows: want the slow market rejected and 10 of each", res, cur, hist)
	}
}

// Finding 3: when WriteMarketBatch (own transaction) returns an error,
// Result says nothing was written; in any case it agrees with the tables.
func TestIntegrityFailedWriteReportsNothingWritten(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	if err := s.EnsurePartitions(ctx, at(0), at(0)); err != nil {
		t.Fatal(err)
	}
	slowTrigger(s)
	pool := newPool(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["statement_timeout"] = "300ms" })
	store, err := marketodds.NewStore(pool, &marketodds.Config{Schema: s.schema})
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.WriteMarketBatch(ctx, slowBatch(32))
	cur := s.count("SELECT count(*) FROM market_odds_current WHERE event_id = 32")
	hist := s.count("SELECT count(*) FROM market_odds_history WHERE event_id = 32")
	if err != nil && (res.Upserted != 0 || res.HistoryAdded != 0 || res.Stale != 0 || res.HistoryDuplicate != 0) {
		t.Errorf("WriteMarketBatch failed (%v) yet reports Upserted=%d Stale=%d HistoryAdded=%d HistoryDuplicate=%d, want all 0",
			err, res.Upserted, res.Stale, res.HistoryAdded, res.HistoryDuplicate)
	}
	if res.Upserted != cur || res.HistoryAdded != hist {
		t.Errorf("result says %d upserted and %d history rows; the tables hold %d and %d (err %v)",
			res.Upserted, res.HistoryAdded, cur, hist, err)
	}
}

// Finding 4: a disappearance in the same batch as the market's change
// records, in history, the data of that change (the data just before the
// disappearance), not the older stored data.
func TestIntegrityDisappearanceAfterChangeInOneBatch(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	before := market1X2(41, "betpawa", 2.0, 3.4, 4)
	after := market1X2(41, "betpawa", 3.0, 3.4, 4)
	key := before.Key()
	s.write(changed(before, at(0)))
	gone := marketodds.Write{Market: marketodds.Market{EventID: 41, Bookmaker: "betpawa", MarketID: before.MarketID},
		CapturedAt: at(2), Changed: true, Unavailable: true}
	s.write(changed(after, at(1)), gone)

	h := s.history(key)
	if len(h) != 3 {
		t.Fatalf("%d history rows, want 3: %+v", len(h), h)
	}
	if !h[2].CapturedAt.Equal(at(2)) || !h[2].Unavailable {
		t.Errorf("last history row at %v unavailable=%v, want the disappearance at %v", h[2].CapturedAt, h[2].Unavailable, at(2))
	}
	if diff := cmp.Diff(after, h[2].Market); diff != "" {
		t.Errorf("disappearance history row does not carry the data of the change just before it (-want +got):\n%s", diff)
	}
	row := s.current(41)[key]
	if diff := cmp.Diff(after, row.Market); diff != "" {
		t.Errorf("current row data (-want +got):\n%s", diff)
	}
	if row.UnavailableAt == nil || !row.UnavailableAt.Equal(at(2)) {
		t.Errorf("unavailable_at = %v, want %v", row.UnavailableAt, at(2))
	}
}

// Finding 4: a market that appears and disappears within one batch records
// its data in the disappearance's history row, not an empty market.
func TestIntegrityAppearAndDisappearInOneBatch(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m := overUnder(42, "sportybet", 2.5, 1.8, 2.0)
	m.Handicap = &marketodds.Handicap{Type: "asian", Home: -0.5, Away: 0.5}
	gone := marketodds.Write{Market: marketodds.Market{EventID: 42, Bookmaker: "sportybet", MarketID: m.MarketID, Line: ptr(2.5)},
		CapturedAt: at(2), Changed: true, Unavailable: true}
	s.write(changed(m, at(1)), gone)

	h := s.history(m.Key())
	if len(h) != 2 {
		t.Fatalf("%d history rows, want 2: %+v", len(h), h)
	}
	if !h[1].CapturedAt.Equal(at(2)) || !h[1].Unavailable {
		t.Errorf("last history row at %v unavailable=%v, want the disappearance at %v", h[1].CapturedAt, h[1].Unavailable, at(2))
	}
	if diff := cmp.Diff(m, h[1].Market); diff != "" {
		t.Errorf("disappearance history row lacks the data of the batch's earlier change (-want +got):\n%s", diff)
	}
	row := s.current(42)[m.Key()]
	if diff := cmp.Diff(m, row.Market); diff != "" {
		t.Errorf("current row data (-want +got):\n%s", diff)
	}
	if row.UnavailableAt == nil || !row.UnavailableAt.Equal(at(2)) {
		t.Errorf("unavailable_at = %v, want %v", row.UnavailableAt, at(2))
	}
}

// Finding 5: two retention runs at once (two stores) drop every old
// partition exactly once between them, without errors, and Partitions()
// running meanwhile does not fail.
func TestIntegrityConcurrentRetention(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	pool := pgtest.Pool(t)
	newStore := func() *marketodds.Store {
		st, err := marketodds.NewStore(pool, &marketodds.Config{Schema: s.schema})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	a, b, lister := newStore(), newStore(), newStore()
	day0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	const days = 8
	cutoff := day0.AddDate(0, 0, days)
	for round := range 10 {
		creator := newStore() // a fresh process: it knows of no partition
		if err := creator.EnsurePartitions(ctx, day0, cutoff.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		var ws []marketodds.Write
		for d := range days {
			ws = append(ws, changed(market1X2(51, "betpawa", 2+float64(round), 3, 4), day0.AddDate(0, 0, d).Add(time.Hour)))
		}
		if _, err := creator.WriteMarketBatch(ctx, marketodds.Batch{Writes: ws}); err != nil {
			t.Fatal(err)
		}
		want := endingBy(t, s.Store, cutoff)
		if len(want) < days {
			t.Fatalf("round %d: %d partitions end by %v, want at least %d: %v", round, len(want), cutoff, days, want)
		}

		start, done := make(chan struct{}), make(chan struct{})
		var droppedA, droppedB []string
		var errA, errB, listErr error
		var drops, lists sync.WaitGroup
		drops.Go(func() { <-start; droppedA, errA = a.DropPartitionsBefore(ctx, cutoff) })
		drops.Go(func() { <-start; droppedB, errB = b.DropPartitionsBefore(ctx, cutoff) })
		var listMu sync.Mutex
		for range 3 {
			lists.Go(func() {
				<-start
				for {
					select {
					case <-done:
						return
					default:
					}
					if _, err := lister.Partitions(ctx); err != nil {
						listMu.Lock()
						if listErr == nil {
							listErr = err
						}
						listMu.Unlock()
					}
				}
			})
		}
		close(start)
		drops.Wait()
		close(done)
		lists.Wait()

		if errA != nil || errB != nil {
			t.Errorf("round %d: DropPartitionsBefore errors: %v, %v", round, errA, errB)
		}
		if listErr != nil {
			t.Errorf("round %d: Partitions() during a drop: %v", round, listErr)
		}
		all := append(slices.Clone(droppedA), droppedB...)
		slices.Sort(all)
		if diff := cmp.Diff(want, all); diff != "" {
			t.Errorf("round %d: partitions reported dropped by the two runs (A %v, B %v), want each once (-want +got):\n%s",
				round, droppedA, droppedB, diff)
		}
	}
}

// Finding 5: a partition made by someone else (pg_partman style, a name of
// its own) is listed by Partitions() and dropped by retention when it ends
// before the cut-off.
func TestIntegrityRetentionForeignPartition(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	s.exec(`CREATE TABLE market_odds_history_2019_12 PARTITION OF market_odds_history
		FOR VALUES FROM ('2019-12-01 00:00:00+00') TO ('2020-01-01 00:00:00+00')`)
	s.exec(`CREATE TABLE partman_history_20200105 PARTITION OF market_odds_history
		FOR VALUES FROM ('2020-01-05 00:00:00+00') TO ('2020-01-06 00:00:00+00')`)
	// A write into a day a foreign partition holds goes there.
	if _, err := s.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{
		changed(market1X2(52, "betpawa", 2, 3, 4), time.Date(2019, 12, 24, 8, 0, 0, 0, time.UTC))}}); err != nil {
		t.Errorf("write into the foreign partition's range: %v", err)
	}

	parts, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	foreign := map[string][2]time.Time{
		"market_odds_history_2019_12": {time.Date(2019, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		"partman_history_20200105":    {time.Date(2020, 1, 5, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 6, 0, 0, 0, 0, time.UTC)},
	}
	for name, bounds := range foreign {
		i := slices.IndexFunc(parts, func(p marketodds.Partition) bool { return p.Name == name })
		if i < 0 {
			t.Errorf("Partitions() does not list %s: %+v", name, parts)
			continue
		}
		if !parts[i].From.Equal(bounds[0]) || !parts[i].To.Equal(bounds[1]) {
			t.Errorf("partition %s: %v..%v, want %v..%v", name, parts[i].From, parts[i].To, bounds[0], bounds[1])
		}
	}
	cut := time.Date(2020, 1, 6, 0, 0, 0, 0, time.UTC)
	want := endingBy(t, s.Store, cut)
	dropped, err := s.DropPartitionsBefore(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	for name := range foreign {
		if !slices.Contains(dropped, name) {
			t.Errorf("retention did not drop %s", name)
		}
	}
	if n := s.count("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('market_odds_history_2019_12', 'partman_history_20200105')", s.schema); n != 0 {
		t.Errorf("%d foreign partitions still there after retention", n)
	}
}

// Finding 6: processes whose first write failed because the schema did not
// exist yet (the backend remembers the missing schema) all migrate it at
// once without error.
func TestIntegrityConcurrentMigrateAfterFailedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgtest.Schema(t)
	connCfg := pgtest.Pool(t).Config().ConnConfig
	for round := range 3 {
		schema := fmt.Sprintf("%s_m%d", base, round) // does not exist yet
		t.Cleanup(func() {
			_, _ = pgtest.Pool(t).Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		})
		const n = 6
		stores := make([]*marketodds.Store, n)
		for i := range n {
			conn, err := pgx.ConnectConfig(ctx, connCfg.Copy())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if stores[i], err = marketodds.NewStore(conn, &marketodds.Config{Schema: schema}); err != nil {
				t.Fatal(err)
			}
			_, err = stores[i].WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{
				changed(market1X2(61, "betpawa", 2, 3, 4), nowMicro())}})
			if err == nil {
				t.Fatalf("round %d: a write into the missing schema %s succeeded", round, schema)
			}
		}
		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { <-start; errs[i] = stores[i].Migrate(ctx) })
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: Migrate %d: %v", round, i, err)
			}
		}
	}
}

// Finding 7: partition bounds do not depend on the session's DateStyle and
// TimeZone: Partitions() returns the UTC day bounds, and retention drops
// exactly the partitions that end at or before the cut-off.
func TestIntegrityPartitionBoundsIgnoreSessionSettings(t *testing.T) {
	t.Parallel()
	// Asia/Kolkata prints its bounds as IST, +05:30, and Europe/Dublin its
	// summer ones as IST, +01:00; PostgreSQL 15 reads IST back as +02:00.
	for _, tz := range []string{"Asia/Kolkata", "Europe/Dublin"} {
		t.Run(tz, func(t *testing.T) {
			t.Parallel()
			s := newTestStore(t)
			ctx := context.Background()
			day := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
			if err := s.EnsurePartitions(ctx, day.AddDate(0, 0, -1), day.AddDate(0, 0, 1)); err != nil {
				t.Fatal(err)
			}
			s.write(changed(market1X2(71, "betpawa", 2, 3, 4), day.Add(23*time.Hour+30*time.Minute)))
			pool := newPool(t, func(c *pgxpool.Config) {
				c.ConnConfig.RuntimeParams["DateStyle"] = "SQL, DMY"
				c.ConnConfig.RuntimeParams["TimeZone"] = tz
			})
			odd, err := marketodds.NewStore(pool, &marketodds.Config{Schema: s.schema})
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.Partitions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := odd.Partitions(ctx)
			if err != nil {
				t.Fatalf("Partitions() in a %s session: %v", tz, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Partitions() in a %s session differs from a default session (-default +%s):\n%s", tz, tz, diff)
			}
			for _, p := range got {
				if p.From.Unix()%86400 != 0 || p.To.Unix()%86400 != 0 {
					t.Errorf("partition %s: bounds %v..%v not at midnight UTC", p.Name, p.From.UTC(), p.To.UTC())
				}
			}
			// 23:00 on July 1: only June 30 has ended; July 1 holds a row of 23:30.
			cut1, cut2 := day.Add(23*time.Hour), day.Add(25*time.Hour)
			want1 := endingBy(t, s.Store, cut1)
			if !slices.Contains(want1, "market_odds_history_p20260630") || slices.Contains(want1, "market_odds_history_p20260701") {
				t.Fatalf("a default session lists %v as ending by %v", want1, cut1)
			}
			dropped, err := odd.DropPartitionsBefore(ctx, cut1)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want1, dropped); diff != "" {
				t.Errorf("DropPartitionsBefore(July 1 23:00) in a %s session (-want +got):\n%s", tz, diff)
			}
			if n := s.count("SELECT count(*) FROM market_odds_history WHERE event_id = 71"); n != 1 {
				t.Errorf("%d history rows left, want the 23:30 row kept", n)
			}
			// 01:00 on July 2: July 1 has ended.
			want2 := endingBy(t, s.Store, cut2)
			dropped, err = odd.DropPartitionsBefore(ctx, cut2)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want2, dropped); diff != "" || !slices.Contains(dropped, "market_odds_history_p20260701") {
				t.Errorf("DropPartitionsBefore(July 2 01:00) in a %s session: %v (-want +got):\n%s", tz, dropped, diff)
			}
		})
	}
}

// Finding 8: a store whose PartitionSpan disagrees with the schema's gets
// ErrSchemaMismatch from Migrate or its first write, creates no partition,
// and the stores that agree with the schema keep writing changes and
// confirmations, also into days the refused store tried to write.
func TestIntegrityPartitionSpanMismatch(t *testing.T) {
	t.Parallel()
	daily := newTestStore(t) // the schema's span: 24h
	ctx := context.Background()
	hourly, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: daily.schema, PartitionSpan: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := nowMicro()
	later := now.Truncate(24*time.Hour).AddDate(0, 0, 10).Add(5 * time.Hour) // a day without partitions yet
	errMigrate := hourly.Migrate(ctx)
	_, errWrite := hourly.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{
		changed(market1X2(81, "bet9ja", 2, 3, 4), later)}})
	switch {
	case errors.Is(errMigrate, marketodds.ErrSchemaMismatch):
	case errMigrate == nil && errors.Is(errWrite, marketodds.ErrSchemaMismatch):
	default:
		t.Errorf("hourly store on a daily schema: Migrate: %v; first write: %v; want ErrSchemaMismatch from one of them", errMigrate, errWrite)
	}
	parts, err := daily.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if p.To.Sub(p.From) != 24*time.Hour {
			t.Errorf("partition %s spans %v..%v: the refused store created it", p.Name, p.From, p.To)
		}
	}

	// The daily writers keep working: the migrated store and a new process.
	a, b := market1X2(82, "betpawa", 2, 3, 4), overUnder(82, "betpawa", 2.5, 1.9, 1.9)
	other, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: daily.schema})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []*marketodds.Store{daily.Store, other} {
		base := now.Add(time.Duration(i) * time.Minute)
		if _, err := st.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{changed(a, base), changed(b, base)}}); err != nil {
			t.Errorf("daily store %d, changes today: %v", i, err)
		}
		if _, err := st.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{confirmed(a, base.Add(time.Second)), confirmed(b, base.Add(time.Second))}}); err != nil {
			t.Errorf("daily store %d, confirmations today: %v", i, err)
		}
		a2 := market1X2(82, "betpawa", 2.1+float64(i), 3, 4)
		if _, err := st.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{
			changed(a2, later.Add(time.Duration(i+1)*time.Hour)), confirmed(b, later.Add(time.Duration(i+1)*time.Hour))}}); err != nil {
			t.Errorf("daily store %d, change and confirmation in the day the hourly store tried: %v", i, err)
		}
	}
}

// Finding 9: the CapturedAt range check looks at the instant, not at the
// year in the value's own time zone.
func TestIntegrityCapturedAtRangeIgnoresZone(t *testing.T) {
	t.Parallel()
	east, west := time.FixedZone("+14", 14*3600), time.FixedZone("-02", -2*3600)
	before1970 := time.Date(1970, 1, 1, 13, 0, 0, 0, east)  // 1969-12-31T23:00Z
	after9999 := time.Date(9999, 12, 31, 23, 0, 0, 0, west) // 10000-01-01T01:00Z
	for _, ts := range []time.Time{before1970, after9999} {
		w := changed(market1X2(1, "betpawa", 2, 3, 4), ts)
		var ve *marketodds.ValidationError
		if err := w.Validate(); !errors.As(err, &ve) || ve.Field != "CapturedAt" {
			t.Errorf("Validate(CapturedAt %v = %v UTC) = %v, want a *ValidationError on CapturedAt", ts, ts.UTC(), err)
		}
	}
	inRange := time.Date(1969, 12, 31, 23, 30, 0, 0, west) // 1970-01-01T01:30Z
	if w := changed(market1X2(1, "betpawa", 2, 3, 4), inRange); w.Validate() != nil {
		t.Errorf("Validate(CapturedAt %v = %v UTC) = %v, want nil", inRange, inRange.UTC(), w.Validate())
	}

	// Through the write path: rejected, nothing stored.
	s := newTestStore(t)
	res := s.write(changed(market1X2(91, "betpawa", 2, 3, 4), before1970))
	if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0].Err, marketodds.ErrInvalidWrite) {
		t.Errorf("write at %v UTC: %+v, want it rejected as invalid", before1970.UTC(), res)
	}
	if n := s.count("SELECT count(*) FROM market_odds_history"); n != 0 {
		t.Errorf("%d history rows of a write before 1970", n)
	}
}
