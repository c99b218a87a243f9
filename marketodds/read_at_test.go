package marketodds_test

import (
	"context"
	"errors"
	"math"
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

// newReadStore is a migrated store in a schema of the test's own, with cfg
// (its Schema is set here).
func newReadStore(t testing.TB, cfg *marketodds.Config) *testStore {
	t.Helper()
	c := *cfg
	c.Schema = pgtest.Schema(t)
	s, err := marketodds.NewStore(pgtest.Pool(t), &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &testStore{Store: s, schema: c.Schema, t: t}
}

func (s *testStore) marketsAt(q marketodds.Query, at time.Time) []marketodds.MarketState {
	s.t.Helper()
	got, err := s.MarketsAt(context.Background(), q, at)
	if err != nil {
		s.t.Fatal(err)
	}
	return got
}

// state is the MarketState a test expects.
func atState(m marketodds.Market, changed, seen time.Time, unavailable bool) marketodds.MarketState {
	return marketodds.MarketState{Market: m, ChangedAt: changed, SeenAt: seen, Unavailable: unavailable}
}

func histRecord(m marketodds.Market, at time.Time, unavailable bool) marketodds.HistoryRecord {
	return marketodds.HistoryRecord{Market: m, CapturedAt: at, Unavailable: unavailable}
}

func disappeared(m marketodds.Market, t time.Time) marketodds.Write {
	return marketodds.Write{Market: m, CapturedAt: t, Changed: true, Unavailable: true}
}

func diffRead(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := gocmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

func TestReadMarketsAtTimes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ev := marketodds.Query{EventIDs: []int64{1}}
	a1 := market1X2(1, "betpawa", 2.1, 3.3, 3.6)
	a2 := market1X2(1, "betpawa", 2.0, 3.4, 3.8)
	b1 := market1X2(1, "bet9ja", 2.2, 3.2, 3.5)
	ou := overUnder(1, "betpawa", 2.5, 1.8, 2.0)
	s.write(changed(a1, at(0)), changed(ou, at(0)))
	s.write(changed(b1, at(2)))
	s.write(confirmed(a1, at(5)), disappeared(ou, at(5)))
	s.write(changed(a2, at(10)))
	s.write(confirmed(b1, at(12)))

	diffRead(t, "before the first change", []marketodds.MarketState(nil), s.marketsAt(ev, at(-1)))
	diffRead(t, "a microsecond before the first change", []marketodds.MarketState(nil), s.marketsAt(ev, at(0).Add(-time.Microsecond)))
	// Exactly at a change: that change is in force. Key order: bet9ja
	// before betpawa, market 3743 before 5000.
	diffRead(t, "at the first change", []marketodds.MarketState{
		atState(a1, at(0), at(0), false), atState(ou, at(0), at(0), false),
	}, s.marketsAt(ev, at(0)))
	diffRead(t, "between scrapes", []marketodds.MarketState{
		atState(b1, at(2), at(2), false), atState(a1, at(0), at(0), false), atState(ou, at(0), at(0), false),
	}, s.marketsAt(ev, at(4)))
	// The disappearance is in force, with the market's last data.
	diffRead(t, "at the confirmation and disappearance", []marketodds.MarketState{
		atState(b1, at(2), at(2), false), atState(a1, at(0), at(5), false), atState(ou, at(5), at(5), true),
	}, s.marketsAt(ev, at(5)))
	diffRead(t, "a microsecond before the second change", []marketodds.MarketState{
		atState(b1, at(2), at(2), false), atState(a1, at(0), at(5), false), atState(ou, at(5), at(5), true),
	}, s.marketsAt(ev, at(10).Add(-time.Microsecond)))
	diffRead(t, "at the second change", []marketodds.MarketState{
		atState(b1, at(2), at(2), false), atState(a2, at(10), at(10), false), atState(ou, at(5), at(10), true),
	}, s.marketsAt(ev, at(10)))
	// At and after the newest data: from the current table alone.
	want := []marketodds.MarketState{
		atState(b1, at(2), at(12), false), atState(a2, at(10), at(10), false), atState(ou, at(5), at(10), true),
	}
	diffRead(t, "at the newest scrape", want, s.marketsAt(ev, at(12)))
	diffRead(t, "a year later", want, s.marketsAt(ev, at(12).AddDate(1, 0, 0)))

	diffRead(t, "one bookmaker", want[:1], s.marketsAt(marketodds.Query{EventIDs: []int64{1}, Bookmakers: []string{"bet9ja"}}, at(20)))
	diffRead(t, "one market id", want[1:2], s.marketsAt(marketodds.Query{EventIDs: []int64{1}, Bookmakers: []string{"betpawa", "x"}, MarketIDs: []string{"3743"}}, at(20)))
	diffRead(t, "an event without markets", []marketodds.MarketState(nil), s.marketsAt(marketodds.Query{EventIDs: []int64{2}}, at(20)))
}

// Stored times have microsecond precision; a time between two microseconds
// selects what the exact time would.
func TestReadSubMicrosecondTimes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m1, m2 := market1X2(11, "betpawa", 2.1, 3.3, 3.6), market1X2(11, "betpawa", 2.0, 3.4, 3.8)
	s.write(changed(m1, at(0)))
	s.write(changed(m2, at(10)))
	s.write(changed(market1X2(11, "betpawa", 1.9, 3.5, 4.0), at(20)))
	q := marketodds.Query{EventIDs: []int64{11}}
	half := 500 * time.Nanosecond
	diffRead(t, "half a microsecond before a change", []marketodds.MarketState{atState(m1, at(0), at(0), false)}, s.marketsAt(q, at(10).Add(-half)))
	diffRead(t, "half a microsecond after a change", []marketodds.MarketState{atState(m2, at(10), at(10), false)}, s.marketsAt(q, at(10).Add(half)))
	hist, err := s.History(context.Background(), q, at(10).Add(half), at(20).Add(-half))
	if err != nil {
		t.Fatal(err)
	}
	// m2 is in force at from, and not in [from, to) itself: once.
	diffRead(t, "history", []marketodds.HistoryRecord{histRecord(m2, at(10), false)}, hist)
	if hist, err = s.History(context.Background(), q, at(10).Add(half/2), at(10).Add(half)); err != nil || len(hist) != 1 {
		t.Errorf("a window inside one microsecond: %v, %v; want the record in force", hist, err)
	}
}

// A market identified with a nil line, then a line of 0, is one market: its
// states carry the line as each change wrote it.
func TestReadNilLineVersusZero(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	nilLine := overUnder(5, "betpawa", 0, 1.9, 1.9)
	nilLine.Line = nil
	zero := overUnder(5, "betpawa", 0, 1.8, 2.0)
	other := overUnder(5, "betpawa", 0.5, 1.5, 2.5)
	s.write(changed(nilLine, at(0)), changed(other, at(0)))
	s.write(changed(zero, at(10)))
	s.write(changed(nilLine, at(20)))

	q := marketodds.Query{EventIDs: []int64{5}, MarketIDs: []string{"5000"}}
	diffRead(t, "nil line", []marketodds.MarketState{atState(nilLine, at(0), at(0), false), atState(other, at(0), at(0), false)}, s.marketsAt(q, at(5)))
	got := s.marketsAt(q, at(15))
	diffRead(t, "line 0", []marketodds.MarketState{atState(zero, at(10), at(10), false), atState(other, at(0), at(10), false)}, got)
	if got[0].Line == nil || *got[0].Line != 0 {
		t.Errorf("line 0 read back as %v", got[0].Line)
	}
	diffRead(t, "nil again, from the current row", []marketodds.MarketState{atState(nilLine, at(20), at(20), false), atState(other, at(0), at(20), false)}, s.marketsAt(q, at(30)))

	hist, err := s.History(context.Background(), q, at(5), at(25))
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "history", []marketodds.HistoryRecord{
		histRecord(nilLine, at(0), false), histRecord(zero, at(10), false), histRecord(nilLine, at(20), false), histRecord(other, at(0), false),
	}, hist)
}

