package changedetect_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// newStore returns a migrated store in a schema of the test's own.
func newStore(t *testing.T) *marketodds.Store {
	t.Helper()
	s, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: pgtest.Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// write writes the writes in one batch and fails the test on any rejection.
func write(t *testing.T, s *marketodds.Store, ws []marketodds.Write) {
	t.Helper()
	res, err := s.WriteMarketBatch(context.Background(), marketodds.Batch{Writes: ws})
	if err != nil {
		t.Fatalf("WriteMarketBatch: %v", err)
	}
	for _, r := range res.Rejected {
		t.Errorf("rejected %v: %v", r.Key, r.Err)
	}
}

// awkwardMarkets returns markets whose data is hard to carry through
// PostgreSQL unchanged: odds that print with 17 digits, a nil line next to
// lines of 0 and -0, empty and nil groups, handicaps with zero values or an
// empty type, strings that need escaping in JSON and in array literals.
func awkwardMarkets(eventID int64, bookmaker string) []marketodds.Market {
	mk := func(id string, line *float64, outs ...marketodds.Outcome) marketodds.Market {
		return marketodds.Market{EventID: eventID, Bookmaker: bookmaker, MarketID: id, Line: line,
			Name: "Market " + id, Outcomes: outs, Groups: []string{"popular", "main"}}
	}
	o := func(name string, odds float64) marketodds.Outcome { return marketodds.Outcome{Name: name, Odds: odds} }

	ms := []marketodds.Market{
		mk("1X2", nil, o("1", 2.1), marketodds.Outcome{Name: "X", Odds: 3.3, Suspended: true}, o("2", 3.75)),
		mk("OU", ptr(2.5), o("Over", 1.0000000000000002), o("Under", 1+1.0/3)),
		mk("OU", ptr(0.0), o("Over", 1.01), o("Under", 17.95)),
		mk("OU", ptr(-1.25), o("Over", 1e10), o("Under", 2.675)),
		mk("AH", ptr(-0.25), o("Home", 1.95), o("Away", 1.85)),
		mk("EH", nil, o("Home", 1.5), o("Away", 2.5)),
		mk("BTTS", nil, o("Yes", 1.8), o("No", 1.9)),
		mk("UNI", nil, o("Über", 1.7), o("Ünter ⚽", 2.2)),
		mk("ESC", nil, o(`say "hi"`, 1.6), o("back\\slash\n\ttab", 2.4)),
	}
	ms[4].Handicap = &marketodds.Handicap{Type: "asian", Home: -0.25, Away: 0.25}
	ms[5].Handicap = &marketodds.Handicap{} // empty type, zero values: not nil
	ms[6].Groups = nil
	ms[7].Groups = []string{}
	ms[7].Name = "Über/Unter 1,5 — ⚽"
	ms[8].Groups = []string{`quote"d`, `back\slash`, "comma,group", "{brace}", "sp ace", "NULL"}
	ms[8].Name = `Name with "quotes" and \backslash`
	return ms
}

// permuted returns a deep copy of ms with every market's outcomes and groups
// in reverse order.
func permuted(ms []marketodds.Market) []marketodds.Market {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Outcomes = slices.Clone(out[i].Outcomes)
		slices.Reverse(out[i].Outcomes)
		out[i].Groups = slices.Clone(out[i].Groups)
		slices.Reverse(out[i].Groups)
	}
	return out
}

// TestWarmRoundTrip: the fingerprint of a market survives a round trip
// through market_odds_current exactly. After a restart (a new classifier,
// warmed), the first scrape of unchanged markets reports none changed, and
// markets gone before the restart are not reported gone again.
func TestWarmRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  *changedetect.Config
	}{
		{"exact", nil},
		{"tolerance", &changedetect.Config{OddsTolerance: 0.01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t)
			ctx := context.Background()
			const ev = 777
			books := []string{"betpawa", "sportybet"}

			before := changedetect.New(tc.cfg)
			for _, bk := range books {
				ms := awkwardMarkets(ev, bk)
				write(t, store, before.Classify(ev, bk, ms, at(0)))
				// BTTS disappears: its row gets unavailable_at.
				ws := before.Classify(ev, bk, slices.DeleteFunc(ms, func(m marketodds.Market) bool {
					return m.MarketID == "BTTS"
				}), at(1))
				if got := changedIDs(ws); !slices.Equal(got, []string{"BTTS"}) {
					t.Fatalf("%s: changed %v, want the disappearance of BTTS", bk, got)
				}
				write(t, store, ws)
			}

			after := changedetect.New(tc.cfg)
			n, err := after.Warm(ctx, store, at(0))
			if err != nil {
				t.Fatal(err)
			}
			if want := 2 * len(awkwardMarkets(ev, "")); n != want || after.Len() != want {
				t.Errorf("Warm loaded %d, Len %d, want %d", n, after.Len(), want)
			}

			for _, bk := range books {
				ms := slices.DeleteFunc(awkwardMarkets(ev, bk), func(m marketodds.Market) bool {
					return m.MarketID == "BTTS"
				})
				ws := after.Classify(ev, bk, permuted(ms), at(2))
				if got := changedIDs(ws); got != nil {
					t.Errorf("%s: first scrape after Warm changed %v, want none", bk, got)
				}
				if len(ws) != len(ms) {
					t.Errorf("%s: %d writes, want %d (no disappearance of BTTS again)", bk, len(ws), len(ms))
				}
				// The gone market's return is a change; a real change is one.
				ms = awkwardMarkets(ev, bk)
				ms[0].Outcomes[0].Odds = 2.5
				ws = after.Classify(ev, bk, ms, at(3))
				if got := changedIDs(ws); !slices.Equal(got, []string{"1X2", "BTTS"}) {
					t.Errorf("%s: changed %v, want [1X2 BTTS]", bk, got)
				}
			}
		})
	}
}

