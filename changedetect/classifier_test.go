package changedetect_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/marketodds"
)

const (
	event     = int64(1001)
	bookmaker = "betpawa"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns the capture time of the n-th scrape.
func at(n int) time.Time { return t0.Add(time.Duration(n) * 5 * time.Minute) }

func ptr[T any](v T) *T { return &v }

// market returns a three-way market with the given odds.
func market(id string, odds ...float64) marketodds.Market {
	names := []string{"1", "X", "2", "4", "5", "6", "7", "8", "9"}
	m := marketodds.Market{
		EventID:   event,
		Bookmaker: bookmaker,
		MarketID:  id,
		Name:      "Market " + id,
		Groups:    []string{"popular", "main"},
	}
	for i, o := range odds {
		m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: names[i], Odds: o})
	}
	return m
}

// overUnder returns an over/under market with a line.
func overUnder(line float64, over, under float64) marketodds.Market {
	return marketodds.Market{
		EventID:   event,
		Bookmaker: bookmaker,
		MarketID:  "OU",
		Line:      ptr(line),
		Name:      "Total goals",
		Outcomes:  []marketodds.Outcome{{Name: "Over", Odds: over}, {Name: "Under", Odds: under}},
		Groups:    []string{"goals"},
	}
}

// verdict is the part of a Write that tests compare.
type verdict struct {
	MarketID    string
	Line        *float64
	Changed     bool
	Unavailable bool
}

func verdicts(ws []marketodds.Write) []verdict {
	out := make([]verdict, len(ws))
	for i, w := range ws {
		out[i] = verdict{MarketID: w.MarketID, Line: w.Line, Changed: w.Changed, Unavailable: w.Unavailable}
	}
	return out
}

func changedIDs(ws []marketodds.Write) []string {
	var ids []string
	for _, w := range ws {
		if w.Changed {
			ids = append(ids, w.MarketID)
		}
	}
	return ids
}

func mustVerdicts(t *testing.T, got []marketodds.Write, want ...verdict) {
	t.Helper()
	if diff := cmp.Diff(want, verdicts(got)); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
}

func TestNewMarketIsChanged(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	ws := c.Classify(event, bookmaker, []marketodds.Market{market("1X2", 2, 3, 4)}, at(0))
	mustVerdicts(t, ws, verdict{MarketID: "1X2", Changed: true})
	if got := c.Len(); got != 1 {
		t.Errorf("Len = %d, want 1", got)
	}
}

func TestEmptyScrapeOfNewEvent(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	if ws := c.Classify(event, bookmaker, nil, at(0)); len(ws) != 0 {
		t.Errorf("%d writes, want none", len(ws))
	}
	ws := c.Classify(event, bookmaker, []marketodds.Market{market("1X2", 2, 3, 4)}, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "1X2", Changed: true})
}

