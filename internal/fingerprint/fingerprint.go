// Package fingerprint condenses the data of a market into 64 bits, so that
// change detection can keep one word per market instead of a copy of it.
//
// A fingerprint covers the market's data: Name, Line (including whether it
// is nil), Outcomes, Groups and Handicap. It does not cover the identity
// (EventID, Bookmaker, MarketID): the caller keys its cache by identity and
// compares fingerprints of the same key.
//
// The encoding is canonical, so that the fingerprint of a market is the same
// whether it comes from a scrape or from a round trip through
// market_odds_current (the replaced system lost every cache hit because its
// warm-up and its scrape path disagreed):
//   - Outcomes are a multiset: their order does not matter. Each outcome is
//     hashed on its own and the outcome hashes are added (mod 2^64), which is
//     order-independent without sorting, so without allocating. Two equal
//     outcomes count twice (addition, not XOR, so duplicates do not cancel).
//   - Groups are a multiset too: the bookmaker's group list has no
//     meaningful order, so a reordering alone is not a change (the stored
//     row keeps the order it was written with).
//   - A nil and an empty Outcomes or Groups slice are the same (a text[] or
//     jsonb round trip does not keep the difference).
//   - Floats are hashed by their bits, with -0 folded into 0 and every NaN
//     folded into one NaN, so equal values give equal fingerprints.
//   - Strings are length-prefixed, so that field boundaries cannot shift
//     ("ab","c" differs from "a","bc").
//
// The hash is a small hand-rolled one in the style of wyhash (a 64x64->128
// bit multiply folded to 64 bits per 16 input bytes). It is deterministic
// across processes and architectures: no random seed, unlike hash/maphash.
// It is not cryptographic; two different states of one market collide with
// probability about 2^-64, which is far below any other source of error here.
// Fingerprinting a typical market (2 outcomes, 2 groups, a handicap) takes
// about 40ns on one core and never allocates.
package fingerprint

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/oddsledger/oddsledger/marketodds"
)

// Constants from wyhash (public domain): odd, with well-spread bits.
const (
	k0 = 0xa0761d6478bd642f
	k1 = 0xe7037ed1a0b428db
	k2 = 0x8ebc6af09c88c6e3
	k3 = 0x589965cc75374cc3
)

// Seeds that separate the domains of the kinds of hash, so that an
// outcome hash can never stand in for a group hash or a market hash.
const (
	seedMarket  = 0x6d61726b65740001 // "market"
	seedOutcome = 0x6f7574636f6d6502 // "outcome"
	seedGroup   = 0x67726f7570000003 // "group"
	// seedSuspended replaces seedOutcome for a suspended outcome.
	seedSuspended = 0x73757370656e6404 // "suspend"
	seedKey       = 0x6b65790000000005 // "key"
)

// Market returns the fingerprint of m's data. Two markets with the same key
// have the same fingerprint if and only if (up to a 2^-64 chance) they have
// the same Name, Line (nil or value), Handicap, the same multiset of
// outcomes (name, odds, suspended) and the same multiset of groups.
func Market(m *marketodds.Market) uint64 {
	return market(m, true)
}

// Shape returns the fingerprint of m's data without the odds values: it is
// Market with every outcome's odds left out. Outcome names and suspension
// still count. A caller comparing odds with a tolerance compares Shape
// exactly and the odds (see AppendOdds) approximately.
func Shape(m *marketodds.Market) uint64 {
	return market(m, false)
}

func market(m *marketodds.Market, withOdds bool) uint64 {
	h := hasher(seedMarket)
	h.str(m.Name)
	if m.Line == nil {
		h.pair(0, 0)
	} else {
		h.pair(1, floatBits(*m.Line))
	}
	if m.Handicap == nil {
		h.word(0)
	} else {
		h.str(m.Handicap.Type)
		h.pair(floatBits(m.Handicap.Home), floatBits(m.Handicap.Away))
	}

	// Each outcome is its own hash chain, independent of the others, so the
	// CPU overlaps them. Suspension picks the seed instead of costing a word.
	var sum uint64
	for i := range m.Outcomes {
		o := &m.Outcomes[i]
		oh := hasher(seedOutcome)
		if o.Suspended {
			oh = seedSuspended
		}
		var odds uint64
		if withOdds {
			odds = floatBits(o.Odds)
		}
		if len(o.Name) < 8 {
			// The common case ("1", "X", "Over"): name and odds in one round.
			oh.pair(short(o.Name), odds)
		} else {
			oh.str(o.Name)
			oh.word(odds)
		}
		sum += oh.sum()
	}
	h.pair(uint64(len(m.Outcomes)), sum)

	sum = 0
	for _, g := range m.Groups {
		gh := hasher(seedGroup)
		gh.str(g)
		sum += gh.sum()
	}
	h.pair(uint64(len(m.Groups)), sum)
	return h.sum()
}

