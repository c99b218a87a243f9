package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oddsledger/oddsledger/marketodds"
)

var t0 = time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)

// tn is t0 plus n scrape cycles of 5 minutes.
func tn(n int) time.Time { return t0.Add(time.Duration(n) * 5 * time.Minute) }

func outs(odds ...float64) []marketodds.Outcome {
	names := []string{"1", "X", "2"}
	if len(odds) == 2 {
		names = []string{"Over", "Under"}
	}
	o := make([]marketodds.Outcome, len(odds))
	for i, v := range odds {
		o[i] = marketodds.Outcome{Name: names[i], Odds: v}
	}
	return o
}

func TestBuildChart(t *testing.T) {
	t.Parallel()
	from, to := tn(0), tn(12)
	rec := func(book string, n int, unavailable bool, o []marketodds.Outcome) marketodds.HistoryRecord {
		return marketodds.HistoryRecord{Market: marketodds.Market{EventID: 1, Bookmaker: book, MarketID: "M", Outcomes: o},
			CapturedAt: tn(n), Unavailable: unavailable}
	}
	susp := outs(2.3, 3.0, 3.3)
	susp[2].Suspended = true
	records := []marketodds.HistoryRecord{
		rec("a", -3, false, outs(2.0, 3.2, 3.8)), // in force at from: drawn at from
		rec("a", 2, true, outs(2.0, 3.2, 3.8)),   // gone: a shaded period ...
		rec("a", 4, false, susp),                 // ... until it is back
		rec("a", 10, true, susp),                 // gone until the window's end
		rec("b", 1, false, outs(2.1, 3.1, 3.6)),
	}
	cv := buildChart(chartInput{From: from, To: to, Records: records,
		Openings:  []marketodds.HistoryRecord{records[0], records[4]}, // a's before the window: not marked
		Closings:  []marketodds.HistoryRecord{records[3], records[4]}, // a's is unavailable: not marked
		ClosingAt: tn(8), Kickoff: tn(8)})
	var lines []string
	for _, s := range cv.Series {
		var pts []string
		for _, p := range s.Points {
			sp := ""
			if p.Suspended {
				sp = "s"
			}
			pts = append(pts, fmt.Sprintf("t%d:%g%s", int(p.T.Sub(t0)/(5*time.Minute)), p.Odds, sp))
			if p.X < cv.Left || p.X > cv.Right || p.Y < cv.Top || p.Y > cv.Bot {
				t.Errorf("point %v of %s %s outside the plot", p, s.Bookmaker, s.Outcome)
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s", s.Bookmaker, s.Outcome, s.Dash, strings.Join(pts, " ")))
		if n := len(strings.Fields(s.Polyline)); n != 2*len(s.Points) {
			t.Errorf("%s %s: %d vertices for %d points, want a step line: %d", s.Bookmaker, s.Outcome, n, len(s.Points),
				2*len(s.Points))
		}
	}
	want := []string{
		"a 1  t0:2 t4:2.3", "a X  t0:3.2 t4:3", "a 2  t0:3.8 t4:3.3s",
		"b 1 8 4 t1:2.1", "b X 8 4 t1:3.1", "b 2 8 4 t1:3.6",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	var bands []string
	for _, b := range cv.Bands {
		bands = append(bands, fmt.Sprintf("%s t%d-t%d", b.Bookmaker, int(b.From.Sub(t0)/(5*time.Minute)),
			int(b.To.Sub(t0)/(5*time.Minute))))
	}
	if diff := cmp.Diff([]string{"a t2-t4", "a t10-t12"}, bands); diff != "" {
		t.Errorf("bands (-want +got):\n%s", diff)
	}
	var marks []string
	for _, m := range cv.Marks {
		marks = append(marks, fmt.Sprintf("%s %s %s t%d", m.Kind, m.Bookmaker, m.Outcome, int(m.T.Sub(t0)/(5*time.Minute))))
	}
	if diff := cmp.Diff([]string{"opening b 1 t1", "opening b X t1", "opening b 2 t1", "closing b 1 t8",
		"closing b X t8", "closing b 2 t8"}, marks); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
	if !cv.HasKickoff || cv.KickoffX <= cv.Left || cv.KickoffX >= cv.Right {
		t.Errorf("kick-off line at %v (%v)", cv.KickoffX, cv.HasKickoff)
	}
	if len(cv.XTicks) < 3 || len(cv.XTicks) > maxTicks+1 || cv.XTicks[0].Label != "15:00" {
		t.Errorf("time axis: %v", cv.XTicks)
	}
	if len(cv.YTicks) < 2 || len(cv.YTicks) > maxTicks {
		t.Errorf("odds axis: %v", cv.YTicks)
	}
	for i := 1; i < len(cv.YTicks); i++ {
		if cv.YTicks[i].Pos >= cv.YTicks[i-1].Pos {
			t.Errorf("odds axis not rising: %v", cv.YTicks)
		}
	}
	if empty := buildChart(chartInput{From: from, To: to}); !empty.Empty || len(empty.Series) != 0 {
		t.Errorf("a chart without records: %+v", empty)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 14, 18, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-03-14T15:04":               time.Date(2026, 3, 14, 15, 4, 0, 0, time.UTC),
		"2026-03-14T15:04:05":            time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC),
		"2026-03-14 15:04":               time.Date(2026, 3, 14, 15, 4, 0, 0, time.UTC),
		"2026-03-14T16:04:05+01:00":      time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC),
		"2026-03-14T15:04:05.123456789Z": time.Date(2026, 3, 14, 15, 4, 5, 123456789, time.UTC),
		" 2026-03-14T18:00 ":             now,
	} {
		got, err := parseTime("at", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "now", "2026-03-14", "2026-03-14T18:00:01", "1969-07-20T20:17", "2026-13-01T00:00",
		"9999-12-31T23:59"} {
		if got, err := parseTime("at", in, now); err == nil {
			t.Errorf("parseTime(%q) = %v, want an error", in, got)
		}
	}
	if ago(90*time.Second) != "1m" || ago(3*time.Hour+5*time.Minute) != "3h05m" || ago(50*time.Hour) != "2d02h" ||
		ago(-time.Minute) != "-1m" || num(-1234567) != "-1,234,567" {
		t.Error("formatting")
	}
}
