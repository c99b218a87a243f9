package marketodds_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The workload of BenchmarkCycle: a deterministic scrape of football
// markets, cycle after cycle.
//
//   - events x 3 bookmakers x 50 markets; the 50 markets of an (event,
//     bookmaker) are the templates below: 1X2, double chance, BTTS,
//     over/under at 7+3+2+3+3 lines, Asian handicap at 11 lines, European
//     handicap at 4 lines, ... with 2 or 3 outcomes each.
//   - cycle 1 is a first load: every market is new, so every write is
//     Changed (a classifier reports a market it never saw as a change).
//   - every later cycle re-reads every market; a market changes with
//     probability ODDSLEDGER_BENCH_CHANGE (default 5%), independently and
//     uniformly over all markets (no hot events). A changed market gets new
//     odds and Changed=true; the others carry the same data, Changed=false.
//   - cycle k starts at benchBase + (k-1)*benchCycleEvery; the 50 markets of
//     one (event, bookmaker) share one CapturedAt (one page scrape), and the
//     scrapes of a cycle are spread over its first 80%.
//   - writes are in event, bookmaker, template order; batches are
//     consecutive runs of ODDSLEDGER_BENCH_BATCH writes.
//
// Everything comes from math/rand/v2's PCG with fixed seeds: the same
// settings give the same rows on every run and machine.

// benchBase is the start of cycle 1. All cycles of a run fall in one day
// (one history partition), as a day of scraping would.
var benchBase = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)

const (
	benchCycleEvery = 5 * time.Minute
	benchSeed       = 0x0dd51ed6e2
)

var benchBookmakers = []string{"betpawa", "sportybet", "bet9ja"}

// benchTemplate is one market of an event's page.
type benchTemplate struct {
	id, name string
	line     *float64
	outcomes []string
	groups   []string
	handicap *marketodds.Handicap
}

// benchTemplates returns the 50 markets of an (event, bookmaker).
func benchTemplates() []benchTemplate {
	var ts []benchTemplate
	add := func(id, name string, outcomes, groups []string) {
		ts = append(ts, benchTemplate{id: id, name: name, outcomes: outcomes, groups: groups})
	}
	addLines := func(id, name string, outcomes, groups []string, handicap string, lines ...float64) {
		for _, l := range lines {
			t := benchTemplate{id: id, name: name, line: &l, outcomes: outcomes, groups: groups}
			if handicap != "" {
				t.handicap = &marketodds.Handicap{Type: handicap, Home: l, Away: -l}
			}
			ts = append(ts, t)
		}
	}
	oneX2 := []string{"1", "X", "2"}
	yesNo := []string{"Yes", "No"}
	overUnder := []string{"Over", "Under"}
	add("3743", "1X2 | Full Time", oneX2, []string{"popular", "main"})
	add("3744", "1X2 | 1st Half", oneX2, []string{"halves"})
	add("3745", "1X2 | 2nd Half", oneX2, []string{"halves"})
	add("4693", "Double Chance | Full Time", []string{"1X", "12", "X2"}, []string{"popular", "main"})
	add("4694", "Double Chance | 1st Half", []string{"1X", "12", "X2"}, []string{"halves"})
	add("4703", "Draw No Bet | Full Time", []string{"1", "2"}, []string{"main"})
	add("3795", "Both Teams To Score | Full Time", yesNo, []string{"popular", "goals"})
	add("3796", "Both Teams To Score | 1st Half", yesNo, []string{"goals", "halves"})
	add("3797", "Both Teams To Score | 2nd Half", yesNo, []string{"goals", "halves"})
	add("4716", "Odd/Even | Full Time", []string{"Odd", "Even"}, []string{"goals"})
	add("4717", "Odd/Even | 1st Half", []string{"Odd", "Even"}, []string{"goals", "halves"})
	add("4718", "Highest Scoring Half", []string{"1st", "2nd", "Equal"}, []string{"halves"})
	add("4719", "First Team To Score", []string{"1", "None", "2"}, []string{"main"})
	add("4720", "Clean Sheet | Home", yesNo, []string{"team"})
	add("4721", "Clean Sheet | Away", yesNo, []string{"team"})
	add("4722", "Win To Nil | Home", yesNo, []string{"team"})
	add("4723", "Win To Nil | Away", yesNo, []string{"team"})
	addLines("5000", "Over/Under | Full Time", overUnder, []string{"popular", "goals"}, "", 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5)
	addLines("5006", "Over/Under | 1st Half", overUnder, []string{"goals", "halves"}, "", 0.5, 1.5, 2.5)
	addLines("5007", "Over/Under | 2nd Half", overUnder, []string{"goals", "halves"}, "", 0.5, 1.5)
	addLines("5010", "Home Team Over/Under", overUnder, []string{"goals", "team"}, "", 0.5, 1.5, 2.5)
	addLines("5011", "Away Team Over/Under", overUnder, []string{"goals", "team"}, "", 0.5, 1.5, 2.5)
	addLines("3774", "Asian Handicap | Full Time", []string{"1", "2"}, []string{"handicap"}, "asian",
		-2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5)
	addLines("4664", "European Handicap | Full Time", oneX2, []string{"handicap"}, "european", -2, -1, 1, 2)
	if len(ts) != 50 {
		panic("benchTemplates: want 50 markets, have " + strconv.Itoa(len(ts)))
	}
	return ts
}