// changedetect reports a disappearance with the market's identity only: the
// store records it with the current row's data.
func TestReadDisappearance(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m1 := market1X2(3, "sportybet", 2.1, 3.3, 3.6)
	m2 := market1X2(3, "sportybet", 1.9, 3.5, 4.0)
	s.write(changed(m1, at(0)))
	s.write(confirmed(m1, at(5)), changed(market1X2(3, "betpawa", 2.0, 3.4, 3.7), at(5)))
	s.write(disappeared(marketodds.Market{EventID: 3, Bookmaker: "sportybet", MarketID: "3743"}, at(10)))
	s.write(changed(m2, at(20)))

	q := marketodds.Query{EventIDs: []int64{3}, Bookmakers: []string{"sportybet"}}
	diffRead(t, "offered", []marketodds.MarketState{atState(m1, at(0), at(5), false)}, s.marketsAt(q, at(9)))
	diffRead(t, "gone", []marketodds.MarketState{atState(m1, at(10), at(10), true)}, s.marketsAt(q, at(15)))
	diffRead(t, "back", []marketodds.MarketState{atState(m2, at(20), at(20), false)}, s.marketsAt(q, at(25)))

	all := s.marketsAt(marketodds.Query{EventIDs: []int64{3}}, at(15))
	best := marketodds.BestPrices(all)
	if len(best) != 3 || !slices.Equal(best[0].Bookmakers, []string{"betpawa"}) {
		t.Errorf("best prices with sportybet's market gone: %+v", best)
	}

	hist, err := s.History(context.Background(), q, at(1), at(30))
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "history", []marketodds.HistoryRecord{histRecord(m1, at(0), false), histRecord(m1, at(10), true), histRecord(m2, at(20), false)}, hist)
}

