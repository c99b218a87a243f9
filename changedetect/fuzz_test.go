package changedetect_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/marketodds"
)

// randomMarkets makes up to 40 markets from a few ids, lines, names and odds,
// including the awkward ones (nil/0/-0/NaN lines, NaN and -0 odds, duplicate
// outcome names, duplicate keys), with strings taken from text.
func randomMarkets(rng *rand.Rand, n int, text string) []marketodds.Market {
	pick := func(ss ...string) string { return ss[rng.IntN(len(ss))] }
	piece := func() string {
		if text == "" {
			return ""
		}
		i := rng.IntN(len(text))
		return text[i : i+rng.IntN(len(text)-i+1)]
	}
	float := func() float64 {
		switch rng.IntN(8) {
		case 0:
			return math.NaN()
		case 1:
			return math.Copysign(0, -1)
		case 2:
			return math.Inf(1)
		default:
			return 1 + float64(rng.IntN(1000))/100
		}
	}
	ms := make([]marketodds.Market, n)
	for i := range ms {
		m := &ms[i]
		m.EventID, m.Bookmaker = event, bookmaker
		m.MarketID = pick("1X2", "OU", "AH", piece())
		switch rng.IntN(5) {
		case 0:
		case 1:
			m.Line = ptr(0.0)
		case 2:
			m.Line = ptr(math.Copysign(0, -1))
		case 3:
			m.Line = ptr(math.NaN())
		default:
			m.Line = ptr(float64(rng.IntN(8)) / 4)
		}
		m.Name = pick("", "Market", piece())
		for range rng.IntN(6) {
			m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: pick("1", "X", "2", "Over 2.5 goals", piece()),
				Odds: float(), Suspended: rng.IntN(4) == 0})
		}
		for range rng.IntN(4) {
			m.Groups = append(m.Groups, pick("popular", "main", piece()))
		}
		if rng.IntN(3) == 0 {
			m.Handicap = &marketodds.Handicap{Type: pick("", "asian", piece()), Home: float(), Away: float()}
		}
	}
	return ms
}

// FuzzClassify: whatever the markets, a second scrape of the same data (with
// outcomes and groups in another order) reports nothing changed and nothing
// gone; the first reports every distinct key, once, changed, with the data of
// its last occurrence; an empty scrape then reports every key gone, once.
func FuzzClassify(f *testing.F) {
	f.Add(uint64(1), uint8(5), false, "popular")
	f.Add(uint64(2), uint8(40), true, "Über ⚽ \x00\xff")
	f.Add(uint64(3), uint8(0), false, "")
	f.Add(uint64(4), uint8(200), true, "1X2")
	f.Fuzz(func(t *testing.T, seed uint64, n uint8, tolerance bool, text string) {
		rng := rand.New(rand.NewPCG(seed, uint64(n)))
		ms := randomMarkets(rng, int(n)%41, text)
		cfg := &changedetect.Config{}
		if tolerance {
			cfg.OddsTolerance = 0.02
		}
		c := changedetect.New(cfg)

		// The last occurrence of each key, in input order.
		last := map[marketodds.Key]int{}
		for i := range ms {
			last[keyOf(ms[i])] = i
		}
		ws := c.Classify(event, bookmaker, ms, at(0))
		if len(ws) != len(last) {
			t.Fatalf("first scrape: %d writes for %d distinct keys", len(ws), len(last))
		}
		prev := -1
		for _, w := range ws {
			i, ok := last[keyOf(w.Market)]
			if !ok || i <= prev || !w.Changed || w.Unavailable {
				t.Fatalf("first scrape: write %+v (last occurrence %d, ok %v, after %d)", w, i, ok, prev)
			}
			prev = i
			if w.Name != ms[i].Name || len(w.Outcomes) != len(ms[i].Outcomes) ||
				(len(w.Outcomes) > 0 && &w.Outcomes[0] != &ms[i].Outcomes[0]) {
				t.Fatalf("write does not carry the last occurrence %d of its key", i)
			}
		}

		again := permuted(ms)
		ws = c.Classify(event, bookmaker, again, at(1))
		if len(ws) != len(last) {
			t.Fatalf("second scrape: %d writes, want %d", len(ws), len(last))
		}
		for _, w := range ws {
			if w.Changed || w.Unavailable {
				t.Fatalf("second scrape of the same data: %+v", w)
			}
		}

		// The same markets once each, in another order: still nothing.
		var uniq []marketodds.Market
		for i := range ms {
			if last[keyOf(ms[i])] == i {
				uniq = append(uniq, again[i])
			}
		}
		rng.Shuffle(len(uniq), func(i, j int) { uniq[i], uniq[j] = uniq[j], uniq[i] })
		for _, w := range c.Classify(event, bookmaker, uniq, at(1)) {
			if w.Changed || w.Unavailable {
				t.Fatalf("shuffled scrape of the same data: %+v", w)
			}
		}

		ws = c.Classify(event, bookmaker, nil, at(2))
		if len(ws) != len(last) {
			t.Fatalf("empty scrape: %d writes, want %d disappearances", len(ws), len(last))
		}
		for _, w := range ws {
			if !w.Changed || !w.Unavailable {
				t.Fatalf("empty scrape: %+v", w)
			}
		}
		if ws := c.Classify(event, bookmaker, nil, at(3)); len(ws) != 0 {
			t.Fatalf("second empty scrape: %d writes", len(ws))
		}
		if c.Len() != len(last) {
			t.Fatalf("Len = %d, want %d", c.Len(), len(last))
		}
	})
}

// keyOf is m.Key, with every NaN line the same key (the classifier does the
// same: a NaN line is one market, not a new one per scrape).
func keyOf(m marketodds.Market) marketodds.Key {
	k := m.Key()
	if k.Line != k.Line {
		k.Line = math.Inf(-1) // stands for NaN, not a line the generator makes
	}
	return k
}