func TestSameDataIsUnchangedAndReturned(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	in := []marketodds.Market{market("1X2", 2, 3, 4), market("DC", 1.2, 1.3, 1.4)}
	c.Classify(event, bookmaker, in, at(0))
	ws := c.Classify(event, bookmaker, in, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"}, verdict{MarketID: "DC"})
	for i, w := range ws {
		if !w.CapturedAt.Equal(at(1)) {
			t.Errorf("write %d: CapturedAt = %v, want %v", i, w.CapturedAt, at(1))
		}
		if diff := cmp.Diff(in[i], w.Market); diff != "" {
			t.Errorf("write %d carries other data (-want +got):\n%s", i, diff)
		}
	}
}

// TestEveryDataChangeIsChanged: odds, outcome set, suspension, name, groups,
// handicap and line (nil vs 0: the same key, different data).
func TestEveryDataChangeIsChanged(t *testing.T) {
	t.Parallel()
	base := func() marketodds.Market {
		m := overUnder(0, 1.9, 1.9)
		m.Handicap = &marketodds.Handicap{Type: "asian", Home: -0.25, Away: 0.25}
		return m
	}
	tests := []struct {
		name   string
		mutate func(m *marketodds.Market)
	}{
		{"odds", func(m *marketodds.Market) { m.Outcomes[0].Odds = 1.91 }},
		{"odds swapped between outcomes", func(m *marketodds.Market) { m.Outcomes[0].Odds = 1.8; m.Outcomes[1].Odds = 2.0 }},
		{"outcome added", func(m *marketodds.Market) {
			m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: "Exactly", Odds: 7})
		}},
		{"outcome removed", func(m *marketodds.Market) { m.Outcomes = m.Outcomes[1:] }},
		{"outcome renamed", func(m *marketodds.Market) { m.Outcomes[0].Name = "Over 0" }},
		{"suspended", func(m *marketodds.Market) { m.Outcomes[1].Suspended = true }},
		{"name", func(m *marketodds.Market) { m.Name = "Total goals (regular time)" }},
		{"group added", func(m *marketodds.Market) { m.Groups = append(m.Groups, "popular") }},
		{"group removed", func(m *marketodds.Market) { m.Groups = nil }},
		{"handicap removed", func(m *marketodds.Market) { m.Handicap = nil }},
		{"handicap type", func(m *marketodds.Market) { m.Handicap.Type = "european" }},
		{"handicap values", func(m *marketodds.Market) { m.Handicap.Home, m.Handicap.Away = -0.5, 0.5 }},
		{"line 0 to nil", func(m *marketodds.Market) { m.Line = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := changedetect.New(nil)
			c.Classify(event, bookmaker, []marketodds.Market{base()}, at(0))
			m := base()
			tt.mutate(&m)
			ws := c.Classify(event, bookmaker, []marketodds.Market{m}, at(1))
			mustVerdicts(t, ws, verdict{MarketID: "OU", Line: m.Line, Changed: true})
			// The new state is recorded: the same data again is unchanged.
			ws = c.Classify(event, bookmaker, []marketodds.Market{m}, at(2))
			mustVerdicts(t, ws, verdict{MarketID: "OU", Line: m.Line})
		})
	}
}

// TestOtherLineIsOtherMarket: a different line is a different key, so the
// old line disappears and the new one is new.
func TestOtherLineIsOtherMarket(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	c.Classify(event, bookmaker, []marketodds.Market{overUnder(2.5, 1.9, 1.9)}, at(0))
	ws := c.Classify(event, bookmaker, []marketodds.Market{overUnder(3.5, 2.5, 1.5)}, at(1))
	mustVerdicts(t, ws,
		verdict{MarketID: "OU", Line: ptr(3.5), Changed: true},
		verdict{MarketID: "OU", Line: ptr(2.5), Changed: true, Unavailable: true})
}

func TestOrderDoesNotMatter(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	a := market("1X2", 2, 3, 4)
	a.Groups = []string{"popular", "main", "live"}
	c.Classify(event, bookmaker, []marketodds.Market{a, market("DC", 1.2, 1.3, 1.4)}, at(0))

	b := market("1X2", 2, 3, 4)
	slices.Reverse(b.Outcomes)
	b.Groups = []string{"live", "popular", "main"}
	// The order of the markets does not matter either.
	ws := c.Classify(event, bookmaker, []marketodds.Market{market("DC", 1.2, 1.3, 1.4), b}, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "DC"}, verdict{MarketID: "1X2"})
}

