package main

// TEMPORARY, with board_fallback.go: the tests of the fallback reader and
// of the fallback's margin and best prices. When marketodds has the read
// API, delete this file with board_fallback.go (marketodds tests its own),
// or keep the History and OpeningClosing cases as a check of what the board
// relies on; the SeenAt expectations are the fallback's.

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

func line(l float64) *float64 { return &l }

// readerFixture writes a small, known history and returns a reader of it:
//
//	event 1, a/M:      t0 2.0/3.2/3.8, t2 2.1/3.1/3.6, confirmed t3, t4 gone, t6 back 2.2/3.0(suspended)/3.4
//	event 1, b/M:      t1 2.05/3.3/3.5, t5 1.95/3.4/3.9
//	event 1, a/OU 2.5: t0 1.9/1.9
//	event 1, b/OU 1.5: t1 1.4/2.8
//	event 2, a/M:      t3 2.5/3.0/2.9
func readerFixture(t *testing.T) reader {
	t.Helper()
	ctx := context.Background()
	store, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: pgtest.Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	m := func(event int64, book, id string, l *float64, o []marketodds.Outcome) marketodds.Market {
		return marketodds.Market{EventID: event, Bookmaker: book, MarketID: id, Line: l, Name: id, Outcomes: o,
			Groups: []string{"popular"}}
	}
	susp := outs(2.2, 3.0, 3.4)
	susp[1].Suspended = true
	writes := []marketodds.Write{
		{Market: m(1, "a", "M", nil, outs(2.0, 3.2, 3.8)), CapturedAt: tn(0), Changed: true},
		{Market: m(1, "a", "OU", line(2.5), outs(1.9, 1.9)), CapturedAt: tn(0), Changed: true},
		{Market: m(1, "b", "M", nil, outs(2.05, 3.3, 3.5)), CapturedAt: tn(1), Changed: true},
		{Market: m(1, "b", "OU", line(1.5), outs(1.4, 2.8)), CapturedAt: tn(1), Changed: true},
		{Market: m(1, "a", "M", nil, outs(2.1, 3.1, 3.6)), CapturedAt: tn(2), Changed: true},
		{Market: m(1, "a", "M", nil, outs(2.1, 3.1, 3.6)), CapturedAt: tn(3)}, // a confirmation
		{Market: m(2, "a", "M", nil, outs(2.5, 3.0, 2.9)), CapturedAt: tn(3), Changed: true},
		{Market: marketodds.Market{EventID: 1, Bookmaker: "a", MarketID: "M"}, CapturedAt: tn(4), Changed: true, Unavailable: true},
		{Market: m(1, "b", "M", nil, outs(1.95, 3.4, 3.9)), CapturedAt: tn(5), Changed: true},
		{Market: m(1, "a", "M", nil, susp), CapturedAt: tn(6), Changed: true},
	}
	for _, w := range writes {
		res, err := store.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{w}})
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("write %v at %s: %v %v", w.Key(), w.CapturedAt, err, res.Rejected)
		}
	}
	return newReader(store, pgtest.Pool(t))
}

// summary is a record or a state in a line: key, time, odds.
func summary(m marketodds.Market, at time.Time, unavailable bool) string {
	var odds []string
	for _, o := range m.Outcomes {
		s := fmt.Sprint(o.Odds)
		if o.Suspended {
			s += "s"
		}
		odds = append(odds, s)
	}
	u := ""
	if unavailable {
		u = " gone"
	}
	k := m.Key()
	return fmt.Sprintf("%d/%s/%s/%g t%d %s%s", k.EventID, k.Bookmaker, k.MarketID, k.Line, int(at.Sub(t0)/(5*time.Minute)),
		strings.Join(odds, "/"), u)
}

