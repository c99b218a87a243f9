package marketodds_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// Semantics 1: every invalid write is rejected with a typed error naming
// the market and the field; the valid writes of the batch still go in.
func TestWriteRejectsInvalidWritesKeepsTheRest(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	good := func(id string) marketodds.Market {
		m := market1X2(7, "betpawa", 2, 3, 4)
		m.MarketID = id
		return m
	}
	bad := []struct {
		field string
		edit  func(w *marketodds.Write)
	}{
		{"Bookmaker", func(w *marketodds.Write) { w.Bookmaker = "" }},
		{"MarketID", func(w *marketodds.Write) { w.MarketID = "" }},
		{"CapturedAt", func(w *marketodds.Write) { w.CapturedAt = time.Time{} }},
		{"Outcomes", func(w *marketodds.Write) { w.Outcomes = nil }},
		{"Outcomes[1].Odds", func(w *marketodds.Write) { w.Outcomes[1].Odds = math.NaN() }},
		{"Outcomes[0].Odds", func(w *marketodds.Write) { w.Outcomes[0].Odds = math.Inf(1) }},
		{"Outcomes[2].Odds", func(w *marketodds.Write) { w.Outcomes[2].Odds = 1 }},
		{"Outcomes[2].Odds", func(w *marketodds.Write) { w.Outcomes[2].Odds = -3 }},
		{"Outcomes[2].Name", func(w *marketodds.Write) { w.Outcomes[2].Name = "1" }},
		{"Outcomes[0].Name", func(w *marketodds.Write) { w.Outcomes[0].Name = "\xff\xfe" }},
		{"Outcomes[0].Name", func(w *marketodds.Write) { w.Outcomes[0].Name = "" }},
		{"Name", func(w *marketodds.Write) { w.Name = "1X2\x00" }},
		{"Name", func(w *marketodds.Write) { w.Name = strings.Repeat("n", marketodds.MaxNameLen+1) }},
		{"MarketID", func(w *marketodds.Write) { w.MarketID = strings.Repeat("9", marketodds.MaxMarketIDLen+1) }},
		{"Bookmaker", func(w *marketodds.Write) { w.Bookmaker = "bet\x009ja" }},
		{"Groups[1]", func(w *marketodds.Write) { w.Groups = []string{"ok", "bad\xc3"} }},
		{"Line", func(w *marketodds.Write) { w.Line = ptr(math.NaN()) }},
		{"Handicap.Home", func(w *marketodds.Write) { w.Handicap = &marketodds.Handicap{Type: "asian", Home: math.Inf(-1)} }},
		{"Handicap.Type", func(w *marketodds.Write) { w.Handicap = &marketodds.Handicap{Type: "a\x00"} }},
	}
	var ws []marketodds.Write
	wantField := map[int]string{}
	for i, b := range bad {
		ws = append(ws, changed(good(fmt.Sprintf("ok-%d", i)), at(0)))
		w := changed(good(fmt.Sprintf("bad-%d", i)), at(0))
		b.edit(&w)
		wantField[len(ws)] = b.field
		ws = append(ws, w)
	}
	res := s.write(ws...)

	if len(res.Rejected) != len(bad) {
		t.Fatalf("rejected %d writes, want %d: %+v", len(res.Rejected), len(bad), res.Rejected)
	}
	for _, r := range res.Rejected {
		var ve *marketodds.ValidationError
		if !errors.As(r.Err, &ve) || !errors.Is(r.Err, marketodds.ErrInvalidWrite) {
			t.Errorf("write %d: error %v is not a *ValidationError", r.Index, r.Err)
			continue
		}
		if ve.Field != wantField[r.Index] {
			t.Errorf("write %d: field %q, want %q (%v)", r.Index, ve.Field, wantField[r.Index], ve)
		}
		if ve.Key.String() != ws[r.Index].Key().String() || r.Key.String() != ws[r.Index].Key().String() { // String: a NaN line is not == itself
			t.Errorf("write %d: key %v / %v, want %v", r.Index, ve.Key, r.Key, ws[r.Index].Key())
		}
		if marketodds.IsTransient(r.Err) {
			t.Errorf("write %d: validation error reported as transient", r.Index)
		}
	}
	if res.Upserted != len(bad) || res.HistoryAdded != len(bad) {
		t.Errorf("upserted %d, history %d; want %d each", res.Upserted, res.HistoryAdded, len(bad))
	}
	cur := s.current(7)
	for i := range bad {
		if _, ok := cur[good(fmt.Sprintf("ok-%d", i)).Key()]; !ok {
			t.Errorf("valid write ok-%d is missing", i)
		}
	}
	if len(cur) != len(bad) {
		t.Errorf("%d current rows, want %d", len(cur), len(bad))
	}
}

