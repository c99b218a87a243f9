package marketodds

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// randomString draws strings around the 8-byte boundaries of prefix8 and
// checkString's word loop, from an alphabet with ASCII, a multi-byte rune,
// a byte that is not UTF-8 and NUL.
func randomString(rng *rand.Rand) string {
	alphabet := []string{"a", "b", "z", "0", "~", "é", "\xff", "\x00", "\x7f"}
	n := rng.IntN(18)
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func TestComparePrefixedIsStringsCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		a, b := randomString(rng), randomString(rng)
		if rng.IntN(4) == 0 {
			b = a[:rng.IntN(len(a)+1)] // a prefix of a
		}
		if strings.Contains(a, "\x00") || strings.Contains(b, "\x00") {
			continue // validation keeps NUL out of keys
		}
		if got, want := comparePrefixed(a, b, prefix8(a), prefix8(b)), strings.Compare(a, b); got != want {
			t.Fatalf("comparePrefixed(%q, %q) = %d, strings.Compare says %d", a, b, got, want)
		}
	}
}

// checkStringReference is checkString without the fast path.
func checkStringReference(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "invalid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	return ""
}

func TestCheckStringWordLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		s := randomString(rng)
		if got, want := checkString(s, 1000, false), checkStringReference(s); got != want {
			t.Fatalf("checkString(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestPrepareOrder checks prepare's grouping against a plain sort of the
// writes by Key.Compare, time and index, on batches with repeated keys, nil
// and zero lines, and times that differ below a microsecond.
func TestPrepareOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := &Store{cfg: &Config{Confirm: ConfirmScrapes}}
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	books := []string{"betpawa", "sportybet", "bet9ja", "sportybetx"}
	ids := []string{"1", "10", "2", "3743", "37430000", "374300001"}
	zero, one := 0.0, 1.5
	lines := []*float64{nil, &zero, &one}
	for range 200 {
		n := 1 + rng.IntN(60)
		ws := make([]Write, n)
		for i := range ws {
			ws[i] = Write{
				Market: Market{EventID: int64(rng.IntN(3)) - 1, Bookmaker: books[rng.IntN(len(books))],
					MarketID: ids[rng.IntN(len(ids))], Line: lines[rng.IntN(len(lines))],
					Outcomes: []Outcome{{Name: "1", Odds: 2}}},
				CapturedAt: base.Add(time.Duration(rng.IntN(4)) * 700 * time.Nanosecond),
				Changed:    rng.IntN(3) == 0,
			}
		}
		p := s.prepare(&Batch{Writes: ws})
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		trunc := func(i int) time.Time { return ws[i].CapturedAt.Truncate(time.Microsecond) }
		slices.SortFunc(want, func(a, b int) int {
			if c := ws[a].Key().Compare(ws[b].Key()); c != 0 {
				return c
			}
			if c := trunc(a).Compare(trunc(b)); c != 0 {
				return c
			}
			return a - b
		})
		if !slices.Equal(p.sorted, want) {
			t.Fatalf("sorted %v, want %v", p.sorted, want)
		}
		var units int
		for k, u := range p.units {
			changed := false
			for _, i := range p.sorted[u.lo:u.hi] {
				if ws[i].Key() != ws[p.sorted[u.lo]].Key() {
					t.Fatalf("unit %d mixes keys", k)
				}
				changed = changed || ws[i].Changed
			}
			if changed != u.changed {
				t.Fatalf("unit %d: changed %v, want %v", k, u.changed, changed)
			}
			if k > 0 && ws[p.sorted[u.lo]].Key() == ws[p.sorted[p.units[k-1].lo]].Key() {
				t.Fatalf("units %d and %d share a key", k-1, k)
			}
			units += u.hi - u.lo
		}
		if units != n {
			t.Fatalf("units cover %d writes, want %d", units, n)
		}
		for k := 1; k < len(p.scrapes); k++ {
			if compareScrapes(p.scrapes[k-1], p.scrapes[k]) >= 0 {
				t.Fatalf("scrapes not sorted and distinct: %v", p.scrapes)
			}
		}
	}
}
