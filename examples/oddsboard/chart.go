package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The line-movement chart of one market: the odds of every outcome at every
// bookmaker over a window of time, as inline SVG built here and drawn by
// the template. Odds hold between two changes, so each line is a step
// line; the y axis is logarithmic, so that a move of 10% looks the same at
// odds of 1.5 and of 15.

// Chart geometry, in SVG user units (the SVG scales to the page width).
const (
	chartW      = 1000.0
	chartH      = 470.0
	plotLeft    = 64.0
	plotRight   = chartW - 20
	laneTop     = 8.0 // the lanes that show each bookmaker's unavailable periods
	laneH       = 12.0
	laneGap     = 3.0
	plotBottom  = chartH - 46
	maxTicks    = 8
	pointRadius = 2.6
)

// palette colours the outcomes (in order of first appearance); dashes tell
// the bookmakers apart.
var (
	palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
		"#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#ad494a"}
	dashes = []string{"", "8 4", "2 3", "12 3 2 3"}
)

type chartPoint struct {
	T         time.Time
	Odds      float64
	Suspended bool
	X, Y      float64
}

// chartSeries is one bookmaker's odds of one outcome.
type chartSeries struct {
	Bookmaker, Outcome string
	Color, Dash        string
	Points             []chartPoint
	Polyline           string // the step line's vertices, "x,y x,y ..."
}

// chartBand is a period during which one bookmaker did not offer the
// market.
type chartBand struct {
	Bookmaker     string
	From, To      time.Time
	X, W          float64
	LaneY         float64
	Open, Closing bool // open at the window's start; still open at its end
}

type chartLane struct {
	Bookmaker string
	Y         float64
}

type chartTick struct {
	Pos   float64
	Label string
}

// chartMark is an opening or closing price.
type chartMark struct {
	Kind               string // "opening" or "closing"
	Bookmaker, Outcome string
	T                  time.Time
	Odds               float64
	X, Y               float64
	Color              string
	Path               string // the marker's outline
}

type chartLegend struct {
	Outcomes   []legendItem
	Bookmakers []legendItem
}

type legendItem struct {
	Name, Color, Dash string
}

type chartView struct {
	W, H                  float64
	Left, Right, Top, Bot float64
	From, To              time.Time
	Series                []chartSeries
	Bands                 []chartBand
	Lanes                 []chartLane
	XTicks, YTicks        []chartTick
	Marks                 []chartMark
	Kickoff               time.Time // zero: unknown
	KickoffX              float64
	HasKickoff            bool // within the window
	Legend                chartLegend
	Empty                 bool // no point to draw
	YLabel, XLabel        string
	MinOdds, MaxOdds      float64
	PointCount            int
}

// chartInput is what a chart is built from.
type chartInput struct {
	From, To time.Time
	// Records are one market's history (any number of bookmakers) as
	// reader.History returns it for [From, To): by key, then captured_at.
	Records []marketodds.HistoryRecord
	// Marks are the opening and closing prices to mark; those outside the
	// window or of an unavailable market are left out.
	Openings, Closings []marketodds.HistoryRecord
	// ClosingAt is where the closing marks go (kick-off, or the window's
	// end while the market is still open).
	ClosingAt time.Time
	// Kickoff, when not zero and within the window, is drawn as a line.
	Kickoff time.Time
}