// benchMarket is one market of the workload and its current odds.
type benchMarket struct {
	event    int64
	book     string
	tpl      *benchTemplate
	outcomes []marketodds.Outcome // immutable once set: writes share it
}

// benchWorkload generates the cycles, one after the other.
type benchWorkload struct {
	change  float64
	groups  int // (event, bookmaker) pairs
	markets []benchMarket
	cycle   int // the last cycle generated
}

func newBenchWorkload(events int, change float64) *benchWorkload {
	tpls := benchTemplates()
	w := &benchWorkload{change: change, groups: events * len(benchBookmakers)}
	w.markets = make([]benchMarket, 0, w.groups*len(tpls))
	for e := range events {
		for _, book := range benchBookmakers {
			for i := range tpls {
				w.markets = append(w.markets, benchMarket{event: 1_000_000 + int64(e), book: book, tpl: &tpls[i]})
			}
		}
	}
	return w
}

// marketsPerGroup is the number of markets of one (event, bookmaker).
const marketsPerGroup = 50

// cycleStart is when cycle k (1-based) starts.
func cycleStart(k int) time.Time { return benchBase.Add(time.Duration(k-1) * benchCycleEvery) }

// scrapeTime is when market i is scraped in cycle k.
func (w *benchWorkload) scrapeTime(k, i int) time.Time {
	g := i / marketsPerGroup
	spread := benchCycleEvery * 8 / 10
	return cycleStart(k).Add(spread * time.Duration(g) / time.Duration(w.groups)).Truncate(time.Microsecond)
}

// next generates the next cycle's writes.
func (w *benchWorkload) next() []marketodds.Write {
	w.cycle++
	k := w.cycle
	rng := rand.New(rand.NewPCG(benchSeed, uint64(k)))
	ws := make([]marketodds.Write, len(w.markets))
	for i := range w.markets {
		m := &w.markets[i]
		changed := k == 1 || rng.Float64() < w.change
		if changed {
			if k == 1 {
				m.outcomes = freshOdds(rng, m.tpl.outcomes)
			} else {
				m.outcomes = moveOdds(rng, m.outcomes)
			}
		}
		ws[i] = marketodds.Write{
			Market: marketodds.Market{
				EventID: m.event, Bookmaker: m.book, MarketID: m.tpl.id, Line: m.tpl.line, Name: m.tpl.name,
				Outcomes: m.outcomes, Groups: m.tpl.groups, Handicap: m.tpl.handicap,
			},
			CapturedAt: w.scrapeTime(k, i),
			Changed:    changed,
		}
	}
	return ws
}

