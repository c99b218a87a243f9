package fingerprint

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/oddsledger/oddsledger/marketodds"
)

func ptr[T any](v T) *T { return &v }

func sample() marketodds.Market {
	return marketodds.Market{
		EventID:   42,
		Bookmaker: "betpawa",
		MarketID:  "OU",
		Line:      ptr(2.5),
		Name:      "Total goals over/under",
		Outcomes: []marketodds.Outcome{
			{Name: "Over", Odds: 1.85},
			{Name: "Under", Odds: 2.05},
		},
		Groups:   []string{"popular", "goals"},
		Handicap: &marketodds.Handicap{Type: "asian", Home: -0.5, Away: 0.5},
	}
}

func TestMarketIgnoresOrder(t *testing.T) {
	t.Parallel()
	a := sample()
	b := sample()
	slices.Reverse(b.Outcomes)
	slices.Reverse(b.Groups)
	if Market(&a) != Market(&b) {
		t.Error("permuted outcomes/groups changed the fingerprint")
	}
	if Shape(&a) != Shape(&b) {
		t.Error("permuted outcomes/groups changed the shape")
	}
}

func TestMarketIgnoresIdentity(t *testing.T) {
	t.Parallel()
	a := sample()
	b := sample()
	b.EventID, b.Bookmaker, b.MarketID = 7, "sportybet", "other"
	if Market(&a) != Market(&b) {
		t.Error("identity fields changed the fingerprint; it covers data only")
	}
}

func TestMarketSeesEveryDataChange(t *testing.T) {
	t.Parallel()
	base := sample()
	tests := []struct {
		name      string
		mutate    func(m *marketodds.Market)
		sameShape bool // the change is to odds only
	}{
		{"odds", func(m *marketodds.Market) { m.Outcomes[0].Odds = 1.86 }, true},
		{"odds swapped between outcomes", func(m *marketodds.Market) {
			m.Outcomes[0].Odds, m.Outcomes[1].Odds = m.Outcomes[1].Odds, m.Outcomes[0].Odds
		}, true},
		{"suspended", func(m *marketodds.Market) { m.Outcomes[1].Suspended = true }, false},
		{"outcome name", func(m *marketodds.Market) { m.Outcomes[1].Name = "Under " }, false},
		{"outcome added", func(m *marketodds.Market) {
			m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: "Exactly", Odds: 9})
		}, false},
		{"outcome removed", func(m *marketodds.Market) { m.Outcomes = m.Outcomes[:1] }, false},
		{"outcome duplicated", func(m *marketodds.Market) {
			m.Outcomes = append(m.Outcomes, m.Outcomes[0])
		}, false},
		{"name", func(m *marketodds.Market) { m.Name = "Total goals" }, false},
		{"line value", func(m *marketodds.Market) { m.Line = ptr(3.5) }, false},
		{"line nil", func(m *marketodds.Market) { m.Line = nil }, false},
		{"group added", func(m *marketodds.Market) { m.Groups = append(m.Groups, "live") }, false},
		{"group duplicated", func(m *marketodds.Market) { m.Groups = append(m.Groups, "goals") }, false},
		{"group renamed", func(m *marketodds.Market) { m.Groups[0] = "Popular" }, false},
		{"groups re-cut", func(m *marketodds.Market) { m.Groups = []string{"popularg", "oals"} }, false},
		{"handicap nil", func(m *marketodds.Market) { m.Handicap = nil }, false},
		{"handicap type", func(m *marketodds.Market) { m.Handicap.Type = "european" }, false},
		{"handicap home", func(m *marketodds.Market) { m.Handicap.Home = -1 }, false},
		{"handicap away", func(m *marketodds.Market) { m.Handicap.Away = 1 }, false},
		{"handicap home/away swapped", func(m *marketodds.Market) {
			m.Handicap.Home, m.Handicap.Away = m.Handicap.Away, m.Handicap.Home
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := clone(base)
			tt.mutate(&m)
			if Market(&m) == Market(&base) {
				t.Error("fingerprint did not change")
			}
			if got := Shape(&m) == Shape(&base); got != tt.sameShape {
				t.Errorf("shape unchanged = %v, want %v", got, tt.sameShape)
			}
		})
	}
}