// Key returns a hash of a market's identity within one (event, bookmaker):
// its market id and its key line (see marketodds.Market.Key). It is for
// hash tables, not for telling states apart.
func Key(marketID string, line float64) uint64 {
	h := hasher(seedKey)
	h.word(floatBits(line))
	h.str(marketID)
	return h.sum()
}

// AppendOdds appends the odds of outcomes to dst in canonical order (by
// outcome name, then suspension, then odds) and returns the extended slice.
// Two outcome lists that differ only in order give the same odds sequence,
// so that a caller can compare them pairwise. It does not allocate for up to
// 32 outcomes beyond what appending to dst needs.
func AppendOdds(dst []float64, outcomes []marketodds.Outcome) []float64 {
	var buf [32]int
	idx := buf[:0]
	if len(outcomes) > len(buf) {
		idx = make([]int, 0, len(outcomes))
	}
	for i := range outcomes {
		idx = append(idx, i)
	}
	slices.SortFunc(idx, func(a, b int) int {
		oa, ob := &outcomes[a], &outcomes[b]
		if c := cmp.Compare(oa.Name, ob.Name); c != 0 {
			return c
		}
		if oa.Suspended != ob.Suspended {
			if oa.Suspended {
				return 1
			}
			return -1
		}
		return cmp.Compare(oa.Odds, ob.Odds)
	})
	for _, i := range idx {
		dst = append(dst, outcomes[i].Odds)
	}
	return dst
}

// hasher is the running state of one hash.
type hasher uint64

// mix is wyhash's "mum": the 128-bit product of a and b, folded to 64 bits.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// pair absorbs two words in one round, as wyhash does with 16 input bytes.
func (h *hasher) pair(a, b uint64) {
	*h = hasher(mix(a^k0, b^k1^uint64(*h)))
}

func (h *hasher) word(v uint64) { h.pair(v, 0) }

// sum finishes the hash: one more round so that the last words are spread
// over all 64 bits.
func (h *hasher) sum() uint64 {
	return mix(uint64(*h)^k2, k3)
}

// floatBits returns the bits of f, with -0 folded into 0 and all NaNs into
// one, so that values that compare equal (and every NaN) hash the same.
func floatBits(f float64) uint64 {
	switch {
	case f == 0:
		return 0
	case f != f:
		return 0x7ff8000000000001
	default:
		return math.Float64bits(f)
	}
}

// str hashes s and its length. A string shorter than 8 bytes is one word:
// its bytes and its length in the top byte. A longer one is its length,
// then 16 bytes per round; the tail is read with overlapping loads as wyhash
// does, which the known length keeps unambiguous. The first word tells the
// two forms apart: a length >= 8 has a zero top byte, a short word a top
// byte of 1 to 7, or is 0 for the empty string.
func (h *hasher) str(s string) {
	n := len(s)
	if n < 8 {
		h.word(short(s))
		return
	}
	h.word(uint64(n))
	i := 0
	for ; n-i > 16; i += 16 {
		h.pair(le64(s[i:]), le64(s[i+8:]))
	}
	// 1 to 16 bytes remain of a string of at least 8: read the last 16 or 8
	// bytes, overlapping bytes already hashed.
	if n-i > 8 {
		h.pair(le64(s[i:]), le64(s[n-8:]))
	} else {
		h.word(le64(s[n-8:]))
	}
}

// short returns the bytes of s (len(s) < 8) as a little-endian word, with
// len(s) in the top byte. Overlapping loads read each byte into its own
// place, so OR-ing them is exact.
func short(s string) uint64 {
	n := len(s)
	var v uint64
	switch {
	case n >= 4:
		v = uint64(le32(s)) | uint64(le32(s[n-4:]))<<(8*(n-4))
	case n > 0:
		v = uint64(s[0]) | uint64(s[n/2])<<(8*(n/2)) | uint64(s[n-1])<<(8*(n-1))
	}
	return v | uint64(n)<<56
}

// le64 reads the first 8 bytes of s, little-endian. The compiler turns the
// byte loads into one 8-byte load.
func le64(s string) uint64 {
	_ = s[7] // one bounds check instead of eight
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