// TestNewMarketsAndReorders: markets added mid-life and scrapes in another
// order (the classifier guesses each market's entry from the order of the
// last scrape, and must not trust the guess blindly).
func TestNewMarketsAndReorders(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	a, b, d := market("A", 2, 3, 4), market("B", 2, 3, 4), market("D", 2, 3, 4)
	ou1, ou2 := overUnder(1.5, 1.5, 2.5), overUnder(2.5, 1.9, 1.9)
	c.Classify(event, bookmaker, []marketodds.Market{a, b, ou1}, at(0))
	ws := c.Classify(event, bookmaker, []marketodds.Market{ou2, a, d, ou1, b}, at(1))
	mustVerdicts(t, ws,
		verdict{MarketID: "OU", Line: ptr(2.5), Changed: true},
		verdict{MarketID: "A"},
		verdict{MarketID: "D", Changed: true},
		verdict{MarketID: "OU", Line: ptr(1.5)},
		verdict{MarketID: "B"})
	b.Outcomes[2].Odds = 4.5
	ws = c.Classify(event, bookmaker, []marketodds.Market{b, ou1, d, a, ou2}, at(2))
	mustVerdicts(t, ws,
		verdict{MarketID: "B", Changed: true},
		verdict{MarketID: "OU", Line: ptr(1.5)},
		verdict{MarketID: "D"},
		verdict{MarketID: "A"},
		verdict{MarketID: "OU", Line: ptr(2.5)})
}

func TestDisappearance(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	ou := overUnder(2.5, 1.9, 1.9)
	btts := market("BTTS", 1.8, 2.0)
	btts.Line = nil
	zero := overUnder(0, 1.5, 2.5) // a line of 0, not nil: reproduced as such
	all := []marketodds.Market{market("1X2", 2, 3, 4), ou, btts, zero}
	c.Classify(event, bookmaker, all, at(0))

	// Gone: one write each, with the identity only, Unavailable and Changed.
	ws := c.Classify(event, bookmaker, all[:1], at(1))
	mustVerdicts(t, ws,
		verdict{MarketID: "1X2"},
		verdict{MarketID: "BTTS", Changed: true, Unavailable: true},
		verdict{MarketID: "OU", Line: ptr(0.0), Changed: true, Unavailable: true},
		verdict{MarketID: "OU", Line: ptr(2.5), Changed: true, Unavailable: true})
	for _, w := range ws[1:] {
		if w.EventID != event || w.Bookmaker != bookmaker || !w.CapturedAt.Equal(at(1)) {
			t.Errorf("disappearance %s: event %d, bookmaker %q, captured %v", w.MarketID, w.EventID, w.Bookmaker, w.CapturedAt)
		}
		if w.Name != "" || w.Outcomes != nil || w.Groups != nil || w.Handicap != nil {
			t.Errorf("disappearance %s carries data: %+v (the store keeps the current row's)", w.MarketID, w.Market)
		}
	}

	// Still gone: nothing more.
	ws = c.Classify(event, bookmaker, all[:1], at(2))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"})

	// Back, with the same data as before it left: a change all the same.
	ws = c.Classify(event, bookmaker, all, at(3))
	mustVerdicts(t, ws,
		verdict{MarketID: "1X2"},
		verdict{MarketID: "OU", Line: ptr(2.5), Changed: true},
		verdict{MarketID: "BTTS", Changed: true},
		verdict{MarketID: "OU", Line: ptr(0.0), Changed: true})
	ws = c.Classify(event, bookmaker, all, at(4))
	if got := changedIDs(ws); got != nil {
		t.Errorf("changed after the return: %v", got)
	}

	// An empty scrape means every market is gone.
	ws = c.Classify(event, bookmaker, nil, at(5))
	if len(ws) != 4 {
		t.Errorf("empty scrape: %d writes, want 4 disappearances", len(ws))
	}
	if c.Len() != 4 {
		t.Errorf("Len = %d, want 4: gone markets stay known", c.Len())
	}
}