// changesOnly returns, for every changed write of ws, a write of the same
// market with new odds half a cycle later: a scrape in which only changes
// are sent. It does not touch the workload's state.
func changesOnly(ws []marketodds.Write) []marketodds.Write {
	rng := rand.New(rand.NewPCG(benchSeed, 1<<32))
	var out []marketodds.Write
	for _, w := range ws {
		if !w.Changed {
			continue
		}
		w.Outcomes = moveOdds(rng, w.Outcomes)
		w.CapturedAt = w.CapturedAt.Add(benchCycleEvery / 2)
		out = append(out, w)
	}
	return out
}

// freshOdds prices a market: random probabilities with a 6% margin.
func freshOdds(rng *rand.Rand, names []string) []marketodds.Outcome {
	ps := make([]float64, len(names))
	var sum float64
	for i := range ps {
		ps[i] = 0.05 + rng.Float64()
		sum += ps[i]
	}
	os := make([]marketodds.Outcome, len(names))
	for i, n := range names {
		os[i] = marketodds.Outcome{Name: n, Odds: clampOdds(sum / (ps[i] * 1.06))}
	}
	return os
}

// moveOdds returns a copy of os with every price moved a little (log-normal,
// sigma 5%), and at least one price different.
func moveOdds(rng *rand.Rand, os []marketodds.Outcome) []marketodds.Outcome {
	out := make([]marketodds.Outcome, len(os))
	same := true
	for i, o := range os {
		o.Odds = clampOdds(o.Odds * math.Exp(rng.NormFloat64()*0.05))
		same = same && o.Odds == os[i].Odds
		out[i] = o
	}
	if same {
		if out[0].Odds < 50 {
			out[0].Odds = math.Round(out[0].Odds*100+1) / 100
		} else {
			out[0].Odds = math.Round(out[0].Odds*100-1) / 100
		}
	}
	return out
}

// clampOdds rounds to two decimals within [1.01, 100].
func clampOdds(o float64) float64 {
	return math.Min(100, math.Max(1.01, math.Round(o*100)/100))
}

// benchBatches splits ws into consecutive batches of at most size writes.
func benchBatches(ws []marketodds.Write, size int) [][]marketodds.Write {
	var bs [][]marketodds.Write
	for lo := 0; lo < len(ws); lo += size {
		bs = append(bs, ws[lo:min(lo+size, len(ws))])
	}
	return bs
}

// benchOutcomesJSON encodes outcomes as the jsonb text the library stores,
// for the baseline and the COPY (each way pays for its own encoding).
func benchOutcomesJSON(buf []byte, os []marketodds.Outcome) []byte {
	buf = append(buf, '[')
	for i, o := range os {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"name":`...)
		buf = strconv.AppendQuoteToASCII(buf, o.Name) // the workload's names are plain ASCII
		buf = append(buf, `,"odds":`...)
		buf = strconv.AppendFloat(buf, o.Odds, 'g', -1, 64)
		buf = append(buf, `,"suspended":`...)
		buf = strconv.AppendBool(buf, o.Suspended)
		buf = append(buf, '}')
	}
	return append(buf, ']')
}

// asciiOnly reports whether every outcome name of the workload is plain
// printable ASCII, which benchOutcomesJSON's quoting relies on.
func asciiOnly(ws []marketodds.Write) bool {
	for _, w := range ws {
		for _, o := range w.Outcomes {
			for _, r := range o.Name {
				if r >= utf8.RuneSelf || r < 0x20 || r == '\\' || r == '"' {
					return false
				}
			}
		}
	}
	return true
}

func benchHandicap(h *marketodds.Handicap) (*string, *float64, *float64) {
	if h == nil {
		return nil, nil, nil
	}
	return &h.Type, &h.Home, &h.Away
}