// A confirmation that overtook its market's first change (batches retried
// out of order) inserts the market's current row before any change reached
// it; a market only ever confirmed has a current row and no change at all,
// and is left out.
func TestReadConfirmationBeforeFirstChange(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m := market1X2(10, "betpawa", 2.1, 3.3, 3.6)
	never := overUnder(10, "betpawa", 2.5, 1.8, 2.0)
	s.write(confirmed(m, at(5)), confirmed(never, at(5)))
	q := marketodds.Query{EventIDs: []int64{10}}
	diffRead(t, "confirmed only", []marketodds.MarketState(nil), s.marketsAt(q, at(10)))
	s.write(changed(m, at(0)), confirmed(never, at(0)))

	diffRead(t, "after both", []marketodds.MarketState{atState(m, at(0), at(5), false)}, s.marketsAt(q, at(10)))
	diffRead(t, "between", []marketodds.MarketState{atState(m, at(0), at(0), false)}, s.marketsAt(q, at(3)))
	hist, err := s.History(context.Background(), q, at(6), at(10))
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "history", []marketodds.HistoryRecord{histRecord(m, at(0), false)}, hist)
	oc, err := s.OpeningClosing(context.Background(), q, at(10))
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "opening and closing", []marketodds.OpenClose{{Key: m.Key(), Opening: histRecord(m, at(0), false), Closing: histRecord(m, at(0), false)}}, oc)
}