// TestDisappearancePerBook: absence is judged per (event, bookmaker): a
// scrape of one bookmaker says nothing about another's markets.
func TestDisappearancePerBook(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	c.Classify(event, "betpawa", []marketodds.Market{market("1X2", 2, 3, 4)}, at(0))
	c.Classify(event, "sportybet", []marketodds.Market{market("1X2", 2, 3, 4)}, at(0))
	c.Classify(event+1, "betpawa", []marketodds.Market{market("1X2", 2, 3, 4)}, at(0))
	ws := c.Classify(event, "sportybet", []marketodds.Market{market("DC", 1.2, 1.3, 1.4)}, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "DC", Changed: true}, verdict{MarketID: "1X2", Changed: true, Unavailable: true})
	ws = c.Classify(event, "betpawa", []marketodds.Market{market("1X2", 2, 3, 4)}, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"})
	ws = c.Classify(event+1, "betpawa", []marketodds.Market{market("1X2", 2, 3, 4)}, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"})
}

// TestCompareAndUpdateIsOneStep: the replaced system updated its cache and
// then compared, so every market looked unchanged. Here, of many concurrent
// scrapes bringing the same new data, exactly one reports it changed.
func TestCompareAndUpdateIsOneStep(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	c.Classify(event, bookmaker, []marketodds.Market{market("1X2", 2, 3, 4)}, at(0))
	for round := range 50 {
		in := []marketodds.Market{market("1X2", 2, 3, 4+float64(round+1)/100)}
		var changed atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ws := c.Classify(event, bookmaker, in, at(round+1)); ws[0].Changed {
					changed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := changed.Load(); n != 1 {
			t.Fatalf("round %d: %d scrapes reported the change, want exactly 1", round, n)
		}
	}
}

// TestForget: a dropped batch leaves no gap. The next scrape reports the
// forgotten keys changed even though their data did not move again.
func TestForget(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	btts := market("BTTS", 1.8, 2.0)
	in := []marketodds.Market{market("1X2", 2, 3, 4), overUnder(2.5, 1.9, 1.9), btts}
	c.Classify(event, bookmaker, in, at(0))
	in[0].Outcomes[0].Odds = 2.1
	ws := c.Classify(event, bookmaker, in, at(1))
	if got := changedIDs(ws); !slices.Equal(got, []string{"1X2"}) {
		t.Fatalf("changed = %v, want [1X2]", got)
	}

	// The batch failed.
	keys := make([]marketodds.Key, len(ws))
	for i, w := range ws {
		keys[i] = w.Key()
	}
	c.Forget(keys...)
	c.Forget(marketodds.Key{EventID: 99, Bookmaker: bookmaker, MarketID: "1X2"}) // unknown: ignored
	c.Forget()

	ws = c.Classify(event, bookmaker, in, at(2))
	mustVerdicts(t, ws,
		verdict{MarketID: "1X2", Changed: true},
		verdict{MarketID: "OU", Line: ptr(2.5), Changed: true},
		verdict{MarketID: "BTTS", Changed: true})
	ws = c.Classify(event, bookmaker, in, at(3))
	if got := changedIDs(ws); got != nil {
		t.Errorf("changed after the resend: %v", got)
	}
}

// TestForgetThenGone: a forgotten market absent from the next scrape gets
// its disappearance write, once.
func TestForgetThenGone(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	in := []marketodds.Market{market("1X2", 2, 3, 4), market("DC", 1.2, 1.3, 1.4)}
	c.Classify(event, bookmaker, in, at(0))
	c.Forget(in[1].Key())
	ws := c.Classify(event, bookmaker, in[:1], at(1))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"}, verdict{MarketID: "DC", Changed: true, Unavailable: true})
	ws = c.Classify(event, bookmaker, in[:1], at(2))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"})
}

// TestForgetDisappearance: when the failed write was a disappearance, the
// next scrape that still lacks the market sends it again; one that has it
// back reports the return.
func TestForgetDisappearance(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	ou := overUnder(2.5, 1.9, 1.9)
	btts := market("BTTS", 1.8, 2.0)
	in := []marketodds.Market{market("1X2", 2, 3, 4), ou, btts}
	c.Classify(event, bookmaker, in, at(0))
	ws := c.Classify(event, bookmaker, in[:1], at(1))
	if len(ws) != 3 {
		t.Fatalf("%d writes, want 1 + 2 disappearances", len(ws))
	}
	c.Forget(ws[1].Key(), ws[2].Key())
	c.Forget(ws[1].Key()) // twice: the same as once

	ws = c.Classify(event, bookmaker, in[:1], at(2))
	mustVerdicts(t, ws,
		verdict{MarketID: "1X2"},
		verdict{MarketID: "BTTS", Changed: true, Unavailable: true},
		verdict{MarketID: "OU", Line: ptr(2.5), Changed: true, Unavailable: true})
	ws = c.Classify(event, bookmaker, in[:1], at(3))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"})

	// Forgotten again, and back in the next scrape: reported back, once.
	c.Forget(ou.Key())
	ws = c.Classify(event, bookmaker, in[:2], at(4))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"}, verdict{MarketID: "OU", Line: ptr(2.5), Changed: true})
	ws = c.Classify(event, bookmaker, in[:1], at(5))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"}, verdict{MarketID: "OU", Line: ptr(2.5), Changed: true, Unavailable: true})
	ws = c.Classify(event, bookmaker, in[:1], at(6))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"})
}

// TestForgetNilLine: the keys of markets with a nil line and a line of -0
// find their entry.
func TestForgetNilLine(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	m := market("BTTS", 1.8, 2.0)
	c.Classify(event, bookmaker, []marketodds.Market{m}, at(0))
	c.Forget(marketodds.Key{EventID: event, Bookmaker: bookmaker, MarketID: "BTTS", Line: negZero()})
	ws := c.Classify(event, bookmaker, []marketodds.Market{m}, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "BTTS", Changed: true})
}

func negZero() float64 {
	z := 0.0
	return -z
}

func TestForgetEvent(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	in := []marketodds.Market{market("1X2", 2, 3, 4), market("DC", 1.2, 1.3, 1.4)}
	c.Classify(event, "betpawa", in, at(0))
	c.Classify(event, "sportybet", in, at(0))
	c.Classify(event+1, "betpawa", in, at(0))
	if got := c.Len(); got != 6 {
		t.Fatalf("Len = %d, want 6", got)
	}
	c.ForgetEvent(event)
	c.ForgetEvent(12345) // unknown: nothing happens
	if got := c.Len(); got != 2 {
		t.Errorf("Len after ForgetEvent = %d, want 2", got)
	}
	// A forgotten event starts afresh: its markets are new, and none is
	// reported gone.
	ws := c.Classify(event, "betpawa", in[:1], at(1))
	mustVerdicts(t, ws, verdict{MarketID: "1X2", Changed: true})
	ws = c.Classify(event+1, "betpawa", in, at(1))
	if got := changedIDs(ws); got != nil {
		t.Errorf("other event changed: %v", got)
	}
}

// TestDuplicateKeys: the last occurrence of a key wins; it alone is
// returned, at its position, compared with the state before the call.
func TestDuplicateKeys(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	a := market("1X2", 2, 3, 4)
	b := market("1X2", 2.1, 3, 4)
	dc := market("DC", 1.2, 1.3, 1.4)
	c.Classify(event, bookmaker, []marketodds.Market{a, dc}, at(0))

	// b then a: a wins and equals the state before: unchanged.
	ws := c.Classify(event, bookmaker, []marketodds.Market{b, dc, a}, at(1))
	mustVerdicts(t, ws, verdict{MarketID: "DC"}, verdict{MarketID: "1X2"})
	if ws[1].Outcomes[0].Odds != 2 {
		t.Errorf("returned the first occurrence, want the last: %+v", ws[1].Outcomes)
	}

	// a then b: b wins and is a change.
	ws = c.Classify(event, bookmaker, []marketodds.Market{a, dc, b, dc}, at(2))
	mustVerdicts(t, ws, verdict{MarketID: "1X2", Changed: true}, verdict{MarketID: "DC"})
	if ws[0].Outcomes[0].Odds != 2.1 {
		t.Errorf("returned the first occurrence, want the last: %+v", ws[0].Outcomes)
	}
	ws = c.Classify(event, bookmaker, []marketodds.Market{b, dc}, at(3))
	if got := changedIDs(ws); got != nil {
		t.Errorf("changed = %v, want none: b was recorded", got)
	}

	// A nil line and a line of 0 are the same key: duplicates too.
	nilLine := overUnder(0, 1.9, 1.9)
	nilLine.Line = nil
	ws = c.Classify(event, bookmaker, []marketodds.Market{b, dc, overUnder(0, 1.9, 1.9), nilLine}, at(4))
	mustVerdicts(t, ws, verdict{MarketID: "1X2"}, verdict{MarketID: "DC"}, verdict{MarketID: "OU", Changed: true})
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
}

// TestIdentityFromArguments: the Writes carry the event and bookmaker
// Classify was given, whatever the markets say.
func TestIdentityFromArguments(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	m := market("1X2", 2, 3, 4)
	m.EventID, m.Bookmaker = 0, ""
	ws := c.Classify(event, bookmaker, []marketodds.Market{m}, at(0))
	if ws[0].EventID != event || ws[0].Bookmaker != bookmaker {
		t.Errorf("write identity = (%d, %q), want (%d, %q)", ws[0].EventID, ws[0].Bookmaker, event, bookmaker)
	}
	if m.EventID != 0 {
		t.Error("Classify modified its input")
	}
}

// TestManyMarkets covers scrapes larger than the on-stack buffers.
func TestManyMarkets(t *testing.T) {
	t.Parallel()
	for _, tol := range []float64{0, 0.01} {
		c := changedetect.New(&changedetect.Config{OddsTolerance: tol})
		var in []marketodds.Market
		for i := range 300 {
			m := market(fmt.Sprint("M", i), 2, 3, 4)
			for j := range 70 { // more outcomes than the odds buffer holds
				m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: fmt.Sprint("o", j), Odds: 1.5 + float64(j)})
			}
			in = append(in, m)
		}
		if ws := c.Classify(event, bookmaker, in, at(0)); len(changedIDs(ws)) != 300 {
			t.Fatalf("tol %v: %d changed, want 300", tol, len(changedIDs(ws)))
		}
		in[250].Outcomes[60].Odds = 100
		ws := c.Classify(event, bookmaker, in[1:], at(1))
		mustVerdicts(t, ws[249:250], verdict{MarketID: "M250", Changed: true})
		if got := changedIDs(ws); !slices.Equal(got, []string{"M250", "M0"}) {
			t.Errorf("tol %v: changed = %v, want [M250 M0]", tol, got)
		}
	}
}

