package changedetect

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"
	"sync"

	"github.com/oddsledger/oddsledger/internal/fingerprint"
)

// numShards splits the cache by event id, so that scrapers working on
// different events rarely wait for each other. 64 is well above the number
// of cores of a scraper host; an idle shard costs 128 bytes.
const numShards = 64

func (c *Classifier) shard(eventID int64) *shard {
	// Fibonacci hashing: consecutive event ids land on different shards.
	return &c.shards[uint64(eventID)*0x9e3779b97f4a7c15>>(64-6)]
}

type shard struct {
	mu sync.Mutex
	// events holds the books of each event: ForgetEvent drops an event at
	// once, and the per-scrape lookup hashes an int64 instead of a string.
	events map[int64][]*book
	// strs interns market ids and bookmaker slugs.
	strs strtab
	// n counts the cached markets, for Len.
	n int
	_ [24]byte // to 128 bytes: neighbouring shards' locks do not share a cache line
}

// book is the state of one (event, bookmaker): its markets, in a small open
// addressing hash table of its own. Entries are never removed one by one
// (ForgetEvent drops the whole book), which keeps the table simple: no
// tombstones, and an entry's index never changes.
type book struct {
	bookmaker string
	// gen counts the Classify calls of this book: entries seen by the current
	// call carry its number. That finds markets absent from a scrape, and
	// duplicates within one, without a per-call set.
	gen uint32
	// avail counts the entries whose last state is available: a scrape that
	// saw all of them has no disappearance to look for.
	avail int
	// goneForgotten counts unavailable entries whose disappearance write was
	// forgotten: it is sent again if they are still absent.
	goneForgotten int
	entries       []entry
	// slots is the hash table: 1 + an index into entries, 0 for a free slot.
	// Its length is a power of two, at least twice len(entries), so that a
	// lookup probes ~1.5 slots. 4 bytes per slot, ~10 bytes per market.
	slots []int32
	// odds holds, with a tolerance only, each entry's odds as last reported
	// changed, in fingerprint.AppendOdds order.
	odds [][]float64
}

// entry is what the classifier keeps of a market: 32 bytes, its key and a
// fingerprint, not a copy of the data. It holds no pointer (the market id
// is a number in the shard's string table), so the garbage collector never
// scans the entries: at a million markets that is 32 MB it skips on every
// cycle of the host's GC.
type entry struct {
	line float64 // the key line: nil and -0 folded into 0
	// fp is fingerprint.Market of the last state (fingerprint.Shape with a
	// tolerance).
	fp    uint64
	id    uint32 // the market id, in the shard's strtab
	gen   uint32
	flags uint8
}

const (
	// flagAvailable: the last state reported is available. Clear after a
	// disappearance write, or when warmed from a row with unavailable_at.
	flagAvailable uint8 = 1 << iota
	// flagLineNil: the market's Line was nil, so that a disappearance write
	// reproduces it (a nil line and a line of 0 share a key).
	flagLineNil
	// flagForgotten: the last write of this market failed (Forget): its next
	// state is reported changed, or its disappearance sent again.
	flagForgotten
)

// book returns the book of (eventID, bookmaker), creating it with room for
// n markets. The caller holds sh.mu.
func (sh *shard) book(eventID int64, bookmaker string, n int, withOdds bool) *book {
	books := sh.events[eventID]
	for _, b := range books {
		if b.bookmaker == bookmaker {
			return b
		}
	}
	b := &book{
		bookmaker: sh.strs.str(sh.strs.ref(bookmaker)),
		entries:   make([]entry, 0, n),
		slots:     make([]int32, slotsFor(n)),
	}
	if withOdds {
		b.odds = make([][]float64, 0, n)
	}
	if sh.events == nil {
		sh.events = make(map[int64][]*book)
	}
	sh.events[eventID] = append(books, b)
	return b
}

// lookup returns the book of (eventID, bookmaker), or nil. The caller holds
// sh.mu.
func (sh *shard) lookup(eventID int64, bookmaker string) *book {
	for _, b := range sh.events[eventID] {
		if b.bookmaker == bookmaker {
			return b
		}
	}
	return nil
}

// slotsFor returns the table size for n entries: a power of two >= 2n.
func slotsFor(n int) int {
	n = max(n, 4)
	return 1 << bits.Len(uint(2*n-1))
}