// The state at T sits 29 daily partitions back: the read probes each
// partition once, newest first, and never one after T; a market that
// changed in T's own partition stops there.
func TestReadStateManyPartitionsBack(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	day0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	day := func(d int, hour int) time.Time { return day0.AddDate(0, 0, d).Add(time.Duration(hour) * time.Hour) }
	rare := market1X2(9, "betpawa", 2.5, 3.1, 2.9)
	s.write(changed(rare, day(0, 6)))
	var daily marketodds.Market
	for d := range 31 {
		daily = overUnder(9, "betpawa", 2.5, 1.5+float64(d)/100, 2.5)
		s.write(changed(daily, day(d, 8)), confirmed(rare, day(d, 8)))
	}
	rare2 := market1X2(9, "betpawa", 2.4, 3.2, 3.0)
	s.write(changed(rare2, day(30, 9)))

	at := day(29, 12)
	q := marketodds.Query{EventIDs: []int64{9}}
	wantDaily := overUnder(9, "betpawa", 2.5, 1.5+29.0/100, 2.5)
	diffRead(t, "29 partitions back", []marketodds.MarketState{
		atState(rare, day(0, 6), day(29, 8), false), atState(wantDaily, day(29, 8), day(29, 8), false),
	}, s.marketsAt(q, at))

	for _, generic := range []bool{false, true} {
		plan := explainRead(t, s, generic, func(st *marketodds.Store) error {
			_, err := st.MarketsAt(context.Background(), q, at)
			return err
		})
		t.Logf("MarketsAt(event 9, %s), generic plan %v:\n%s", at.Format(time.RFC3339), generic, plan)
		for _, p := range partitionScans(plan, "market_odds_history") {
			switch {
			case p.start.After(at) && p.executed:
				t.Errorf("partition %s (after T) was executed", p.name)
			case !p.start.After(at) && !p.executed:
				t.Errorf("partition %s (T's or older) was not executed: the rare market's state is in the oldest", p.name)
			case p.start.Equal(day(29, 0)) && p.loops != 2, p.start.Before(day(29, 0)) && p.loops != 1:
				t.Errorf("partition %s executed %d times; the daily market should stop at T's partition", p.name, p.loops)
			}
		}
	}

	// At or after the newest data: no history and no scrape log at all.
	plan := explainRead(t, s, false, func(st *marketodds.Store) error {
		_, err := st.MarketsAt(context.Background(), q, day(31, 0))
		return err
	})
	t.Logf("MarketsAt(event 9, after the newest data):\n%s", plan)
	for _, p := range append(partitionScans(plan, "market_odds_history"), partitionScans(plan, "market_scrape_log")...) {
		if p.executed {
			t.Errorf("partition %s executed by a read at or after the newest data", p.name)
		}
	}
}

// Retention drops history and scrape log partitions, not the current
// table: each market's newest change and each event and bookmaker's newest
// scrape stay readable.
func TestReadRetention(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	day1 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	day := func(d int, hour int) time.Time { return day1.AddDate(0, 0, d-1).Add(time.Duration(hour) * time.Hour) }
	a1, a2, a3 := market1X2(4, "betpawa", 2.1, 3.3, 3.6), market1X2(4, "betpawa", 2.0, 3.4, 3.8), market1X2(4, "betpawa", 1.9, 3.5, 4.0)
	b := overUnder(4, "betpawa", 2.5, 1.8, 2.0)
	c1, c3 := overUnder(4, "betpawa", 3.5, 2.6, 1.5), overUnder(4, "betpawa", 3.5, 2.7, 1.45)
	s.write(changed(a1, day(1, 10)), changed(b, day(1, 10)), changed(c1, day(1, 10)))
	s.write(changed(a2, day(2, 12)), confirmed(b, day(2, 12)), confirmed(c1, day(2, 12)))
	s.write(changed(a3, day(3, 10)), confirmed(b, day(3, 10)), changed(c3, day(3, 10)))

	dropped, err := s.DropPartitionsBefore(context.Background(), day(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Log("dropped", dropped)
	q := marketodds.Query{EventIDs: []int64{4}}
	diffRead(t, "in the dropped day", []marketodds.MarketState{atState(b, day(1, 10), day(1, 10), false)}, s.marketsAt(q, day(1, 12)))
	diffRead(t, "the next morning", []marketodds.MarketState{atState(b, day(1, 10), day(1, 10), false)}, s.marketsAt(q, day(2, 6)))
	diffRead(t, "after the next change", []marketodds.MarketState{
		atState(a2, day(2, 12), day(2, 12), false), atState(b, day(1, 10), day(2, 12), false),
	}, s.marketsAt(q, day(2, 13)))
	diffRead(t, "now", []marketodds.MarketState{
		atState(a3, day(3, 10), day(3, 10), false), atState(b, day(1, 10), day(3, 10), false), atState(c3, day(3, 10), day(3, 10), false),
	}, s.marketsAt(q, day(4, 0)))

	hist, err := s.History(context.Background(), q, day(1, 0), day(4, 0))
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "history", []marketodds.HistoryRecord{
		histRecord(a2, day(2, 12), false), histRecord(a3, day(3, 10), false), histRecord(b, day(1, 10), false), histRecord(c3, day(3, 10), false),
	}, hist)
	oc, err := s.OpeningClosing(context.Background(), q, day(3, 12))
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "opening and closing", []marketodds.OpenClose{
		{Key: a1.Key(), Opening: histRecord(a2, day(2, 12), false), Closing: histRecord(a3, day(3, 10), false)},
		{Key: b.Key(), Opening: histRecord(b, day(1, 10), false), Closing: histRecord(b, day(1, 10), false)},
		{Key: c1.Key(), Opening: histRecord(c3, day(3, 10), false), Closing: histRecord(c3, day(3, 10), false)},
	}, oc)
}