// TestWarmThenGone: a market warmed as available and absent from the first
// scrape after the restart is reported gone, with its line as stored.
func TestWarmThenGone(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	const ev = 778
	ms := awkwardMarkets(ev, "betpawa")
	write(t, store, changedetect.New(nil).Classify(ev, "betpawa", ms, at(0)))

	c := changedetect.New(nil)
	if _, err := c.Warm(context.Background(), store, at(0)); err != nil {
		t.Fatal(err)
	}
	ws := c.Classify(ev, "betpawa", ms[:1], at(1))
	mustVerdicts(t, ws,
		verdict{MarketID: "1X2"},
		verdict{MarketID: "AH", Line: ptr(-0.25), Changed: true, Unavailable: true},
		verdict{MarketID: "BTTS", Changed: true, Unavailable: true},
		verdict{MarketID: "EH", Changed: true, Unavailable: true},
		verdict{MarketID: "ESC", Changed: true, Unavailable: true},
		verdict{MarketID: "OU", Line: ptr(-1.25), Changed: true, Unavailable: true},
		verdict{MarketID: "OU", Line: ptr(0.0), Changed: true, Unavailable: true},
		verdict{MarketID: "OU", Line: ptr(2.5), Changed: true, Unavailable: true},
		verdict{MarketID: "UNI", Changed: true, Unavailable: true})
	// The store takes the disappearances: they carry no data.
	write(t, store, ws)
	cur, err := store.CurrentMarkets(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cur {
		if gone := m.UnavailableAt != nil; gone != (m.MarketID != "1X2") {
			t.Errorf("%v: unavailable_at = %v", m.Key(), m.UnavailableAt)
		}
		if len(m.Outcomes) == 0 {
			t.Errorf("%v: the disappearance wiped the row's outcomes", m.Key())
		}
	}
}

// TestWarmSince: rows last confirmed before since are not loaded.
func TestWarmSince(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	c := changedetect.New(nil)
	write(t, store, c.Classify(1, "betpawa", awkwardMarkets(1, "betpawa")[:2], at(0)))
	write(t, store, c.Classify(2, "betpawa", awkwardMarkets(2, "betpawa")[:3], at(5)))

	c = changedetect.New(nil)
	n, err := c.Warm(context.Background(), store, at(5))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("Warm loaded %d markets, want the 3 of event 2", n)
	}
	if got := changedIDs(c.Classify(1, "betpawa", awkwardMarkets(1, "betpawa")[:2], at(6))); len(got) != 2 {
		t.Errorf("event 1 (not loaded): changed %v, want both", got)
	}
}

// TestWarmLeavesKnownKeys: what the classifier has seen itself is newer than
// the database: Warm does not overwrite it.
func TestWarmLeavesKnownKeys(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	const ev = 779
	ms := awkwardMarkets(ev, "betpawa")
	write(t, store, changedetect.New(nil).Classify(ev, "betpawa", ms, at(0)))

	c := changedetect.New(nil)
	newer := awkwardMarkets(ev, "betpawa")[:1]
	newer[0].Outcomes[0].Odds = 9
	c.Classify(ev, "betpawa", newer, at(1)) // not written yet
	n, err := c.Warm(context.Background(), store, at(0))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms)-1 {
		t.Errorf("Warm loaded %d, want %d (all but the known key)", n, len(ms)-1)
	}
	ms[0] = newer[0]
	if got := changedIDs(c.Classify(ev, "betpawa", ms, at(2))); got != nil {
		t.Errorf("changed %v: Warm overwrote the newer state", got)
	}
}

func TestWarmError(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := changedetect.New(nil).Warm(ctx, store, time.Time{})
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("Warm = %d, %v; want 0, context.Canceled", n, err)
	}
}

// TestWarmNegativeZeroLine: a line stored as -0 is the key line 0.
func TestWarmNegativeZeroLine(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	const ev = 780
	m := awkwardMarkets(ev, "betpawa")[2] // OU, line 0
	m.Line = ptr(math.Copysign(0, -1))
	write(t, store, changedetect.New(nil).Classify(ev, "betpawa", []marketodds.Market{m}, at(0)))
	c := changedetect.New(nil)
	if _, err := c.Warm(context.Background(), store, at(0)); err != nil {
		t.Fatal(err)
	}
	m.Line = ptr(0.0)
	if got := changedIDs(c.Classify(ev, "betpawa", []marketodds.Market{m}, at(1))); got != nil {
		t.Errorf("changed %v: -0 and 0 lines differ after the round trip", got)
	}
}