func TestFallbackMarketsAt(t *testing.T) {
	t.Parallel()
	r := readerFixture(t)
	ctx := context.Background()
	at := func(q Query, at time.Time) []string {
		t.Helper()
		states, err := r.MarketsAt(ctx, q, at)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range states {
			out = append(out, fmt.Sprintf("%s seen t%d", summary(s.Market, s.ChangedAt, s.Unavailable),
				int(s.SeenAt.Sub(t0)/(5*time.Minute))))
		}
		return out
	}
	for _, c := range []struct {
		q    Query
		at   time.Time
		want []string
	}{
		{Query{EventIDs: []int64{1}}, tn(0).Add(-time.Second), nil},
		{Query{EventIDs: []int64{1}}, tn(3), []string{
			// a/M was confirmed at t3, but the current row's confirmation is
			// t6's: the latest change of (1, a) up to t3 is the bound.
			"1/a/M/0 t2 2.1/3.1/3.6 seen t2",
			"1/a/OU/2.5 t0 1.9/1.9 seen t0",
			"1/b/M/0 t1 2.05/3.3/3.5 seen t1",
			"1/b/OU/1.5 t1 1.4/2.8 seen t1",
		}},
		{Query{EventIDs: []int64{1}, MarketIDs: []string{"M"}}, tn(4), []string{
			"1/a/M/0 t4 2.1/3.1/3.6 gone seen t4", // the last data the bookmaker showed
			"1/b/M/0 t1 2.05/3.3/3.5 seen t1",
		}},
		{Query{EventIDs: []int64{1, 2}, Bookmakers: []string{"a"}, MarketIDs: []string{"M"}}, tn(9), []string{
			"1/a/M/0 t6 2.2/3s/3.4 seen t6",
			"2/a/M/0 t3 2.5/3/2.9 seen t3",
		}},
	} {
		if diff := cmp.Diff(c.want, at(c.q, c.at)); diff != "" {
			t.Errorf("MarketsAt(%+v, t%v) (-want +got):\n%s", c.q, c.at.Sub(t0)/(5*time.Minute), diff)
		}
	}
	if _, err := r.MarketsAt(ctx, Query{}, tn(1)); err == nil {
		t.Error("a query without EventIDs was accepted")
	}
}

func TestFallbackHistory(t *testing.T) {
	t.Parallel()
	r := readerFixture(t)
	ctx := context.Background()
	hist := func(q Query, from, to time.Time) []string {
		t.Helper()
		recs, err := r.History(ctx, q, from, to)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range recs {
			out = append(out, summary(h.Market, h.CapturedAt, h.Unavailable))
		}
		return out
	}
	q := Query{EventIDs: []int64{1}, MarketIDs: []string{"M"}}
	for _, c := range []struct {
		from, to time.Time
		want     []string
	}{
		// A change at from is the record in force at from, once.
		{tn(2), tn(6), []string{"1/a/M/0 t2 2.1/3.1/3.6", "1/a/M/0 t4 2.1/3.1/3.6 gone", "1/b/M/0 t1 2.05/3.3/3.5",
			"1/b/M/0 t5 1.95/3.4/3.9"}},
		{tn(3), tn(7), []string{"1/a/M/0 t2 2.1/3.1/3.6", "1/a/M/0 t4 2.1/3.1/3.6 gone", "1/a/M/0 t6 2.2/3s/3.4",
			"1/b/M/0 t1 2.05/3.3/3.5", "1/b/M/0 t5 1.95/3.4/3.9"}},
		// Before anything: only the changes in the window.
		{tn(-5), tn(1), []string{"1/a/M/0 t0 2/3.2/3.8"}},
		{tn(-5), tn(0), nil},
	} {
		if diff := cmp.Diff(c.want, hist(q, c.from, c.to)); diff != "" {
			t.Errorf("History(t%v, t%v) (-want +got):\n%s", c.from.Sub(t0)/(5*time.Minute), c.to.Sub(t0)/(5*time.Minute), diff)
		}
	}
	if got := hist(Query{EventIDs: []int64{1}, Bookmakers: []string{"b"}}, tn(0), tn(9)); !cmp.Equal(got, []string{
		"1/b/M/0 t1 2.05/3.3/3.5", "1/b/M/0 t5 1.95/3.4/3.9", "1/b/OU/1.5 t1 1.4/2.8"}) {
		t.Errorf("History of bookmaker b: %q", got)
	}
	if _, err := r.History(ctx, q, tn(3), tn(3)); err == nil {
		t.Error("an empty window was accepted")
	}
}