// Semantics 2: several writes for one key in a batch (including a nil line
// and a line of 0, which are one market) do not fail the statement; the
// newest sets the row, every distinct change goes to history.
func TestWriteDuplicateKeysInBatch(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m1 := market1X2(1, "bet9ja", 2.0, 3.0, 4.0)
	m2 := market1X2(1, "bet9ja", 2.1, 3.0, 4.0)
	m3 := market1X2(1, "bet9ja", 2.2, 3.0, 4.0)
	zero := m1
	zero.Line = ptr(0.0)
	zero.Outcomes = []marketodds.Outcome{{Name: "1", Odds: 9}, {Name: "X", Odds: 9}, {Name: "2", Odds: 9}}
	res := s.write(
		changed(m2, at(2)),
		confirmed(m3, at(5)), // newest: confirms, but carries no change
		changed(m1, at(1)),
		changed(zero, at(3)), // same market as m1..m3 (line 0 == no line), newest change
		changed(m2, at(2)),   // the same change twice
	)
	if res.Upserted != 1 || res.Stale != 0 || res.HistoryAdded != 3 || res.HistoryDuplicate != 1 || len(res.Rejected) != 0 {
		t.Fatalf("result %+v, want 1 upserted, 3 history added, 1 duplicate", res)
	}
	cur := s.current(1)
	if len(cur) != 1 {
		t.Fatalf("%d current rows, want 1", len(cur))
	}
	row := cur[m1.Key()]
	if !row.LastConfirmedAt.Equal(at(5)) || !row.LastUpdatedAt.Equal(at(3)) {
		t.Errorf("confirmed %v updated %v, want %v and %v", row.LastConfirmedAt, row.LastUpdatedAt, at(5), at(3))
	}
	if diff := cmp.Diff(zero, row.Market); diff != "" {
		t.Errorf("data is not the newest change's (-want +got):\n%s", diff)
	}
	if row.ChangeCount != 3 {
		t.Errorf("change count %d, want 3", row.ChangeCount)
	}
	var times []time.Time
	for _, h := range s.history(m1.Key()) {
		times = append(times, h.CapturedAt)
	}
	if diff := cmp.Diff([]time.Time{at(1), at(2), at(3)}, times); diff != "" {
		t.Errorf("history times (-want +got):\n%s", diff)
	}
}