func TestOddsTolerance(t *testing.T) {
	t.Parallel()
	c := changedetect.New(&changedetect.Config{OddsTolerance: 0.01})
	scrape := func(n int, m marketodds.Market) marketodds.Write {
		t.Helper()
		ws := c.Classify(event, bookmaker, []marketodds.Market{m}, at(n))
		if len(ws) != 1 {
			t.Fatalf("scrape %d: %d writes", n, len(ws))
		}
		return ws[0]
	}
	if w := scrape(0, market("1X2", 2, 3, 4)); !w.Changed {
		t.Error("new market unchanged")
	}
	// Within 1% of the reference (2, 3, 4), in any outcome order: unchanged,
	// and the Write carries the odds as scraped.
	m := market("1X2", 2.01, 2.98, 4.03)
	slices.Reverse(m.Outcomes)
	if w := scrape(1, m); w.Changed || w.Outcomes[2].Odds != 2.01 {
		t.Errorf("within tolerance: Changed = %v, odds %v", w.Changed, w.Outcomes)
	}
	// Drift is measured from the last reported change, not the last scrape:
	// 2.01 -> 2.03 is 1%, but 2 -> 2.03 is 1.5%.
	if w := scrape(2, market("1X2", 2.03, 3, 4)); !w.Changed {
		t.Error("drift past the tolerance not reported")
	}
	// The reference is now 2.03.
	if w := scrape(3, market("1X2", 2.04, 3, 4)); w.Changed {
		t.Error("0.5% from the new reference reported changed")
	}
	// Everything but the odds is exact.
	m = market("1X2", 2.03, 3, 4)
	m.Outcomes[1].Suspended = true
	if w := scrape(4, m); !w.Changed {
		t.Error("suspension within tolerance not reported")
	}
	m = market("1X2", 2.03, 3, 4)
	m.Name = "1X2 (full time)"
	if w := scrape(5, m); !w.Changed {
		t.Error("name change not reported")
	}
	// Gone and back is a change, whatever the odds.
	c.Classify(event, bookmaker, nil, at(6))
	if w := scrape(7, m); !w.Changed {
		t.Error("reappearance not reported")
	}
	c.Forget(m.Key())
	if w := scrape(8, m); !w.Changed {
		t.Error("forgotten market not reported")
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, tol := range []float64{-0.01, nan(), inf()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with OddsTolerance %v did not panic", tol)
				}
			}()
			changedetect.New(&changedetect.Config{OddsTolerance: tol})
		}()
	}
}