func TestFallbackOpeningClosingAndScrapes(t *testing.T) {
	t.Parallel()
	r := readerFixture(t)
	ctx := context.Background()
	ocs, err := r.OpeningClosing(ctx, Query{EventIDs: []int64{1}}, tn(5))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, oc := range ocs {
		got = append(got, summary(oc.Opening.Market, oc.Opening.CapturedAt, oc.Opening.Unavailable)+" -> "+
			summary(oc.Closing.Market, oc.Closing.CapturedAt, oc.Closing.Unavailable))
		if oc.Key != oc.Opening.Key() || oc.Key != oc.Closing.Key() {
			t.Errorf("key %v of %v, %v", oc.Key, oc.Opening.Key(), oc.Closing.Key())
		}
	}
	want := []string{
		"1/a/M/0 t0 2/3.2/3.8 -> 1/a/M/0 t4 2.1/3.1/3.6 gone",
		"1/a/OU/2.5 t0 1.9/1.9 -> 1/a/OU/2.5 t0 1.9/1.9",
		"1/b/M/0 t1 2.05/3.3/3.5 -> 1/b/M/0 t5 1.95/3.4/3.9",
		"1/b/OU/1.5 t1 1.4/2.8 -> 1/b/OU/1.5 t1 1.4/2.8",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OpeningClosing (-want +got):\n%s", diff)
	}
	if ocs, err := r.OpeningClosing(ctx, Query{EventIDs: []int64{1}}, tn(0).Add(-time.Minute)); err != nil || len(ocs) != 0 {
		t.Errorf("OpeningClosing before anything: %v, %v", ocs, err)
	}

	scrapes, err := r.Scrapes(ctx, []int64{2, 1, 3})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, s := range scrapes {
		got = append(got, fmt.Sprintf("%d/%s t%d", s.EventID, s.Bookmaker, int(s.LastScrapedAt.Sub(t0)/(5*time.Minute))))
	}
	if diff := cmp.Diff([]string{"1/a t6", "1/b t5", "2/a t3"}, got); diff != "" {
		t.Errorf("Scrapes (-want +got):\n%s", diff)
	}
}

func TestBestPricesAndMargin(t *testing.T) {
	t.Parallel()
	st := func(book string, l *float64, unavailable bool, o []marketodds.Outcome) MarketState {
		return MarketState{Market: marketodds.Market{EventID: 1, Bookmaker: book, MarketID: "M", Line: l, Outcomes: o},
			Unavailable: unavailable}
	}
	susp := outs(9, 3, 4)
	susp[0].Suspended = true
	got := bestPrices([]MarketState{
		st("a", nil, false, outs(2.0, 3.2, 3.8)),
		st("b", line(0), false, outs(2.1, 3.2, 3.7)), // line 0 is no line
		st("c", nil, true, outs(5, 5, 5)),            // unavailable: not a price
		st("d", nil, false, susp),                    // suspended: not a price
		st("a", line(2.5), false, outs(1.9, 1.9)),
	})
	want := []BestPrice{
		{EventID: 1, MarketID: "M", Line: 0, Outcome: "1", Odds: 2.1, Bookmakers: []string{"b"}},
		{EventID: 1, MarketID: "M", Line: 0, Outcome: "X", Odds: 3.2, Bookmakers: []string{"a", "b"}},
		{EventID: 1, MarketID: "M", Line: 0, Outcome: "2", Odds: 4, Bookmakers: []string{"d"}},
		{EventID: 1, MarketID: "M", Line: 2.5, Outcome: "Over", Odds: 1.9, Bookmakers: []string{"a"}},
		{EventID: 1, MarketID: "M", Line: 2.5, Outcome: "Under", Odds: 1.9, Bookmakers: []string{"a"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bestPrices (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		odds []float64
		want float64
	}{{[]float64{2, 2}, 0}, {[]float64{1.9, 1.9}, 5.263}, {[]float64{3, 3, 3}, 0}, {[]float64{2.5, 3.2, 2.9}, 5.73}} {
		if got := margin(marketodds.Market{Outcomes: outs(c.odds...)}); math.Abs(got-c.want) > 0.01 {
			t.Errorf("margin(%v) = %.3f, want %.3f", c.odds, got, c.want)
		}
	}
	// No margin of an incomplete book.
	for _, o := range [][]marketodds.Outcome{nil, outs(2.0, 3.0, 4.0)[:1], susp} {
		if got := margin(marketodds.Market{Outcomes: o}); !math.IsNaN(got) {
			t.Errorf("margin(%v) = %v, want NaN", o, got)
		}
	}
}