// Semantics 3: current and history are written in one transaction: when the
// history append fails, the current rows are not written either.
func TestWriteIsOneTransaction(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	s.exec(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'history is read-only today'; END $$`)
	s.exec(`CREATE TRIGGER refuse BEFORE INSERT ON market_odds_history FOR EACH ROW EXECUTE FUNCTION refuse()`)

	_, err := s.WriteMarketBatch(context.Background(), marketodds.Batch{Writes: []marketodds.Write{
		changed(market1X2(2, "betpawa", 2, 3, 4), at(0)),
		confirmed(overUnder(2, "betpawa", 2.5, 1.9, 1.9), at(0)),
	}})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "P0001" {
		t.Fatalf("err = %v, want the trigger's P0001", err)
	}
	if marketodds.IsTransient(err) {
		t.Error("a raised exception reported as transient")
	}
	if n := s.count("SELECT count(*) FROM market_odds_current"); n != 0 {
		t.Errorf("%d current rows after a failed batch, want 0", n)
	}

	// The Tx twin: the host's rollback takes the odds with it.
	s.exec(`DROP TRIGGER refuse ON market_odds_history`)
	ctx := context.Background()
	tx, err := pgtest.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteMarketBatchTx(ctx, tx, marketodds.Batch{Writes: []marketodds.Write{changed(market1X2(2, "betpawa", 2, 3, 4), at(0))}})
	if err != nil || res.Upserted != 1 || res.HistoryAdded != 1 {
		t.Fatalf("WriteMarketBatchTx: %+v, %v", res, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.count("SELECT count(*) FROM market_odds_current") + s.count("SELECT count(*) FROM market_odds_history"); n != 0 {
		t.Errorf("%d rows after the host rolled back, want 0", n)
	}
}

// Semantics 4: a write older than the stored confirmation (and than the
// row's last change) leaves the current row alone, change_count included,
// and is counted as stale; its history row is still appended.
func TestWriteStaleGuard(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	newer := market1X2(3, "sportybet", 2, 3, 4)
	older := market1X2(3, "sportybet", 5, 5, 5)
	s.write(changed(newer, at(10)))
	res := s.write(changed(older, at(5)))
	if res.Stale != 1 || res.Upserted != 0 || res.HistoryAdded != 1 {
		t.Fatalf("result %+v, want 1 stale, 0 upserted, 1 history row", res)
	}
	row := s.current(3)[newer.Key()]
	if diff := cmp.Diff(newer, row.Market); diff != "" {
		t.Errorf("stale write moved the data (-want +got):\n%s", diff)
	}
	if !row.LastConfirmedAt.Equal(at(10)) || !row.LastUpdatedAt.Equal(at(10)) || row.ChangeCount != 1 {
		t.Errorf("stale write moved the times or the count: %v %v %d", row.LastConfirmedAt, row.LastUpdatedAt, row.ChangeCount)
	}
	if h := s.history(newer.Key()); len(h) != 2 || !h[0].CapturedAt.Equal(at(5)) || h[0].Outcomes[0].Odds != 5 {
		t.Errorf("history %+v, want the stale change at %v first", h, at(5))
	}
}

// Semantics 5: a confirmation moves last_confirmed_at only; a change moves
// the data and last_updated_at too.
func TestWriteConfirmationVersusChange(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m := overUnder(4, "betpawa", 2.5, 1.8, 2.0)
	s.write(changed(m, at(0)))

	different := overUnder(4, "betpawa", 2.5, 1.5, 2.6)
	different.Name = "renamed"
	different.Groups = nil
	different.Handicap = &marketodds.Handicap{Type: "x", Home: 1, Away: -1}
	res := s.write(confirmed(different, at(1))) // says: unchanged
	if res.Upserted != 1 || res.HistoryAdded != 0 {
		t.Fatalf("confirmation: %+v", res)
	}
	row := s.current(4)[m.Key()]
	if diff := cmp.Diff(m, row.Market); diff != "" {
		t.Errorf("a confirmation moved the data (-want +got):\n%s", diff)
	}
	if !row.LastConfirmedAt.Equal(at(1)) || !row.LastUpdatedAt.Equal(at(0)) || row.ChangeCount != 1 {
		t.Errorf("after confirmation: confirmed %v updated %v changes %d", row.LastConfirmedAt, row.LastUpdatedAt, row.ChangeCount)
	}

	s.write(changed(different, at(2)))
	row = s.current(4)[m.Key()]
	if diff := cmp.Diff(different, row.Market, cmp.Comparer(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })); diff != "" {
		t.Errorf("a change did not move the data (-want +got):\n%s", diff)
	}
	if !row.LastConfirmedAt.Equal(at(2)) || !row.LastUpdatedAt.Equal(at(2)) || row.ChangeCount != 2 {
		t.Errorf("after change: confirmed %v updated %v changes %d", row.LastConfirmedAt, row.LastUpdatedAt, row.ChangeCount)
	}
	if n := len(s.history(m.Key())); n != 2 {
		t.Errorf("%d history rows, want 2", n)
	}
}

// Semantics 5 (availability): unavailable_at is set on disappearance, kept at
// the first time while the market stays away, and cleared on its return.
func TestWriteUnavailable(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m := market1X2(5, "bet9ja", 2, 3, 4)
	key := m.Key()
	s.write(changed(m, at(0)))

	// The classifier reports a disappearance with the market's identity only.
	gone := marketodds.Write{Market: marketodds.Market{EventID: 5, Bookmaker: "bet9ja", MarketID: m.MarketID},
		CapturedAt: at(1), Changed: true, Unavailable: true}
	if res := s.write(gone); res.Upserted != 1 || res.HistoryAdded != 1 || len(res.Rejected) != 0 {
		t.Fatalf("disappearance: %+v", res)
	}
	row := s.current(5)[key]
	if row.UnavailableAt == nil || !row.UnavailableAt.Equal(at(1)) {
		t.Fatalf("unavailable_at = %v, want %v", row.UnavailableAt, at(1))
	}
	if diff := cmp.Diff(m, row.Market); diff != "" {
		t.Errorf("a data-less disappearance changed the data (-want +got):\n%s", diff)
	}
	if !row.LastUpdatedAt.Equal(at(1)) {
		t.Errorf("last_updated_at = %v, want the disappearance %v", row.LastUpdatedAt, at(1))
	}

	// Still away: the first time is kept.
	stillGone := gone
	stillGone.CapturedAt, stillGone.Changed = at(2), false
	s.write(stillGone)
	if row := s.current(5)[key]; row.UnavailableAt == nil || !row.UnavailableAt.Equal(at(1)) || !row.LastConfirmedAt.Equal(at(2)) {
		t.Errorf("still away: unavailable_at %v confirmed %v, want %v and %v", row.UnavailableAt, row.LastConfirmedAt, at(1), at(2))
	}

	// Back with new odds: cleared, data moves.
	back := market1X2(5, "bet9ja", 2.5, 3, 3)
	s.write(changed(back, at(3)))
	row = s.current(5)[key]
	if row.UnavailableAt != nil {
		t.Errorf("unavailable_at = %v after reappearance, want NULL", row.UnavailableAt)
	}
	if diff := cmp.Diff(back, row.Market); diff != "" {
		t.Errorf("reappearance data (-want +got):\n%s", diff)
	}

	// History records the disappearance with the last known data.
	h := s.history(key)
	if len(h) != 3 {
		t.Fatalf("%d history rows, want 3: %+v", len(h), h)
	}
	if !h[1].Unavailable || h[0].Unavailable || h[2].Unavailable {
		t.Errorf("unavailable flags %v %v %v, want false true false", h[0].Unavailable, h[1].Unavailable, h[2].Unavailable)
	}
	if diff := cmp.Diff(m, h[1].Market); diff != "" {
		t.Errorf("disappearance history row lacks the last data (-want +got):\n%s", diff)
	}
}

// Semantics 6: rows are applied in key order, so two writers that send the
// same markets in opposite orders never deadlock.
func TestWriteConcurrentWritersDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	const markets, rounds = 300, 15
	batch := func(round int, reverse bool) marketodds.Batch {
		var ws []marketodds.Write
		for i := range markets {
			j := i
			if reverse {
				j = markets - 1 - i
			}
			m := overUnder(9, "betpawa", float64(j)+0.5, 1.5+float64(round)/100, 2.5)
			w := changed(m, at(round).Add(time.Duration(btoi(reverse))*time.Second))
			w.Changed = round == 0 || j%3 != 0 // a third are confirmations: the second pass
			ws = append(ws, w)
		}
		return marketodds.Batch{Writes: ws}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for _, reverse := range []bool{false, true} {
		wg.Go(func() {
			for r := range rounds {
				if _, err := s.WriteMarketBatch(ctx, batch(r, reverse)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write failed: %v", err)
	}
	want := 2*markets + 2*(rounds-1)*(markets-markets/3)
	if n := s.count("SELECT count(*) FROM market_odds_history"); n != want {
		t.Errorf("%d history rows, want %d", n, want)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Semantics 7: a row that PostgreSQL itself refuses (here: a CHECK
// constraint the host added, which validation cannot know) is isolated and
// rejected; the rest of the batch is committed.
func TestWriteIsolatesRowsPostgresRejects(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	s.exec(`ALTER TABLE market_odds_current ADD CONSTRAINT no_poison CHECK (betpawa_market_id <> 'poison')`)
	s.exec(`ALTER TABLE market_odds_history ADD CONSTRAINT no_toxic CHECK (betpawa_market_name <> 'toxic')`)
	var ws []marketodds.Write
	for i := range 100 {
		m := overUnder(11, "sportybet", float64(i)+0.5, 1.9, 1.9)
		switch i {
		case 17, 63:
			m.MarketID = "poison"
		case 40:
			m.Name = "toxic"
		}
		ws = append(ws, changed(m, at(0)))
	}
	res := s.write(ws...)
	if len(res.Rejected) != 3 {
		t.Fatalf("rejected %+v, want writes 17, 40 and 63", res.Rejected)
	}
	for i, want := range []int{17, 40, 63} {
		r := res.Rejected[i]
		var rowErr *marketodds.RowError
		var pgErr *pgconn.PgError
		if r.Index != want || !errors.As(r.Err, &rowErr) || !errors.Is(r.Err, marketodds.ErrRowRejected) ||
			!errors.As(r.Err, &pgErr) || pgErr.Code != "23514" || r.Key != ws[want].Key() {
			t.Errorf("rejection %d: %+v, want write %d with a *RowError wrapping 23514", i, r, want)
		}
	}
	if res.Upserted != 97 || res.HistoryAdded != 97 {
		t.Errorf("result %+v, want 97 upserted and 97 history rows", res)
	}
	if n := s.count("SELECT count(*) FROM market_odds_current"); n != 97 {
		t.Errorf("%d current rows, want 97", n)
	}
}

// Semantics 8: retrying a batch whose commit went through changes nothing:
// no new history row, identical current rows.
func TestWriteRetryIsIdempotent(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	b := marketodds.Batch{Writes: []marketodds.Write{
		changed(market1X2(12, "betpawa", 2, 3, 4), at(0).Add(123456789*time.Nanosecond)), // sub-microsecond part
		confirmed(overUnder(12, "betpawa", 1.5, 1.3, 3.1), at(0)),
		{Market: overUnder(12, "betpawa", 3.5, 2, 2), CapturedAt: at(0), Changed: true, Unavailable: true},
	}}
	ctx := context.Background()
	first, err := s.WriteMarketBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	before := s.current(12)
	second, err := s.WriteMarketBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if first.HistoryAdded != 2 || second.HistoryAdded != 0 || second.HistoryDuplicate != 2 {
		t.Errorf("history added %d then %d (duplicates %d), want 2 then 0 (2)", first.HistoryAdded, second.HistoryAdded, second.HistoryDuplicate)
	}
	if diff := cmp.Diff(before, s.current(12)); diff != "" {
		t.Errorf("retry changed the current rows (-first +retry):\n%s", diff)
	}
	if n := s.count("SELECT count(*) FROM market_odds_history"); n != 2 {
		t.Errorf("%d history rows, want 2", n)
	}
}

// Semantics 9: a history write at a time with no partition creates the
// partition, also when the partition was dropped behind the store's back.
func TestWriteCreatesMissingPartition(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	future := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	m := market1X2(13, "betpawa", 2, 3, 4)
	if res := s.write(changed(m, future)); res.HistoryAdded != 1 {
		t.Fatalf("result %+v, want the history row written", res)
	}
	if n := s.count("SELECT count(*) FROM market_odds_history_p20310304"); n != 1 {
		t.Fatalf("%d rows in the new partition, want 1", n)
	}

	// Another process drops it (retention run with a wrong clock): the store
	// believes it exists, gets 23514 and must create it again, not skip.
	s.exec(`DROP TABLE market_odds_history_p20310304`)
	m2 := market1X2(13, "betpawa", 2.2, 3, 4)
	if res := s.write(changed(m2, future.Add(time.Hour))); res.HistoryAdded != 1 || res.Upserted != 1 {
		t.Fatalf("after drop: %+v, want history and current written", res)
	}
	if n := s.count("SELECT count(*) FROM market_odds_history_p20310304"); n != 1 {
		t.Errorf("%d rows in the re-created partition, want 1", n)
	}
}

// A connection lost under a write is reported as transient. The connection
// is the server's own (DirectURL): its pid is a backend's only then, not
// behind ODDSLEDGER_TEST_PGBOUNCER (writequeue's TestStoreUnderFaults kills
// the server connections of a PgBouncer).
func TestWriteConnectionLossIsTransient(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.DirectURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	store, err := marketodds.NewStore(conn, &marketodds.Config{Schema: s.schema})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgtest.Pool(t).Exec(ctx, "SELECT pg_terminate_backend($1)", conn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	_, err = store.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{changed(market1X2(14, "betpawa", 2, 3, 4), at(0))}})
	if err == nil {
		t.Fatal("write on a terminated connection succeeded")
	}
	if !marketodds.IsTransient(err) {
		t.Errorf("IsTransient(%v) = false, want true", err)
	}
}

// The schema qualifies every name: two stores in two schemas do not see
// each other's rows.
func TestStoresInTwoSchemasAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := newTestStore(t), newTestStore(t)
	a.write(changed(market1X2(15, "betpawa", 2, 3, 4), at(0)))
	if n := len(b.current(15)); n != 0 {
		t.Errorf("store b sees %d rows of store a", n)
	}
	if n := len(a.current(15)); n != 1 {
		t.Errorf("store a sees %d rows, want 1", n)
	}
}

// Odds, lines and strings survive the round trip through jsonb exactly.
func TestWriteRoundTripIsExact(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m := marketodds.Market{
		EventID: -42, Bookmaker: "sportybet", MarketID: "ah-1", Line: ptr(-1.25), Name: `Asian "Handicap" \ 1st half`,
		Outcomes: []marketodds.Outcome{
			{Name: "Home \"-1.25\"\n", Odds: 1.0000000000000002},
			{Name: "Away ✓ \t", Odds: 123456789.123456789, Suspended: true},
			{Name: "Odd \u2028", Odds: 1e21},
			{Name: "Tiny", Odds: 1.1e-0 + 1e-12},
		},
		Groups:   []string{`quote"d`, `back\slash`, "comma,brace{}", ""},
		Handicap: &marketodds.Handicap{Type: "asian", Home: -1.25, Away: 1.25},
	}
	s.write(changed(m, at(0)))
	got := s.current(-42)[m.Key()]
	if diff := cmp.Diff(m, got.Market); diff != "" {
		t.Errorf("round trip (-wrote +read):\n%s", diff)
	}
	var seen int
	err := s.ScanCurrent(context.Background(), at(0), func(cm marketodds.CurrentMarket) error {
		seen++
		if diff := cmp.Diff(m, cm.Market); diff != "" {
			t.Errorf("ScanCurrent (-wrote +read):\n%s", diff)
		}
		return nil
	})
	if err != nil || seen != 1 {
		t.Errorf("ScanCurrent saw %d rows, err %v", seen, err)
	}
	if err := s.ScanCurrent(context.Background(), at(1), func(marketodds.CurrentMarket) error { seen++; return nil }); err != nil || seen != 1 {
		t.Errorf("ScanCurrent since a later time saw rows (err %v)", err)
	}
}

