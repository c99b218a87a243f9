package sim

import (
	"fmt"
	"math"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The football market catalogue of the simulation: 50 markets per event,
// shaped like a bookmaker's football page (the market ids are made up). The
// opening odds come from a Poisson model of the score, so that, say, the
// over 0.5 goals market is short and the correct score 4:4 is long, and the
// bookmakers of one event disagree a little.

// Market groups, as the bookmakers tag their markets.
const (
	groupPopular  = "popular"
	groupGoals    = "goals"
	groupHalves   = "halves"
	groupHandicap = "handicap"
	groupScore    = "score"
	groupSpecials = "specials"
)

// maxGoals bounds the score grids: P(more than 10 goals for one team) is
// far below the odds' rounding.
const maxGoals = 10

// grid is the probability of each score (home, away).
type grid [maxGoals + 1][maxGoals + 1]float64

// model is what the opening odds of one (event, bookmaker) derive from.
type model struct {
	ft, h1, h2     grid          // full time, first half, second half
	htft           [3][3]float64 // P(half-time result, full-time result); 0 home, 1 draw, 2 away
	corners, cards float64       // expected totals
}

// poisson returns P(X = k) for k in 0..maxGoals.
func poisson(lambda float64) [maxGoals + 1]float64 {
	var p [maxGoals + 1]float64
	p[0] = math.Exp(-lambda)
	for k := 1; k <= maxGoals; k++ {
		p[k] = p[k-1] * lambda / float64(k)
	}
	return p
}

func outer(home, away [maxGoals + 1]float64) grid {
	var g grid
	for h := range home {
		for a := range away {
			g[h][a] = home[h] * away[a]
		}
	}
	return g
}

// result is 0 for a home win, 1 for a draw, 2 for an away win.
func result(h, a int) int {
	switch {
	case h > a:
		return 0
	case h == a:
		return 1
	default:
		return 2
	}
}

// newModel builds the score model of expected goals lh (home) and la (away):
// independent Poisson goals, 45% of them in the first half.
func newModel(lh, la, corners, cards float64) *model {
	m := &model{corners: corners, cards: cards}
	m.ft = outer(poisson(lh), poisson(la))
	m.h1 = outer(poisson(0.45*lh), poisson(0.45*la))
	m.h2 = outer(poisson(0.55*lh), poisson(0.55*la))
	// HT/FT needs the halves jointly; goals beyond 6 per half do not move
	// the two-decimal odds.
	const n = 6
	for h1 := 0; h1 <= n; h1++ {
		for a1 := 0; a1 <= n; a1++ {
			p1 := m.h1[h1][a1]
			for h2 := 0; h2 <= n; h2++ {
				for a2 := 0; a2 <= n; a2++ {
					m.htft[result(h1, a1)][result(h1+h2, a1+a2)] += p1 * m.h2[h2][a2]
				}
			}
		}
	}
	return m
}

// settle says what an outcome pays for a final score.
type settle int8

const (
	lose settle = iota
	win
	push // stake returned: whole-line handicaps, draw no bet
)

// outcomeDef is one outcome of a market definition.
type outcomeDef struct {
	name string
	// on the market's grid (goals markets); nil for the other kinds.
	settle func(h, a int) settle
	// prob overrides settle for markets that are not priced from a grid.
	prob func(m *model) float64
}

// marketDef is one market of the catalogue.
type marketDef struct {
	id, name string
	line     *float64
	handicap *marketodds.Handicap
	groups   []string
	grid     func(m *model) *grid // the score grid that settles the outcomes
	outcomes []outcomeDef
}

// fairOdds are the odds without margin: (1 - P(push)) / P(win).
func (d *marketDef) fairOdds(m *model) []float64 {
	out := make([]float64, len(d.outcomes))
	for i, o := range d.outcomes {
		if o.prob != nil {
			out[i] = 1 / o.prob(m)
			continue
		}
		g := d.grid(m)
		var pWin, pPush, total float64
		for h := range g {
			for a := range g[h] {
				p := g[h][a]
				total += p
				switch o.settle(h, a) {
				case win:
					pWin += p
				case push:
					pPush += p
				}
			}
		}
		out[i] = (total - pPush) / pWin
	}
	return out
}

func fullTime(m *model) *grid   { return &m.ft }
func firstHalf(m *model) *grid  { return &m.h1 }
func secondHalf(m *model) *grid { return &m.h2 }

func ptr[T any](v T) *T { return &v }

// threeWay is a 1X2 market.
func threeWay(id, name string, g func(*model) *grid, groups ...string) marketDef {
	return marketDef{id: id, name: name, grid: g, groups: groups, outcomes: []outcomeDef{
		{name: "1", settle: func(h, a int) settle { return boolSettle(h > a) }},
		{name: "X", settle: func(h, a int) settle { return boolSettle(h == a) }},
		{name: "2", settle: func(h, a int) settle { return boolSettle(h < a) }},
	}}
}

// overUnder is a goals over/under market at a half line.
func overUnder(id, name string, line float64, g func(*model) *grid, count func(h, a int) int, groups ...string) marketDef {
	return marketDef{id: id, name: fmt.Sprintf("%s %.1f", name, line), line: ptr(line), grid: g, groups: groups,
		outcomes: []outcomeDef{
			{name: "Over", settle: func(h, a int) settle { return boolSettle(float64(count(h, a)) > line) }},
			{name: "Under", settle: func(h, a int) settle { return boolSettle(float64(count(h, a)) < line) }},
		}}
}

// yesNo is a market on a condition of the score.
func yesNo(id, name string, g func(*model) *grid, cond func(h, a int) bool, groups ...string) marketDef {
	return marketDef{id: id, name: name, grid: g, groups: groups, outcomes: []outcomeDef{
		{name: "Yes", settle: func(h, a int) settle { return boolSettle(cond(h, a)) }},
		{name: "No", settle: func(h, a int) settle { return boolSettle(!cond(h, a)) }},
	}}
}

// countOverUnder is an over/under market on a Poisson count (corners, cards).
func countOverUnder(id, name string, line float64, lambda func(*model) float64) marketDef {
	over := func(m *model) float64 {
		p, cdf := math.Exp(-lambda(m)), 0.0
		for k := 0; float64(k) < line; k++ {
			cdf += p
			p *= lambda(m) / float64(k+1)
		}
		return 1 - cdf
	}
	return marketDef{id: id, name: fmt.Sprintf("%s %.1f", name, line), line: ptr(line), groups: []string{groupSpecials},
		outcomes: []outcomeDef{
			{name: "Over", prob: over},
			{name: "Under", prob: func(m *model) float64 { return 1 - over(m) }},
		}}
}

func boolSettle(b bool) settle {
	if b {
		return win
	}
	return lose
}

func totalGoals(h, a int) int { return h + a }
func homeGoals(h, _ int) int  { return h }
func awayGoals(_, a int) int  { return a }

// catalogue is the 50 markets of a football event, in the order a
// bookmaker's page lists them.
var catalogue = buildCatalogue()

func buildCatalogue() []marketDef {
	var c []marketDef
	c = append(c, threeWay("3743", "1X2", fullTime, groupPopular))
	c = append(c, marketDef{id: "4693", name: "Double Chance", grid: fullTime, groups: []string{groupPopular},
		outcomes: []outcomeDef{
			{name: "1X", settle: func(h, a int) settle { return boolSettle(h >= a) }},
			{name: "12", settle: func(h, a int) settle { return boolSettle(h != a) }},
			{name: "X2", settle: func(h, a int) settle { return boolSettle(h <= a) }},
		}})
	c = append(c, marketDef{id: "4703", name: "Draw No Bet", grid: fullTime, groups: []string{groupPopular},
		outcomes: []outcomeDef{
			{name: "1", settle: func(h, a int) settle { return drawPush(h > a, h, a) }},
			{name: "2", settle: func(h, a int) settle { return drawPush(h < a, h, a) }},
		}})
	c = append(c, yesNo("3795", "Both Teams To Score", fullTime, func(h, a int) bool { return h > 0 && a > 0 },
		groupPopular, groupGoals))
	for _, l := range []float64{0.5, 1.5, 2.5, 3.5, 4.5, 5.5} {
		groups := []string{groupGoals}
		if l == 2.5 {
			groups = []string{groupPopular, groupGoals}
		}
		c = append(c, overUnder("5000", "Over/Under", l, fullTime, totalGoals, groups...))
	}
	// Asian handicap: the line is the home team's handicap; whole lines
	// return the stake on a tie.
	for i := -5; i <= 5; i++ {
		l := float64(i) / 2
		c = append(c, marketDef{id: "3774", name: fmt.Sprintf("Asian Handicap %+.1f", l), line: ptr(l),
			handicap: &marketodds.Handicap{Type: "asian", Home: l, Away: -l}, grid: fullTime,
			groups: []string{groupHandicap},
			outcomes: []outcomeDef{
				{name: "1", settle: func(h, a int) settle { return handicapSettle(float64(h)+l, float64(a)) }},
				{name: "2", settle: func(h, a int) settle { return handicapSettle(float64(a), float64(h)+l) }},
			}})
	}
	// European (three-way) handicap: whole goals, a tie is the X outcome.
	for _, l := range []float64{-2, -1, 1, 2} {
		l := int(l)
		c = append(c, marketDef{id: "4724", name: fmt.Sprintf("Handicap %+d", l), line: ptr(float64(l)),
			handicap: &marketodds.Handicap{Type: "european", Home: float64(l), Away: float64(-l)}, grid: fullTime,
			groups: []string{groupHandicap},
			outcomes: []outcomeDef{
				{name: "1", settle: func(h, a int) settle { return boolSettle(h+l > a) }},
				{name: "X", settle: func(h, a int) settle { return boolSettle(h+l == a) }},
				{name: "2", settle: func(h, a int) settle { return boolSettle(h+l < a) }},
			}})
	}
	c = append(c, correctScore())
	c = append(c, halfTimeFullTime())
	c = append(c, marketDef{id: "3829", name: "Odd/Even", grid: fullTime, groups: []string{groupGoals},
		outcomes: []outcomeDef{
			{name: "Odd", settle: func(h, a int) settle { return boolSettle((h+a)%2 == 1) }},
			{name: "Even", settle: func(h, a int) settle { return boolSettle((h+a)%2 == 0) }},
		}})
	exact := marketDef{id: "3831", name: "Exact Goals", grid: fullTime, groups: []string{groupGoals}}
	for n := 0; n <= 6; n++ {
		name, cond := fmt.Sprint(n), func(t int) bool { return t == n }
		if n == 6 {
			name, cond = "6+", func(t int) bool { return t >= 6 }
		}
		exact.outcomes = append(exact.outcomes, outcomeDef{name: name,
			settle: func(h, a int) settle { return boolSettle(cond(h + a)) }})
	}
	c = append(c, exact)
	for _, l := range []float64{0.5, 1.5, 2.5} {
		c = append(c, overUnder("3832", "Home Team Over/Under", l, fullTime, homeGoals, groupGoals))
	}
	for _, l := range []float64{0.5, 1.5, 2.5} {
		c = append(c, overUnder("3833", "Away Team Over/Under", l, fullTime, awayGoals, groupGoals))
	}
	c = append(c, yesNo("3840", "Home Win To Nil", fullTime, func(h, a int) bool { return h > 0 && a == 0 }, groupSpecials))
	c = append(c, yesNo("3841", "Away Win To Nil", fullTime, func(h, a int) bool { return a > 0 && h == 0 }, groupSpecials))
	c = append(c, threeWay("3748", "1st Half 1X2", firstHalf, groupHalves))
	for _, l := range []float64{0.5, 1.5, 2.5} {
		c = append(c, overUnder("5001", "1st Half Over/Under", l, firstHalf, totalGoals, groupHalves))
	}
	c = append(c, yesNo("3797", "1st Half Both Teams To Score", firstHalf, func(h, a int) bool { return h > 0 && a > 0 },
		groupHalves))
	c = append(c, threeWay("3752", "2nd Half 1X2", secondHalf, groupHalves))
	for _, l := range []float64{0.5, 1.5} {
		c = append(c, overUnder("5002", "2nd Half Over/Under", l, secondHalf, totalGoals, groupHalves))
	}
	for _, l := range []float64{8.5, 9.5, 10.5} {
		c = append(c, countOverUnder("5100", "Total Corners", l, func(m *model) float64 { return m.corners }))
	}
	for _, l := range []float64{3.5, 4.5} {
		c = append(c, countOverUnder("5200", "Total Bookings", l, func(m *model) float64 { return m.cards }))
	}
	return c
}

func drawPush(won bool, h, a int) settle {
	if h == a {
		return push
	}
	return boolSettle(won)
}

func handicapSettle(mine, theirs float64) settle {
	switch {
	case mine > theirs:
		return win
	case mine == theirs:
		return push
	default:
		return lose
	}
}

func correctScore() marketDef {
	d := marketDef{id: "3780", name: "Correct Score", grid: fullTime, groups: []string{groupScore}}
	listed := func(h, a int) bool { return h <= 4 && a <= 4 && h+a <= 6 }
	for h := 0; h <= 4; h++ {
		for a := 0; a <= 4; a++ {
			if !listed(h, a) {
				continue
			}
			d.outcomes = append(d.outcomes, outcomeDef{name: fmt.Sprintf("%d:%d", h, a),
				settle: func(x, y int) settle { return boolSettle(x == h && y == a) }})
		}
	}
	d.outcomes = append(d.outcomes, outcomeDef{name: "Other",
		settle: func(x, y int) settle { return boolSettle(!listed(x, y)) }})
	return d
}

func halfTimeFullTime() marketDef {
	d := marketDef{id: "3808", name: "Half Time/Full Time", groups: []string{groupHalves}}
	sym := [3]string{"1", "X", "2"}
	for ht := range 3 {
		for ft := range 3 {
			d.outcomes = append(d.outcomes, outcomeDef{name: sym[ht] + "/" + sym[ft],
				prob: func(m *model) float64 { return m.htft[ht][ft] }})
		}
	}
	return d
}