// buildChart lays the chart out. Each record that is available gives one
// point to the line of each of its outcomes, at its captured_at (the
// record in force at From, at From); each unavailable one starts a shaded
// period that the next available one ends.
func buildChart(in chartInput) chartView {
	cv := chartView{W: chartW, H: chartH, Left: plotLeft, Right: plotRight, Bot: plotBottom, From: in.From, To: in.To,
		XLabel: "simulated time (UTC)", YLabel: "decimal odds (log scale)"}

	var books, outcomes []string
	index := func(list *[]string, s string) int {
		if i := slices.Index(*list, s); i >= 0 {
			return i
		}
		*list = append(*list, s)
		return len(*list) - 1
	}
	for _, r := range in.Records {
		index(&books, r.Bookmaker)
		for _, o := range r.Outcomes {
			index(&outcomes, o.Name)
		}
	}
	slices.Sort(books)
	cv.Top = laneTop + float64(len(books))*(laneH+laneGap) + 10
	for i, b := range books {
		cv.Lanes = append(cv.Lanes, chartLane{Bookmaker: b, Y: laneTop + float64(i)*(laneH+laneGap)})
	}
	laneOf := func(b string) float64 { return cv.Lanes[slices.Index(books, b)].Y }

	// Series and bands, in data terms first.
	type skey struct{ book, outcome string }
	series := make(map[skey]*chartSeries)
	var order []skey
	var bandStart = make(map[string]time.Time) // bookmaker -> start of its open band
	at := func(t time.Time) time.Time {
		if t.Before(in.From) {
			return in.From
		}
		return t
	}
	for _, r := range in.Records {
		t := at(r.CapturedAt)
		if r.Unavailable {
			if _, open := bandStart[r.Bookmaker]; !open {
				bandStart[r.Bookmaker] = t
			}
			continue
		}
		if start, open := bandStart[r.Bookmaker]; open {
			cv.Bands = append(cv.Bands, chartBand{Bookmaker: r.Bookmaker, From: start, To: t,
				Open: start.Equal(in.From)})
			delete(bandStart, r.Bookmaker)
		}
		for _, o := range r.Outcomes {
			k := skey{r.Bookmaker, o.Name}
			s := series[k]
			if s == nil {
				s = &chartSeries{Bookmaker: r.Bookmaker, Outcome: o.Name}
				series[k] = s
				order = append(order, k)
			}
			s.Points = append(s.Points, chartPoint{T: t, Odds: o.Odds, Suspended: o.Suspended})
		}
	}
	for _, b := range books {
		if start, open := bandStart[b]; open {
			cv.Bands = append(cv.Bands, chartBand{Bookmaker: b, From: start, To: in.To, Open: start.Equal(in.From),
				Closing: true})
		}
	}

	// Marks, where they fall within the window.
	addMarks := func(kind string, recs []marketodds.HistoryRecord, place func(marketodds.HistoryRecord) time.Time) {
		for _, r := range recs {
			t := place(r)
			if r.Unavailable || t.Before(in.From) || t.After(in.To) {
				continue
			}
			for _, o := range r.Outcomes {
				cv.Marks = append(cv.Marks, chartMark{Kind: kind, Bookmaker: r.Bookmaker, Outcome: o.Name, T: t, Odds: o.Odds})
			}
		}
	}
	addMarks("opening", in.Openings, func(r marketodds.HistoryRecord) time.Time { return r.CapturedAt })
	addMarks("closing", in.Closings, func(marketodds.HistoryRecord) time.Time { return in.ClosingAt })

	// Scales.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			lo, hi = math.Min(lo, p.Odds), math.Max(hi, p.Odds)
		}
	}
	for _, m := range cv.Marks {
		lo, hi = math.Min(lo, m.Odds), math.Max(hi, m.Odds)
	}
	if math.IsInf(lo, 1) {
		cv.Empty = true
		lo, hi = 1.5, 3
	}
	if hi/lo < 1.2 { // a flat market: give it some room
		mid := math.Sqrt(lo * hi)
		lo, hi = mid/1.1, mid*1.1
	}
	lo, hi = math.Max(lo/1.04, 1.0), hi*1.04
	cv.MinOdds, cv.MaxOdds = lo, hi
	span := in.To.Sub(in.From)
	x := func(t time.Time) float64 {
		return plotLeft + (plotRight-plotLeft)*float64(t.Sub(in.From))/float64(span)
	}
	y := func(odds float64) float64 {
		return cv.Top + (plotBottom-cv.Top)*(math.Log(hi)-math.Log(odds))/(math.Log(hi)-math.Log(lo))
	}

	// Geometry.
	outcomeColor := func(o string) string { return palette[slices.Index(outcomes, o)%len(palette)] }
	bookDash := func(b string) string { return dashes[slices.Index(books, b)%len(dashes)] }
	slices.SortFunc(order, func(a, b skey) int {
		if c := strings.Compare(a.book, b.book); c != 0 {
			return c
		}
		return slices.Index(outcomes, a.outcome) - slices.Index(outcomes, b.outcome)
	})
	for _, k := range order {
		s := series[k]
		s.Color, s.Dash = outcomeColor(s.Outcome), bookDash(s.Bookmaker)
		var v strings.Builder
		vertex := func(px, py float64) { fmt.Fprintf(&v, "%s,%s ", num1(px), num1(py)) }
		for i := range s.Points {
			p := &s.Points[i]
			p.X, p.Y = x(p.T), y(p.Odds)
			if i > 0 {
				vertex(p.X, s.Points[i-1].Y) // the odds held until this change
			}
			vertex(p.X, p.Y)
		}
		last := s.Points[len(s.Points)-1]
		vertex(x(in.To), last.Y)
		s.Polyline = strings.TrimSpace(v.String())
		cv.Series = append(cv.Series, *s)
		cv.PointCount += len(s.Points)
	}
	for i := range cv.Bands {
		b := &cv.Bands[i]
		b.X, b.W, b.LaneY = x(b.From), math.Max(x(b.To)-x(b.From), 1), laneOf(b.Bookmaker)
	}
	for i := range cv.Marks {
		m := &cv.Marks[i]
		m.X, m.Y, m.Color = x(m.T), y(m.Odds), outcomeColor(m.Outcome)
		if m.Kind == "opening" { // a square
			m.Path = fmt.Sprintf("M%s %sh9v9h-9z", num1(m.X-4.5), num1(m.Y-4.5))
		} else { // a diamond
			m.Path = fmt.Sprintf("M%s %sl6 6l-6 6l-6 -6z", num1(m.X), num1(m.Y-6))
		}
	}
	cv.Kickoff = in.Kickoff
	if !in.Kickoff.IsZero() && !in.Kickoff.Before(in.From) && !in.Kickoff.After(in.To) {
		cv.HasKickoff, cv.KickoffX = true, x(in.Kickoff)
	}
	cv.XTicks = timeTicks(in.From, in.To, x)
	cv.YTicks = oddsTicks(lo, hi, y)
	for _, o := range outcomes {
		cv.Legend.Outcomes = append(cv.Legend.Outcomes, legendItem{Name: o, Color: outcomeColor(o)})
	}
	for _, b := range books {
		cv.Legend.Bookmakers = append(cv.Legend.Bookmakers, legendItem{Name: b, Dash: bookDash(b)})
	}
	return cv
}