// A change that reaches the store after a later confirmation (a retried
// batch overtaken by the next one) still moves the data; its own
// confirmation time does not go backwards.
func TestWriteChangeArrivingAfterLaterConfirmation(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	d0 := market1X2(16, "betpawa", 2, 3, 4)
	d1 := market1X2(16, "betpawa", 2.5, 3, 3.2)
	s.write(changed(d0, at(0)))
	s.write(confirmed(d1, at(2))) // the next scrape, classified against d1, overtook the change
	res := s.write(changed(d1, at(1)))
	if res.Upserted != 1 || res.HistoryAdded != 1 {
		t.Fatalf("late change: %+v, want it applied and appended", res)
	}
	row := s.current(16)[d0.Key()]
	if diff := cmp.Diff(d1, row.Market); diff != "" {
		t.Errorf("late change did not move the data (-want +got):\n%s", diff)
	}
	if !row.LastUpdatedAt.Equal(at(1)) || !row.LastConfirmedAt.Equal(at(2)) || row.ChangeCount != 2 {
		t.Errorf("updated %v confirmed %v changes %d, want %v, %v, 2", row.LastUpdatedAt, row.LastConfirmedAt, row.ChangeCount, at(1), at(2))
	}
	// Retrying it once more changes nothing.
	before := s.current(16)
	if res := s.write(changed(d1, at(1))); res.Upserted != 0 || res.Stale != 1 || res.HistoryDuplicate != 1 {
		t.Errorf("retry of the late change: %+v, want stale and duplicate", res)
	}
	if diff := cmp.Diff(before, s.current(16)); diff != "" {
		t.Errorf("retry changed the row (-before +after):\n%s", diff)
	}
}