func TestNilLineDiffersFromZeroLine(t *testing.T) {
	t.Parallel()
	a := sample()
	a.Line = nil
	b := sample()
	b.Line = ptr(0.0)
	if Market(&a) == Market(&b) {
		t.Error("nil line and line 0 have one fingerprint; they are different data of the same key")
	}
}

func TestZeroHandicapDiffersFromNil(t *testing.T) {
	t.Parallel()
	a := sample()
	a.Handicap = nil
	b := sample()
	b.Handicap = &marketodds.Handicap{}
	if Market(&a) == Market(&b) {
		t.Error("nil handicap and zero handicap have one fingerprint")
	}
}

func TestEquivalentValuesHashEqual(t *testing.T) {
	t.Parallel()
	a := sample()
	a.Groups = nil
	a.Line = ptr(0.0)
	a.Handicap.Home = 0
	b := sample()
	b.Groups = []string{}
	b.Line = ptr(math.Copysign(0, -1))
	b.Handicap.Home = math.Copysign(0, -1)
	if Market(&a) != Market(&b) {
		t.Error("nil/empty groups or 0/-0 changed the fingerprint")
	}
	a.Outcomes[0].Odds = math.NaN()
	b.Outcomes[0].Odds = math.Float64frombits(0x7ff8dead00000000)
	if Market(&a) != Market(&b) {
		t.Error("two NaNs hash differently")
	}
	a.Outcomes, b.Outcomes = nil, []marketodds.Outcome{}
	if Market(&a) != Market(&b) {
		t.Error("nil/empty outcomes changed the fingerprint")
	}
}

// TestStable pins fingerprints: they must not depend on the process (no
// random seed), so that a change of the hash is a deliberate one.
func TestStable(t *testing.T) {
	t.Parallel()
	m := sample()
	const want, wantShape = 0x23bc4f3a2a949a95, 0x9e66d73f958a6415
	if got := Market(&m); got != want {
		t.Errorf("Market = %#x, want %#x", got, uint64(want))
	}
	if got := Shape(&m); got != wantShape {
		t.Errorf("Shape = %#x, want %#x", got, uint64(wantShape))
	}
}

// TestStringTails covers every tail length of the string hash: strings that
// differ in any one byte must hash differently.
func TestStringTails(t *testing.T) {
	t.Parallel()
	seen := map[uint64]string{}
	for n := 0; n <= 24; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a'
		}
		for i := -1; i < n; i++ {
			s := slices.Clone(b)
			if i >= 0 {
				s[i] = 'b'
			}
			m := marketodds.Market{Name: string(s)}
			fp := Market(&m)
			if prev, ok := seen[fp]; ok {
				t.Fatalf("%q and %q collide", prev, s)
			}
			seen[fp] = string(s)
		}
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	if Key("OU", 0) != Key("OU", math.Copysign(0, -1)) {
		t.Error("line -0 and 0 hash differently")
	}
	if Key("OU", math.NaN()) != Key("OU", math.Float64frombits(0x7ff8dead00000000)) {
		t.Error("two NaN lines hash differently")
	}
	seen := map[uint64]bool{}
	for _, id := range []string{"", "O", "OU", "OU2", "1X2", "a-long-market-id-of-more-than-16-bytes"} {
		for _, line := range []float64{0, 0.5, -0.5, 2.5, 3} {
			h := Key(id, line)
			if seen[h] {
				t.Errorf("Key(%q, %v) collides", id, line)
			}
			seen[h] = true
		}
	}
}

