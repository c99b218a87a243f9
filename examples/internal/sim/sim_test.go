package sim

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oddsledger/oddsledger/marketodds"
)

var simStart = time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)

func testSim(events int, change float64, seed uint64) *Simulator {
	return New(Config{Events: events, ChangeRate: change, Interval: 5 * time.Minute,
		Horizon: 72 * time.Hour, Seed: seed, Start: simStart})
}

// scrapeAll advances the simulator one cycle and scrapes every book.
func scrapeAll(s *Simulator) (CycleEvents, map[string][]marketodds.Market) {
	ce := s.Advance()
	out := make(map[string][]marketodds.Market)
	for _, e := range s.Events() {
		for b, bk := range Bookmakers {
			out[fmt.Sprintf("%d/%s", e.ID, bk.Slug)] = s.Scrape(e, b)
		}
	}
	return ce, out
}

func TestSimulatorDeterministic(t *testing.T) {
	t.Parallel()
	a, c := testSim(30, 0.1, 7), testSim(30, 0.1, 8)
	// Start only shifts time: a different one plays the same scrapes.
	b := New(Config{Events: 30, ChangeRate: 0.1, Interval: 5 * time.Minute, Horizon: 72 * time.Hour,
		Seed: 7, Start: simStart.Add(time.Hour + 2*time.Minute + 33*time.Second)})
	differs := false
	for cycle := 1; cycle <= 5; cycle++ {
		ceA, sa := scrapeAll(a)
		ceB, sb := scrapeAll(b)
		_, sc := scrapeAll(c)
		if !reflect.DeepEqual(sa, sb) {
			t.Fatalf("cycle %d: same seed, different scrapes (-a +b):\n%s", cycle, cmp.Diff(sa, sb))
		}
		if ceA.Changes != ceB.Changes || len(ceA.Finished) != len(ceB.Finished) {
			t.Fatalf("cycle %d: same seed, different cycle events: %+v vs %+v", cycle, ceA, ceB)
		}
		differs = differs || !reflect.DeepEqual(sa, sc)
	}
	if !differs {
		t.Error("seeds 7 and 8 played the same scrapes")
	}
}

// sameMarket is reflect.DeepEqual for markets, at a fraction of the cost.
func sameMarket(a, b *marketodds.Market) bool {
	return a.Key() == b.Key() && a.Name == b.Name && slices.Equal(a.Outcomes, b.Outcomes) &&
		slices.Equal(a.Groups, b.Groups) && (a.Line == nil) == (b.Line == nil) &&
		(a.Handicap == nil) == (b.Handicap == nil) && (a.Handicap == nil || *a.Handicap == *b.Handicap)
}

// TestSimulatorChangeRate observes the scrapes from outside, as the
// classifier does, and checks that markets change at the configured rate,
// uniformly: each change the simulator makes is visible in the next scrape.
func TestSimulatorChangeRate(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0, 0.01, 0.05, 0.2} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			t.Parallel()
			s := New(Config{Events: 100, ChangeRate: rate, Interval: 5 * time.Minute,
				Horizon: 10000 * time.Hour, Seed: 3, Start: simStart}) // no match finishes
			_, prev := scrapeAll(s)
			known := make(map[marketodds.Key]marketodds.Market) // last seen state, per market ever seen
			gone := make(map[marketodds.Key]bool)
			for _, ms := range prev {
				for _, m := range ms {
					known[m.Key()] = m
				}
			}
			var observed, trials, applied int
			for cycle := 2; cycle <= 6; cycle++ {
				ce, cur := scrapeAll(s)
				applied += ce.Changes
				trials += len(known)
				present := make(map[marketodds.Key]bool)
				for _, ms := range cur {
					for _, m := range ms {
						k := m.Key()
						present[k] = true
						old, ok := known[k]
						if !ok {
							t.Fatalf("market %v appeared that was never offered before", k)
						}
						if gone[k] || !sameMarket(&old, &m) {
							observed++
						}
						known[k], gone[k] = m, false
					}
				}
				for k := range known {
					if !present[k] && !gone[k] {
						observed++
						gone[k] = true
					}
				}
			}
			if observed != applied {
				t.Errorf("observed %d changes, the simulator made %d", observed, applied)
			}
			got := float64(observed) / float64(trials)
			// ~73k trials: the standard error at 5% is 0.08 points.
			if tol := 4*math.Sqrt(rate*(1-rate)/float64(trials)) + 1e-9; math.Abs(got-rate) > tol {
				t.Errorf("change rate %.4f, want %.4f ± %.4f", got, rate, tol)
			}
			t.Logf("rate %v: %d changes in %d market-cycles = %.4f", rate, observed, trials, got)
		})
	}
}

