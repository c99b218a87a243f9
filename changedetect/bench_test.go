package changedetect_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/marketodds"
)

// benchMarkets returns a realistic scrape of one event: n markets of 2 or 3
// outcomes with names, groups and, for some, a line or a handicap. Strings
// are freshly allocated, as a JSON decoder would make them. The outcomes,
// lines and handicaps of the event share one backing array each, so that
// a benchmark holding many scrapes does not make the garbage collector's
// marking of its own fixture (hundreds of thousands of small objects that a
// real scraper drops after each scrape) the bulk of what it measures.
func benchMarkets(rng *rand.Rand, eventID int64, n int) []marketodds.Market {
	ms := make([]marketodds.Market, n)
	outcomes := make([]marketodds.Outcome, 0, 3*n)
	lines := make([]float64, n)
	handicaps := make([]marketodds.Handicap, n)
	groups := []string{string([]byte("popular")), "main"}
	for i := range ms {
		m := &ms[i]
		m.EventID, m.Bookmaker = eventID, "betpawa"
		m.MarketID = strconv.Itoa(3700 + i/4)
		m.Name = fmt.Sprintf("Market type %d - full time", i/4)
		m.Groups = groups
		outs := []string{"1", "X", "2"}
		switch i % 4 {
		case 1, 2:
			lines[i] = 0.5 + float64(i%4)
			m.Line = &lines[i]
			outs = []string{"Over", "Under"}
		case 3:
			lines[i] = -1.5
			m.Line = &lines[i]
			handicaps[i] = marketodds.Handicap{Type: "asian", Home: -1.5, Away: 1.5}
			m.Handicap = &handicaps[i]
			outs = []string{"Home", "Away"}
		}
		start := len(outcomes)
		for _, o := range outs {
			outcomes = append(outcomes, marketodds.Outcome{Name: o, Odds: 1.2 + 5*rng.Float64()})
		}
		m.Outcomes = outcomes[start:len(outcomes):len(outcomes)]
	}
	return ms
}

// BenchmarkClassify measures the steady state of a scraper: events of 50
// markets re-scraped again and again, about 5% of markets changed per scrape.
// One op is one Classify call (one event, one bookmaker), over 1,000 events
// in turn.
//
// cached is the number of markets the classifier holds: the 50,000 of those
// 1,000 events alone, or 1,000,000 (19,000 more events, scraped once at
// setup), the scale of a real host. The second is slower in cache misses
// but cheaper in garbage collection: the cache holds no pointer, so it
// makes the heap bigger (fewer GC cycles) without making a cycle longer.
func BenchmarkClassify(b *testing.B) {
	for _, bc := range []struct {
		name   string
		cfg    *changedetect.Config
		cached int
	}{
		{"exact/cached=50k", nil, 50_000},
		{"exact/cached=1M", nil, 1_000_000},
		{"tolerance/cached=50k", &changedetect.Config{OddsTolerance: 0.01}, 50_000},
		{"tolerance/cached=1M", &changedetect.Config{OddsTolerance: 0.01}, 1_000_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const events, perEvent, rounds = 1000, 50, 16
			stride := bc.cached / perEvent / events
			rng := rand.New(rand.NewPCG(1, 2))
			c := changedetect.New(bc.cfg)
			// One scrape per event, and for every round the ~5% of its
			// markets whose odds move in that round. The odds are moved in
			// place, so the benchmark holds one copy of its data. The
			// benchmarked events are spread among the others, so that their
			// books are too.
			scrapes := make([][]marketodds.Market, events)
			moves := make([][][]int, events)
			for ev := range events * stride {
				ms := benchMarkets(rng, int64(ev), perEvent)
				c.Classify(int64(ev), "betpawa", ms, time.Time{})
				if ev%stride != 0 {
					continue
				}
				e := ev / stride
				scrapes[e] = ms
				moves[e] = make([][]int, rounds)
				for r := range moves[e] {
					for i := range perEvent {
						if rng.Float64() < 0.05 {
							moves[e][r] = append(moves[e][r], i)
						}
					}
				}
			}
			if c.Len() != bc.cached {
				b.Fatalf("Len = %d, want %d", c.Len(), bc.cached)
			}
			runtime.GC()
			capturedAt := time.Now()
			changed, i := 0, 0
			cpu0 := cpuTime()
			for b.Loop() {
				e, r := i%events, (i/events)%rounds
				i++
				ms := scrapes[e]
				for _, j := range moves[e][r] {
					o := &ms[j].Outcomes[0]
					o.Odds = 10 - o.Odds // a change, undone by the next move of this market
				}
				for _, w := range c.Classify(int64(e*stride), "betpawa", ms, capturedAt) {
					if w.Changed {
						changed++
					}
				}
			}
			cpu := cpuTime() - cpu0
			markets := float64(i * perEvent)
			b.ReportMetric(markets/b.Elapsed().Seconds(), "markets/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/markets, "ns/market")
			// CPU time (GC included) per market: what the classifier costs
			// even when other processes compete for the cores.
			b.ReportMetric(float64(cpu)/markets, "cpu-ns/market")
			b.ReportMetric(100*float64(changed)/markets, "%changed")
		})
	}
}

// BenchmarkClassifierMemory measures the heap the cache holds per market, at
// one million markets (20,000 events of 50 markets), after a GC. The scrape
// data is generated per event and dropped, so only the cache remains.
func BenchmarkClassifierMemory(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  *changedetect.Config
	}{
		{"exact", nil},
		{"tolerance", &changedetect.Config{OddsTolerance: 0.01}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const events, perEvent = 20_000, 50
			var perMarket float64
			for b.Loop() {
				rng := rand.New(rand.NewPCG(3, 4))
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				c := changedetect.New(bc.cfg)
				for e := range events {
					c.Classify(int64(e), "betpawa", benchMarkets(rng, int64(e), perEvent), time.Time{})
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if n := c.Len(); n != events*perEvent {
					b.Fatalf("Len = %d", n)
				}
				perMarket = float64(after.HeapAlloc-before.HeapAlloc) / float64(c.Len())
				runtime.KeepAlive(c)
			}
			b.ReportMetric(perMarket, "heap-B/market")
		})
	}
}