// change_count counts the changes applied to the row once each, also when a
// batch repeats part of an earlier one.
func TestWriteChangeCountIsExact(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m1 := market1X2(17, "sportybet", 2, 3, 4)
	m2 := market1X2(17, "sportybet", 2.1, 3, 4)
	m3 := market1X2(17, "sportybet", 2.2, 3, 4)
	s.write(changed(m1, at(1)))
	s.write(changed(m1, at(1)), changed(m2, at(2)))                     // overlaps the first
	s.write(changed(m1, at(1)), changed(m2, at(2)), changed(m3, at(3))) // and again
	row := s.current(17)[m1.Key()]
	if n := len(s.history(m1.Key())); row.ChangeCount != n || n != 3 {
		t.Errorf("change_count %d, history rows %d, want 3 and 3", row.ChangeCount, n)
	}
	if diff := cmp.Diff(m3, row.Market); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}

// A confirmation of a market the table does not have (a classifier warmed
// from elsewhere, a row deleted by hand) writes the market in full, without
// a history row.
func TestWriteConfirmationOfMissingMarketInsertsIt(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	known := market1X2(19, "betpawa", 2, 3, 4)
	unknown := overUnder(19, "betpawa", 2.5, 1.9, 1.9)
	s.write(changed(known, at(0)))
	res := s.write(confirmed(known, at(1)), confirmed(unknown, at(1)))
	if res.Upserted != 2 || res.Stale != 0 || res.HistoryAdded != 0 {
		t.Fatalf("result %+v, want both upserted, no history", res)
	}
	row, ok := s.current(19)[unknown.Key()]
	if !ok {
		t.Fatal("the unknown market was not inserted")
	}
	if diff := cmp.Diff(unknown, row.Market); diff != "" {
		t.Errorf("inserted data (-want +got):\n%s", diff)
	}
	if !row.LastConfirmedAt.Equal(at(1)) || !row.LastUpdatedAt.Equal(at(1)) || row.ChangeCount != 0 {
		t.Errorf("confirmed %v updated %v changes %d", row.LastConfirmedAt, row.LastUpdatedAt, row.ChangeCount)
	}
	if n := len(s.history(unknown.Key())); n != 0 {
		t.Errorf("%d history rows for a confirmation, want 0", n)
	}
}