func TestNoAllocations(t *testing.T) {
	m := sample()
	var dst [8]float64
	if n := testing.AllocsPerRun(100, func() {
		_ = Market(&m)
		_ = Shape(&m)
		_ = AppendOdds(dst[:0], m.Outcomes)
		_ = Key(m.MarketID, *m.Line)
	}); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func TestAppendOdds(t *testing.T) {
	t.Parallel()
	outs := []marketodds.Outcome{
		{Name: "X", Odds: 3.1},
		{Name: "2", Odds: 4.2},
		{Name: "1", Odds: 2.0},
		{Name: "1", Odds: 1.5, Suspended: true},
		{Name: "1", Odds: 1.7},
	}
	got := AppendOdds([]float64{9}, outs)
	want := []float64{9, 1.7, 2.0, 1.5, 4.2, 3.1}
	if !slices.Equal(got, want) {
		t.Errorf("AppendOdds = %v, want %v", got, want)
	}
	slices.Reverse(outs)
	if got := AppendOdds(nil, outs); !slices.Equal(got, want[1:]) {
		t.Errorf("AppendOdds(reversed) = %v, want %v", got, want[1:])
	}

	many := make([]marketodds.Outcome, 100)
	for i := range many {
		many[i] = marketodds.Outcome{Name: string(rune('a' + (99-i)%26)), Odds: float64(i)}
	}
	if got := AppendOdds(nil, many); len(got) != 100 {
		t.Errorf("len = %d, want 100", len(got))
	}
}

func clone(m marketodds.Market) marketodds.Market {
	m.Outcomes = slices.Clone(m.Outcomes)
	m.Groups = slices.Clone(m.Groups)
	if m.Line != nil {
		m.Line = ptr(*m.Line)
	}
	if m.Handicap != nil {
		h := *m.Handicap
		m.Handicap = &h
	}
	return m
}

// FuzzMarket checks the canonical encoding: permuting outcomes and groups,
// and a round trip of the outcomes through JSON (as market_odds_current
// stores them in jsonb), leave the fingerprint alone; changing one odds value
// does not.
func FuzzMarket(f *testing.F) {
	f.Add("Total", "Over", 1.85, "Under", 2.05, false, "popular", "goals", 2.5, true, uint8(1))
	f.Add("", "", 1.01, "", 1.01, true, "", "", 0.0, false, uint8(0))
	f.Add("1X2", "1", 2.0, "2", 3.5, false, "a", "a", -1.5, true, uint8(7))
	f.Fuzz(func(t *testing.T, name, o1 string, odds1 float64, o2 string, odds2 float64, susp bool,
		g1, g2 string, line float64, hasLine bool, perm uint8) {
		m := marketodds.Market{
			Name: name,
			Outcomes: []marketodds.Outcome{
				{Name: o1, Odds: odds1, Suspended: susp},
				{Name: o2, Odds: odds2},
				{Name: o1 + o2, Odds: odds1 + odds2},
			},
			Groups: []string{g1, g2, g1 + g2},
		}
		if hasLine {
			m.Line = &line
		}
		fp := Market(&m)

		p := clone(m)
		for i := range uint(perm % 6) {
			j := int(i) % len(p.Outcomes)
			k := (j + 1) % len(p.Outcomes)
			p.Outcomes[j], p.Outcomes[k] = p.Outcomes[k], p.Outcomes[j]
			p.Groups[j], p.Groups[k] = p.Groups[k], p.Groups[j]
		}
		if Market(&p) != fp {
			t.Fatalf("permutation changed the fingerprint: %+v vs %+v", m, p)
		}
		if !slices.Equal(AppendOdds(nil, m.Outcomes), AppendOdds(nil, p.Outcomes)) {
			t.Fatal("permutation changed AppendOdds")
		}

		if js, err := json.Marshal(m.Outcomes); err == nil && validStrings(o1, o2) {
			var back []marketodds.Outcome
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			r := m
			r.Outcomes = back
			if Market(&r) != fp {
				t.Fatalf("JSON round trip changed the fingerprint: %s", js)
			}
		}

		c := clone(m)
		c.Outcomes[1].Odds = math.Nextafter(odds2, math.Inf(1))
		if c.Outcomes[1].Odds != odds2 && !math.IsNaN(odds2) && Market(&c) == fp {
			t.Fatalf("odds %v -> %v did not change the fingerprint", odds2, c.Outcomes[1].Odds)
		}
	})
}

// validStrings reports whether JSON keeps the strings as they are: it
// replaces invalid UTF-8 (the store rejects such strings anyway).
func validStrings(ss ...string) bool {
	for _, s := range ss {
		for _, r := range s {
			if r == 0xFFFD {
				return false
			}
		}
	}
	return true
}

func BenchmarkMarket(b *testing.B) {
	m := sample()
	for b.Loop() {
		_ = Market(&m)
	}
}