// timeSteps are the tick spacings of the time axis.
var timeSteps = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	48 * time.Hour, 7 * 24 * time.Hour}

func timeTicks(from, to time.Time, x func(time.Time) float64) []chartTick {
	span := to.Sub(from)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= maxTicks {
			step = s
			break
		}
	}
	layout := "15:04"
	if span > 20*time.Hour {
		layout = "Jan 2 15:04"
	}
	var ticks []chartTick
	for t := from.Truncate(step); !t.After(to); t = t.Add(step) {
		if t.Before(from) {
			continue
		}
		ticks = append(ticks, chartTick{Pos: x(t), Label: t.UTC().Format(layout)})
	}
	return ticks
}

// oddsSteps are the round odds the odds axis may label.
var oddsSteps = []float64{1.01, 1.02, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2, 2.2, 2.4,
	2.6, 2.8, 3, 3.25, 3.5, 3.75, 4, 4.5, 5, 5.5, 6, 7, 8, 9, 10, 12, 15, 17, 20, 25, 30, 35, 40, 50, 60, 75,
	100, 125, 150, 200, 250, 300, 400, 500}

func oddsTicks(lo, hi float64, y func(float64) float64) []chartTick {
	var in []float64
	for _, s := range oddsSteps {
		if s >= lo && s <= hi {
			in = append(in, s)
		}
	}
	// Thin them out evenly (on the log scale they are about evenly spread),
	// keeping the highest.
	if len(in) > maxTicks {
		step := (len(in) + maxTicks - 1) / maxTicks
		var kept []float64
		for i := (len(in) - 1) % step; i < len(in); i += step {
			kept = append(kept, in[i])
		}
		in = kept
	}
	exact := len(in) >= 2
	if !exact { // a narrow range between two round odds
		in = []float64{lo * 1.01, math.Sqrt(lo * hi), hi / 1.01}
	}
	ticks := make([]chartTick, len(in))
	for i, v := range in {
		label := strconv.FormatFloat(v, 'f', -1, 64)
		if !exact {
			label = strconv.FormatFloat(v, 'f', 2, 64)
		}
		ticks[i] = chartTick{Pos: y(v), Label: label}
	}
	return ticks
}

// num1 formats a coordinate with one decimal.
func num1(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
