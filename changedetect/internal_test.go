package changedetect

import (
	"fmt"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/oddsledger/oddsledger/marketodds"
)

func testMarket(id string, odds float64) marketodds.Market {
	return marketodds.Market{MarketID: id, Name: id,
		Outcomes: []marketodds.Outcome{{Name: "Yes", Odds: odds}, {Name: "No", Odds: 1 + 1/(odds-1)}}}
}

func changedCount(ws []marketodds.Write) int {
	n := 0
	for _, w := range ws {
		if w.Changed {
			n++
		}
	}
	return n
}

// TestLayout pins the sizes the memory budget rests on.
func TestLayout(t *testing.T) {
	if got := unsafe.Sizeof(entry{}); got != 32 {
		t.Errorf("entry is %d bytes, want 32", got)
	}
	if got := unsafe.Sizeof(shard{}); got%64 != 0 {
		t.Errorf("shard is %d bytes, not a whole number of cache lines", got)
	}
}

// TestGenerationWrap: after 2^32 scrapes of one book the generation number
// wraps; absence and duplicates are still told right.
func TestGenerationWrap(t *testing.T) {
	c := New(nil)
	in := []marketodds.Market{testMarket("a", 2), testMarket("b", 3)}
	c.Classify(1, "bk", in, time.Now())
	sh := c.shard(1)
	b := sh.lookup(1, "bk")
	b.gen = math.MaxUint32 - 2
	for i := range b.entries {
		b.entries[i].gen = b.gen
	}
	for i := range 5 {
		ws := c.Classify(1, "bk", append(in[:1:1], in[0]), time.Now())
		if i == 0 {
			if len(ws) != 2 || !ws[1].Unavailable {
				t.Fatalf("scrape %d: %+v, want a and the disappearance of b", i, ws)
			}
			continue
		}
		if len(ws) != 1 || ws[0].Changed {
			t.Fatalf("scrape %d (gen %d): %d writes, changed %v; want a, unchanged", i, b.gen, len(ws), ws[0].Changed)
		}
	}
	if b.gen > 5 {
		t.Errorf("gen = %d, want it wrapped", b.gen)
	}
}

// TestForgetEventFreesStrings: interned ids are reference counted, so that
// ids that exist only for forgotten events do not pile up.
func TestForgetEventFreesStrings(t *testing.T) {
	c := New(nil)
	for ev := range int64(100) {
		c.Classify(ev, "bk", []marketodds.Market{testMarket(fmt.Sprint("per-event-", ev), 2), testMarket("shared", 2)}, time.Now())
	}
	for ev := range int64(100) {
		c.ForgetEvent(ev)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		if len(sh.strs.ids) != 0 || sh.n != 0 || len(sh.events) != 0 {
			t.Fatalf("shard %d keeps %d strings, %d markets, %d events", i, len(sh.strs.ids), sh.n, len(sh.events))
		}
	}
	// Freed slots are reused.
	c.Classify(5, "bk", []marketodds.Market{testMarket("x", 2)}, time.Now())
	if sh := c.shard(5); len(sh.strs.strs) > 2+2*100/numShards+10 {
		t.Errorf("string table grew to %d", len(sh.strs.strs))
	}
}

// TestInputNotRetained: the classifier copies the strings it keeps; a
// caller reusing its buffers does not corrupt the cache.
func TestInputNotRetained(t *testing.T) {
	c := New(nil)
	buf := []byte("market-1")
	m := testMarket(unsafe.String(&buf[0], len(buf)), 2)
	c.Classify(1, "bk", []marketodds.Market{m}, time.Now())
	copy(buf, "garbage!")
	ws := c.Classify(1, "bk", []marketodds.Market{testMarket("market-1", 2)}, time.Now())
	if len(ws) != 1 || ws[0].Changed {
		t.Errorf("writes %+v: the cache kept the caller's buffer", ws)
	}
}

// TestNaNLine: a NaN line (which the store rejects) must not add an entry
// per scrape.
func TestNaNLine(t *testing.T) {
	c := New(nil)
	m := testMarket("nan", 2)
	nan := math.NaN()
	m.Line = &nan
	for i := range 3 {
		ws := c.Classify(1, "bk", []marketodds.Market{m}, time.Now())
		if len(ws) != 1 || ws[0].Changed != (i == 0) {
			t.Fatalf("scrape %d: %+v", i, ws)
		}
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1", c.Len())
	}
}

// TestTableGrowth: a book that starts small (as Warm creates them) grows
// its hash table and still finds every market.
func TestTableGrowth(t *testing.T) {
	for _, tol := range []float64{0, 0.05} {
		c := New(&Config{OddsTolerance: tol})
		var in []marketodds.Market
		for i := range 1000 {
			m := testMarket(fmt.Sprint("m", i%300), 1.5+float64(i)/100)
			m.EventID, m.Bookmaker = 9, "bk"
			line := float64(i / 300)
			m.Line = &line
			if i == 0 {
				m.Line = nil // the key of line 0, with a nil line
			}
			in = append(in, m)
			if !c.warmMarket(&m, false) {
				t.Fatalf("market %d not added", i)
			}
		}
		if c.warmMarket(&in[0], false) {
			t.Error("a known market was warmed again")
		}
		ws := c.Classify(9, "bk", in, time.Now())
		if len(ws) != 1000 || changedCount(ws) != 0 {
			t.Errorf("tol %v: %d writes, %d changed; want 1000, 0", tol, len(ws), changedCount(ws))
		}
		b := c.shard(9).lookup(9, "bk")
		if len(b.slots) < 2*len(b.entries) {
			t.Errorf("table of %d slots for %d entries", len(b.slots), len(b.entries))
		}
	}
}