// An event whose scrapes the store has no record of (a schema upgraded from
// before the scrape log): SeenAt is ChangedAt.
func TestReadEventWithoutScrapes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	m := market1X2(6, "betpawa", 2.1, 3.3, 3.6)
	s.write(changed(m, at(0)))
	s.write(confirmed(m, at(5)))
	s.write(changed(market1X2(7, "betpawa", 2.1, 3.3, 3.6), at(5)))
	s.exec("DELETE FROM market_scrape_log WHERE event_id = 6")
	s.exec("DELETE FROM market_scrapes WHERE event_id = 6")
	q := marketodds.Query{EventIDs: []int64{6}}
	diffRead(t, "past", []marketodds.MarketState{atState(m, at(0), at(0), false)}, s.marketsAt(q, at(3)))
	diffRead(t, "after the newest data", []marketodds.MarketState{atState(m, at(0), at(0), false)}, s.marketsAt(q, at(30)))
	scrapes, err := s.Scrapes(context.Background(), []int64{6, 7})
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "scrapes", []marketodds.Scrape{{EventID: 7, Bookmaker: "betpawa", LastScrapedAt: at(5)}}, scrapes)
}

func TestReadOpeningClosing(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	a1, a2, a3 := market1X2(8, "betpawa", 2.1, 3.3, 3.6), market1X2(8, "betpawa", 2.0, 3.4, 3.8), market1X2(8, "betpawa", 1.9, 3.5, 4.0)
	late := overUnder(8, "betpawa", 2.5, 1.8, 2.0)
	s.write(changed(a1, at(0)))
	s.write(changed(a2, at(10)))
	s.write(changed(a3, at(30)), changed(late, at(30)))
	q := marketodds.Query{EventIDs: []int64{8}}
	oc, err := s.OpeningClosing(context.Background(), q, at(20))
	if err != nil {
		t.Fatal(err)
	}
	diffRead(t, "kickoff between changes", []marketodds.OpenClose{
		{Key: a1.Key(), Opening: histRecord(a1, at(0), false), Closing: histRecord(a2, at(10), false)},
	}, oc)
	if oc, err = s.OpeningClosing(context.Background(), q, at(0)); err != nil {
		t.Fatal(err)
	}
	diffRead(t, "kickoff at the first change", []marketodds.OpenClose{
		{Key: a1.Key(), Opening: histRecord(a1, at(0), false), Closing: histRecord(a1, at(0), false)},
	}, oc)
	if oc, err = s.OpeningClosing(context.Background(), q, at(-1)); err != nil || len(oc) != 0 {
		t.Errorf("kickoff before every change: %v, %v", oc, err)
	}
}