// A confirmation that overtook the market's first change (its batch was
// retried later) made the row; the change, older than the confirmation,
// still sets last_updated_at and change_count when it lands, as it would
// have had the batches arrived in order. Data stays the newest.
func TestWriteChangeAfterConfirmationThatMadeTheRow(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m := market1X2(20, "betpawa", 2, 3, 4)
	s.write(confirmed(m, at(5))) // the later scrape, unchanged: lands first
	res := s.write(changed(m, at(1)))
	if res.HistoryAdded != 1 || res.Upserted != 1 {
		t.Fatalf("result %+v, want the late change upserted and in history", res)
	}
	row := s.current(20)[m.Key()]
	if !row.LastConfirmedAt.Equal(at(5)) || !row.LastUpdatedAt.Equal(at(1)) || row.ChangeCount != 1 {
		t.Errorf("confirmed %v updated %v changes %d, want confirmed at 5, updated at 1, 1 change",
			row.LastConfirmedAt, row.LastUpdatedAt, row.ChangeCount)
	}
	// Once a change has reached the row, an older one is history only.
	older := market1X2(20, "betpawa", 9, 9, 9)
	s.write(changed(older, at(0)))
	if row := s.current(20)[m.Key()]; !row.LastUpdatedAt.Equal(at(1)) || row.ChangeCount != 1 || row.Outcomes[0].Odds != 2 {
		t.Errorf("an older change moved the row: %+v", row)
	}
}