func nan() float64 { z := 0.0; return z / z }
func inf() float64 { z := 0.0; return 1 / z }

// TestConcurrentScrapers runs many scrapers on different events at once,
// and a few on the same ones, with Forget and ForgetEvent in between: the
// verdicts of each event must come out as if it had been scraped alone
// (run with -race).
func TestConcurrentScrapers(t *testing.T) {
	t.Parallel()
	c := changedetect.New(nil)
	const events, rounds = 200, 20
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for ev := int64(w); ev < events; ev += 8 {
				in := []marketodds.Market{market("1X2", 2, 3, 4), market("DC", 1.2, 1.3, 1.4), overUnder(2.5, 1.9, 1.9)}
				forgotten := -1
				for r := range rounds {
					change := rng.IntN(len(in))
					in[change].Outcomes[0].Odds += 0.01
					ws := c.Classify(ev, bookmaker, in, at(r))
					if r == 0 {
						continue
					}
					var want []string
					for i, m := range in {
						if i == change || i == forgotten {
							want = append(want, m.MarketID)
						}
					}
					if got := changedIDs(ws); !slices.Equal(got, want) {
						t.Errorf("event %d round %d: changed %v, want %v", ev, r, got, want)
						return
					}
					forgotten = -1
					if r%5 == 0 {
						forgotten = rng.IntN(len(in))
						c.Forget(ws[forgotten].Key()) // reported again next round
					}
				}
				// Another bookmaker of the same event, from another goroutine's
				// point of view: a different book, so no interference.
				c.Classify(ev, "sportybet", in, at(rounds))
			}
		})
	}
	// Readers and a forgetter of events nobody scrapes.
	wg.Go(func() {
		for i := range 1000 {
			_ = c.Len()
			c.ForgetEvent(int64(events + i))
		}
	})
	wg.Wait()
	if got, want := c.Len(), events*3*2; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
}

// TestUnchangedDoesNotAllocate: beyond the returned slice, a scrape of
// known, unchanged markets allocates nothing.
func TestUnchangedDoesNotAllocate(t *testing.T) {
	c := changedetect.New(nil)
	var in []marketodds.Market
	for i := range 50 {
		in = append(in, market(fmt.Sprint("M", i), 2, 3, 4))
	}
	c.Classify(event, bookmaker, in, at(0))
	if n := testing.AllocsPerRun(100, func() { c.Classify(event, bookmaker, in, at(1)) }); n != 1 {
		t.Errorf("%v allocations per Classify, want 1 (the returned slice)", n)
	}
}