// find returns the index of the entry of (id, line), whose
// fingerprint.Key is h, and true; or the free slot where it goes and false.
// The caller holds sh.mu.
func (sh *shard) find(b *book, id string, line float64, h uint64) (int, bool) {
	mask := uint64(len(b.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := b.slots[i]
		if s == 0 {
			return int(i), false
		}
		e := &b.entries[s-1]
		if sameLine(e.line, line) && sh.strs.strs[e.id] == id {
			return int(s - 1), true
		}
	}
}

// sameLine compares key lines; NaN equals NaN, so that a (bogus) NaN line
// finds its entry instead of adding one per scrape.
func sameLine(a, b float64) bool {
	return a == b || (a != a && b != b)
}

// insert adds a blank entry for (id, line) in the free slot found by find,
// and returns its index. The caller holds sh.mu.
func (sh *shard) insert(b *book, slot int, id string, line float64) int {
	idx := len(b.entries)
	b.entries = append(b.entries, entry{id: sh.strs.ref(id), line: line})
	if b.odds != nil {
		b.odds = append(b.odds, nil)
	}
	b.slots[slot] = int32(idx + 1)
	if 2*len(b.entries) > len(b.slots) {
		sh.rehash(b, 2*len(b.slots))
	}
	sh.n++
	return idx
}

// rehash rebuilds the table of b with n slots. The caller holds sh.mu.
func (sh *shard) rehash(b *book, n int) {
	b.slots = make([]int32, n)
	mask := uint64(n - 1)
	for idx := range b.entries {
		e := &b.entries[idx]
		i := fingerprint.Key(sh.strs.str(e.id), e.line) & mask
		for b.slots[i] != 0 {
			i = (i + 1) & mask
		}
		b.slots[i] = int32(idx + 1)
	}
}

// nextGen starts a new generation (a new Classify call) of b.
func (b *book) nextGen() {
	b.gen++
	if b.gen == 0 {
		// After 2^32 scrapes of one book: restart the numbering, so that an
		// entry last seen 2^32 scrapes ago does not look seen now.
		for i := range b.entries {
			b.entries[i].gen = 0
		}
		b.gen = 1
	}
}

// goneMarket is a market that disappeared from its book: what a
// disappearance write needs.
type goneMarket struct {
	id      string
	line    float64
	lineNil bool
}

// gone finds the entries of b that were available and were not seen by the
// current generation (unseen counts them), and the forgotten
// disappearances; it marks them unavailable and returns them in key order.
// The caller holds sh.mu.
func (sh *shard) gone(b *book, unseen int) []goneMarket {
	if unseen == 0 && b.goneForgotten == 0 {
		return nil
	}
	var gone []goneMarket
	for i := range b.entries {
		e := &b.entries[i]
		if e.gen == b.gen {
			continue
		}
		switch {
		case e.flags&flagAvailable != 0:
			b.avail--
		case e.flags&flagForgotten != 0:
			b.goneForgotten--
		default:
			continue
		}
		e.flags &^= flagAvailable | flagForgotten
		gone = append(gone, goneMarket{id: sh.strs.str(e.id), line: e.line, lineNil: e.flags&flagLineNil != 0})
	}
	slices.SortFunc(gone, func(a, b goneMarket) int {
		return cmp.Or(strings.Compare(a.id, b.id), cmp.Compare(a.line, b.line))
	})
	return gone
}

// drop forgets the books of an event. The caller holds sh.mu.
func (sh *shard) drop(eventID int64) {
	for _, b := range sh.events[eventID] {
		for i := range b.entries {
			sh.strs.unref(b.entries[i].id)
		}
		sh.strs.unref(sh.strs.lookup(b.bookmaker))
		sh.n -= len(b.entries)
	}
	delete(sh.events, eventID)
}

// strtab interns strings (market ids, bookmaker slugs) as small numbers, so
// that entries hold no pointer, and a million cached markets share a few
// hundred strings instead of retaining the caller's (possibly large)
// buffers, or a copy each. Reference counts free the strings of forgotten
// events, so that even unbounded ids (say, one per event) do not leak.
type strtab struct {
	ids  map[string]uint32
	strs []string
	refs []uint32
	free []uint32
}

// ref returns the number of s, adding s (a copy) if it is new, and counts
// one more reference.
func (t *strtab) ref(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		t.refs[id]++
		return id
	}
	s = strings.Clone(s)
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
		t.strs[id], t.refs[id] = s, 1
	} else {
		id = uint32(len(t.strs))
		t.strs = append(t.strs, s)
		t.refs = append(t.refs, 1)
	}
	if t.ids == nil {
		t.ids = make(map[string]uint32)
	}
	t.ids[s] = id
	return id
}

// unref drops one reference to id, and the string with the last one.
func (t *strtab) unref(id uint32) {
	t.refs[id]--
	if t.refs[id] == 0 {
		delete(t.ids, t.strs[id])
		t.strs[id] = ""
		t.free = append(t.free, id)
	}
}

func (t *strtab) str(id uint32) string { return t.strs[id] }

// lookup returns the number of an interned string.
func (t *strtab) lookup(s string) uint32 { return t.ids[s] }