// One batch holding several scrapes of one event at one bookmaker (and of
// its neighbours), their markets interleaved in key order: each
// confirmation takes its own scrape's time, not another's of the batch.
func TestWriteConfirmationsOfSeveralScrapesInOneBatch(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var first, second []marketodds.Write
	for _, ev := range []int64{30, 31, 32} {
		for _, book := range []string{"bet9ja", "betpawa"} {
			a, b := market1X2(ev, book, 2, 3, 4), overUnder(ev, book, 2.5, 1.9, 1.9)
			c := overUnder(ev, book, 3.5, 1.8, 2.0)
			s.write(changed(a, at(0)), changed(b, at(0)), changed(c, at(0)))
			// Scrape at(2) saw a and c, scrape at(1) saw b: one batch.
			first = append(first, confirmed(a, at(2)), confirmed(c, at(2)))
			second = append(second, confirmed(b, at(1)))
		}
	}
	res := s.write(append(second, first...)...)
	if res.Upserted != 18 || res.Stale != 0 {
		t.Fatalf("result %+v, want 18 confirmed", res)
	}
	for _, ev := range []int64{30, 31, 32} {
		rows := s.current(ev)
		for _, w := range append(slices.Clone(first), second...) {
			if w.EventID != ev {
				continue
			}
			if got := rows[w.Key()].LastConfirmedAt; !got.Equal(w.CapturedAt) {
				t.Errorf("%v: confirmed at %v, want %v", w.Key(), got, w.CapturedAt)
			}
		}
	}
}