func TestSimulatorMarkets(t *testing.T) {
	t.Parallel()
	s := testSim(50, 0.05, 1)
	s.Advance()
	if len(catalogue) != 50 {
		t.Errorf("catalogue has %d markets, want 50", len(catalogue))
	}
	var lines []float64
	for _, d := range catalogue {
		if d.id == "5000" {
			lines = append(lines, *d.line)
		}
	}
	if want := []float64{0.5, 1.5, 2.5, 3.5, 4.5, 5.5}; !slices.Equal(lines, want) {
		t.Errorf("over/under lines %v, want %v", lines, want)
	}
	total, books := 0, 0
	for _, e := range s.Events() {
		for b := range Bookmakers {
			ms := s.Scrape(e, b)
			books++
			total += len(ms)
			if len(ms) < 40 || len(ms) > 50 {
				t.Errorf("event %d book %d: %d markets, want ~50", e.ID, b, len(ms))
			}
			keys := make(map[marketodds.Key]bool)
			for _, m := range ms {
				w := marketodds.Write{Market: m, CapturedAt: simStart}
				if err := w.Validate(); err != nil {
					t.Fatal(err)
				}
				if keys[m.Key()] {
					t.Fatalf("duplicate key %v", m.Key())
				}
				keys[m.Key()] = true
				switch m.MarketID {
				case "3774", "4724": // Asian and European handicaps
					if m.Handicap == nil || m.Line == nil || m.Handicap.Home != *m.Line || m.Handicap.Away != -*m.Line {
						t.Errorf("handicap market %s %q: line %v, handicap %+v", m.MarketID, m.Name, m.Line, m.Handicap)
					}
				case "3743": // 1X2: a margin of a few percent over fair odds
					over := 0.0
					for _, o := range m.Outcomes {
						over += 1 / o.Odds
					}
					if over < 1.02 || over > 1.12 {
						t.Errorf("1X2 of event %d: overround %.3f, want the bookmaker's margin", e.ID, over)
					}
				}
				if m.Handicap != nil && m.MarketID != "3774" && m.MarketID != "4724" {
					t.Errorf("market %s %q has a handicap", m.MarketID, m.Name)
				}
			}
		}
	}
	if avg := float64(total) / float64(books); avg < 47 || avg > 50 {
		t.Errorf("%.1f markets per book on average, want ~48.5", avg)
	}
}

func TestSimulatorEventsFinish(t *testing.T) {
	t.Parallel()
	s := New(Config{Events: 20, ChangeRate: 0.05, Interval: 10 * time.Minute, Horizon: time.Hour,
		Seed: 1, Start: simStart})
	s.Advance()
	finished := 0
	maxID := s.Events()[len(s.Events())-1].ID
	for range 12 {
		ce := s.Advance()
		finished += len(ce.Finished)
		if ce.Added != len(ce.Finished) || len(s.Events()) != 20 {
			t.Fatalf("%d finished, %d added, %d events: want as many added, 20 events", len(ce.Finished), ce.Added, len(s.Events()))
		}
		for _, id := range ce.Finished {
			for _, e := range s.Events() {
				if e.ID == id {
					t.Fatalf("finished event %d still listed", id)
				}
			}
		}
		for _, e := range s.Events() {
			if s.Clock().After(e.Kickoff.Add(MatchLength)) {
				t.Errorf("event %d is over (kick-off %s) but still listed at %s", e.ID, e.Kickoff, s.Clock())
			}
			if e.fresh && e.ID <= maxID {
				t.Errorf("new event reuses id %d", e.ID)
			}
		}
	}
	if finished < 5 {
		t.Errorf("%d events finished in 2 hours, with kick-offs spread over 1 hour", finished)
	}
}

// TestSimulatorScrapesImmutable: a scrape's markets may sit in a queued batch
// while the simulation goes on; later changes must not reach them.
func TestSimulatorScrapesImmutable(t *testing.T) {
	t.Parallel()
	s := testSim(10, 0.5, 2)
	_, first := scrapeAll(s)
	snapshot := make(map[string][]marketodds.Market)
	for k, ms := range first {
		c := slices.Clone(ms)
		for i := range c {
			c[i].Outcomes = slices.Clone(c[i].Outcomes)
		}
		snapshot[k] = c
	}
	for range 5 {
		scrapeAll(s)
	}
	if diff := cmp.Diff(snapshot, first); diff != "" {
		t.Errorf("later cycles modified an earlier scrape (-then +now):\n%s", diff)
	}
}

// TestSimulatorTeams: every event has two different teams, the same ones
// for the same seed, and naming them does not touch the odds' streams.
func TestSimulatorTeams(t *testing.T) {
	t.Parallel()
	a, b := testSim(40, 0.05, 3), testSim(40, 0.05, 3)
	a.Advance()
	b.Advance()
	pairs := make(map[string]bool)
	for i, e := range a.Events() {
		if e.Home == "" || e.Away == "" || e.Home == e.Away {
			t.Errorf("event %d: %q v %q", e.ID, e.Home, e.Away)
		}
		if o := b.Events()[i]; o.Home != e.Home || o.Away != e.Away {
			t.Errorf("event %d: %q v %q, then %q v %q with the same seed", e.ID, e.Home, e.Away, o.Home, o.Away)
		}
		pairs[e.Home+" v "+e.Away] = true
	}
	if len(pairs) < 30 {
		t.Errorf("%d distinct fixtures among 40 events", len(pairs))
	}
}