func TestReadScanHistoryStopsOnError(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for i := range 5 {
		s.write(changed(market1X2(2, "betpawa", 2.1+float64(i)/10, 3.3, 3.6), at(i)))
	}
	stop := errors.New("enough")
	calls := 0
	err := s.ScanHistory(context.Background(), marketodds.Query{EventIDs: []int64{2}}, at(0), at(10), func(marketodds.HistoryRecord) error {
		if calls++; calls == 2 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Errorf("ScanHistory = %v after %d calls, want the callback's error after 2", err, calls)
	}
}

func TestReadInvalidQuery(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	ok := marketodds.Query{EventIDs: []int64{1}}
	for name, read := range map[string]func() error{
		"MarketsAt no events": func() error {
			_, err := s.MarketsAt(ctx, marketodds.Query{Bookmakers: []string{"betpawa"}}, at(0))
			return err
		},
		"MarketsAt zero time": func() error { _, err := s.MarketsAt(ctx, ok, time.Time{}); return err },
		"History no events":   func() error { _, err := s.History(ctx, marketodds.Query{}, at(0), at(1)); return err },
		"History from == to":  func() error { _, err := s.History(ctx, ok, at(1), at(1)); return err },
		"History from > to":   func() error { _, err := s.History(ctx, ok, at(2), at(1)); return err },
		"History zero from":   func() error { _, err := s.History(ctx, ok, time.Time{}, at(1)); return err },
		"ScanHistory no events": func() error {
			return s.ScanHistory(ctx, marketodds.Query{}, at(0), at(1), func(marketodds.HistoryRecord) error { return nil })
		},
		"OpeningClosing no events": func() error { _, err := s.OpeningClosing(ctx, marketodds.Query{}, at(0)); return err },
		"OpeningClosing zero time": func() error { _, err := s.OpeningClosing(ctx, ok, time.Time{}); return err },
		"Scrapes no events":        func() error { _, err := s.Scrapes(ctx, nil); return err },
	} {
		err := read()
		if !errors.Is(err, marketodds.ErrInvalidQuery) {
			t.Errorf("%s: %v, want ErrInvalidQuery", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestReadMargin(t *testing.T) {
	t.Parallel()
	o := func(odds ...float64) []marketodds.Outcome {
		var out []marketodds.Outcome
		for i, x := range odds {
			out = append(out, marketodds.Outcome{Name: string(rune('a' + i)), Odds: x})
		}
		return out
	}
	suspended := o(2.1, 3.3, 3.6)
	suspended[1].Suspended = true
	for _, c := range []struct {
		name     string
		outcomes []marketodds.Outcome
		want     float64 // NaN: NaN
	}{
		{"1X2", o(2.1, 3.3, 3.6), (1/2.1 + 1/3.3 + 1/3.6 - 1) * 100},
		{"fair", o(2, 2), 0},
		{"arbitrage", o(2.1, 2.1), (2/2.1 - 1) * 100},
		{"suspended outcome", suspended, math.NaN()},
		{"one outcome", o(1.5), math.NaN()},
		{"no outcomes", nil, math.NaN()},
		{"odds of 1", o(1, 2), math.NaN()},
		{"infinite odds", o(math.Inf(1), 2), math.NaN()},
	} {
		got := marketodds.Market{Outcomes: c.outcomes}.Margin()
		if math.IsNaN(c.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-c.want) > 1e-9) {
			t.Errorf("%s: Margin() = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestReadBestPrices(t *testing.T) {
	t.Parallel()
	st := func(m marketodds.Market, unavailable bool) marketodds.MarketState {
		return marketodds.MarketState{Market: m, Unavailable: unavailable}
	}
	susp := market1X2(1, "sportybet", 9.0, 3.4, 9.0)
	susp.Outcomes[0].Suspended = true
	zeroLine := overUnder(1, "bet9ja", 0, 1.9, 1.95)
	nilLine := overUnder(1, "betpawa", 0, 1.95, 1.9)
	nilLine.Line = nil
	states := []marketodds.MarketState{
		st(overUnder(2, "betpawa", 2.5, 1.8, 2.0), false),
		st(market1X2(1, "bet9ja", 2.1, 3.3, 3.6), false),
		st(market1X2(1, "betpawa", 2.1, 3.4, 3.5), false),
		st(market1X2(1, "betway", 5.0, 5.0, 5.0), true), // unavailable
		st(susp, false),
		st(zeroLine, false),
		st(nilLine, false),
	}
	want := []marketodds.BestPrice{
		{EventID: 1, MarketID: "3743", Outcome: "1", Odds: 2.1, Bookmakers: []string{"bet9ja", "betpawa"}},
		{EventID: 1, MarketID: "3743", Outcome: "X", Odds: 3.4, Bookmakers: []string{"betpawa", "sportybet"}},
		{EventID: 1, MarketID: "3743", Outcome: "2", Odds: 9.0, Bookmakers: []string{"sportybet"}},
		{EventID: 1, MarketID: "5000", Outcome: "Over", Odds: 1.95, Bookmakers: []string{"betpawa"}},
		{EventID: 1, MarketID: "5000", Outcome: "Under", Odds: 1.95, Bookmakers: []string{"bet9ja"}},
		{EventID: 2, MarketID: "5000", Line: 2.5, Outcome: "Over", Odds: 1.8, Bookmakers: []string{"betpawa"}},
		{EventID: 2, MarketID: "5000", Line: 2.5, Outcome: "Under", Odds: 2.0, Bookmakers: []string{"betpawa"}},
	}
	diffRead(t, "best prices", want, marketodds.BestPrices(states))
	diffRead(t, "nothing", []marketodds.BestPrice(nil), marketodds.BestPrices(nil))
}

// explainRead runs read against a store on a connection of its own, takes
// the statement it sent and returns PostgreSQL's EXPLAIN ANALYZE of it with
// the same arguments, without per-node timing: the generic plan that the
// store's reads use, or a custom plan (with the partitions outside the
// read's times pruned by the planner).
func explainRead(t testing.TB, s *testStore, generic bool, read func(*marketodds.Store) error) string {
	t.Helper()
	ctx := context.Background()
	// The server itself, in pgx's default mode: the plan is the server's,
	// and this looks at the session's prepared statement and sets session
	// settings, which a transaction pooler (ODDSLEDGER_TEST_PGBOUNCER) would
	// not keep.
	cfg, err := pgx.ParseConfig(pgtest.DirectURL(t))
	if err != nil {
		t.Fatal(err)
	}
	tr := &lastQuery{}
	cfg.Tracer = tr
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	st, err := marketodds.NewStore(conn, &marketodds.Config{Schema: s.schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := read(st); err != nil {
		t.Fatal(err)
	}
	sql, args := tr.sql, tr.args
	// The store asks for the generic plan (read_settings.sql).
	var generics, customs int64
	err = conn.QueryRow(ctx, "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", sql).Scan(&generics, &customs)
	if err != nil || generics != 1 || customs != 0 {
		t.Errorf("the read's prepared statement: %d generic plans, %d custom (%v); want its generic plan", generics, customs, err)
	}
	mode := "auto"
	if generic {
		mode = "force_generic_plan"
	}
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET jit = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// lastQuery is a pgx tracer that keeps the last statement sent with
// arguments: a read's, not its transaction's.
type lastQuery struct {
	sql  string
	args []any
}

func (q *lastQuery) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if len(d.Args) > 0 {
		q.sql, q.args = d.SQL, d.Args
	}
	return ctx
}

func (q *lastQuery) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// partitionScan is one scan of a partition in an EXPLAIN ANALYZE.
type partitionScan struct {
	name     string
	start    time.Time
	executed bool
	loops    int
}

var planScanLine = regexp.MustCompile(`on ((market_odds_history|market_scrape_log)_p(\d{8})) \S+ \((never executed|actual rows=\S+ loops=(\d+))\)`)

// partitionScans lists the partitions of table (market_odds_history or
// market_scrape_log) that a plan scans, with the number of times each ran.
// The pruned ones are not in the plan.
func partitionScans(plan, table string) []partitionScan {
	var out []partitionScan
	for _, m := range planScanLine.FindAllStringSubmatch(plan, -1) {
		if m[2] != table {
			continue
		}
		start, _ := time.Parse("20060102", m[3])
		p := partitionScan{name: m[1], start: start, executed: m[4] != "never executed"}
		if p.executed {
			p.loops, _ = strconv.Atoi(m[5])
		}
		out = append(out, p)
	}
	return out
}
