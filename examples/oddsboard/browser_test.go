package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/oddsledger/oddsledger/marketodds"
)

// -screenshots saves a PNG of each page the browser test visits under
// $OUT_DIR, or a new temporary directory (the test logs where):
// events.png, event.png, event-earlier.png, chart-1x2.png and
// chart-unavailable.png. testdata/oddsboard-chart.png, for the README, is
// a copy of chart-unavailable.png.
var screenshots = flag.Bool("screenshots", false, "save screenshots of the board's pages under $OUT_DIR (or a temporary directory)")

// browser is a headless Chromium with one tab, and what the tab's pages
// wrote to the console.
type browser struct {
	ctx context.Context // the tab's

	mu       sync.Mutex
	messages []string // console API calls, exceptions, and errors and warnings of the browser's log
}

// unavailable skips the test, or fails it under CI=true: a browser test
// that did not run must not pass for a green CI run.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the browser tests must run, not skip)")
	}
	t.Skip(msg + " (install Debian's chromium package, or set CHROMIUM to a Chromium or Chrome binary)")
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startBrowser starts a headless Chromium with a fresh profile; the test's
// cleanup stops it.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		unavailable(t, "no Chromium found")
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	b := &browser{}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
	})
	// The first action starts the browser (and the tab).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		unavailable(t, "Chromium (%s) did not start: %v", path, err)
	}
	b.ctx = ctx
	return b
}

// listen runs in the tab's event loop: it only records.
func (b *browser) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value))
		}
		msg = fmt.Sprintf("console.%s(%s)", ev.Type, strings.Join(args, ", "))
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level != cdplog.EntryLevelError && ev.Entry.Level != cdplog.EntryLevelWarning {
			return
		}
		msg = fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.messages = append(b.messages, msg)
}

func (b *browser) console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.messages)
}

func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	if resp.Status != 200 {
		t.Fatalf("navigate to %s: status %d", url, resp.Status)
	}
}

func evaluate[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// screenshot saves the viewport as name.png when -screenshots asks.
func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func screenshotDir(t *testing.T) string {
	if !*screenshots {
		return ""
	}
	if dir := os.Getenv("OUT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("", "oddsboard-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// gridCell is a td.odds of the event page.
type gridCell struct {
	Market      string `json:"market"`
	Line        string `json:"line"`
	Outcome     string `json:"outcome"`
	Bookmaker   string `json:"bookmaker"`
	Odds        string `json:"odds"`
	Text        string `json:"text"`
	Best        bool   `json:"best"`
	Suspended   bool   `json:"suspended"`
	Unavailable bool   `json:"unavailable"`
}

type marginCell struct {
	Market    string `json:"market"`
	Line      string `json:"line"`
	Bookmaker string `json:"bookmaker"`
	Text      string `json:"text"`
}

type gridPage struct {
	AsOf    string       `json:"asof"`
	Cells   []gridCell   `json:"cells"`
	Absent  int          `json:"absent"`
	Margins []marginCell `json:"margins"`
	Seen    [][2]string  `json:"seen"`
	Books   int          `json:"books"`
	Blocks  int          `json:"blocks"`
	Rows    int          `json:"rows"`
}

const readGrid = `(() => {
	const cells = [...document.querySelectorAll('#grid td.odds')].map(td => ({
		market: td.dataset.market, line: td.dataset.line, outcome: td.dataset.outcome, bookmaker: td.dataset.bookmaker,
		odds: td.dataset.odds, text: td.textContent.trim(), best: td.classList.contains('best'),
		suspended: td.classList.contains('suspended'), unavailable: td.classList.contains('unavailable')}));
	const margins = [...document.querySelectorAll('#grid td.margin')].map(td => ({
		market: td.closest('tbody').dataset.market, line: td.closest('tbody').dataset.line,
		bookmaker: td.dataset.bookmaker, text: td.textContent.trim()}));
	return {asof: document.getElementById('asof').dataset.asof, cells, margins,
		absent: document.querySelectorAll('#grid td.absent').length,
		seen: [...document.querySelectorAll('#grid th.book')].map(th => [th.dataset.bookmaker, th.dataset.seen]),
		books: document.querySelectorAll('#grid th.book').length,
		blocks: document.querySelectorAll('#grid tbody.market').length,
		rows: document.querySelectorAll('#grid tbody.market tr:not(.mhead)').length};
})()`

type cellKey struct{ market, line, outcome, bookmaker string }

func lineAttr(l float64) string { return strconv.FormatFloat(l, 'f', -1, 64) }

// checkGrid compares the grid with what the reader says of the event at
// the page's as-of time: one cell per market, bookmaker and outcome, with
// the same odds and state; the best prices marked where the odds are the
// highest of the bookmakers offering them; margins; seen-at times.
func checkGrid(t *testing.T, g gridPage, states []MarketState) {
	t.Helper()
	if len(states) == 0 {
		t.Fatal("the reader has no markets for the page's time")
	}
	want := make(map[cellKey]gridCell)
	best := make(map[[3]string]float64) // market, line, outcome -> best odds
	seen := make(map[string]time.Time)
	blocks := make(map[[2]string]bool)
	outcomes := make(map[[3]string]bool)
	books := make(map[string]bool)
	for _, s := range states {
		k := s.Key()
		line := lineAttr(k.Line)
		blocks[[2]string{k.MarketID, line}] = true
		books[s.Bookmaker] = true
		if s.SeenAt.After(seen[s.Bookmaker]) {
			seen[s.Bookmaker] = s.SeenAt
		}
		for _, o := range s.Outcomes {
			outcomes[[3]string{k.MarketID, line, o.Name}] = true
			want[cellKey{k.MarketID, line, o.Name, s.Bookmaker}] = gridCell{Market: k.MarketID, Line: line, Outcome: o.Name,
				Bookmaker: s.Bookmaker, Odds: strconv.FormatFloat(o.Odds, 'f', -1, 64),
				Text: strconv.FormatFloat(o.Odds, 'f', 2, 64), Suspended: o.Suspended, Unavailable: s.Unavailable}
			if !s.Unavailable && !o.Suspended {
				bk := [3]string{k.MarketID, line, o.Name}
				best[bk] = math.Max(best[bk], o.Odds)
			}
		}
	}
	got := make(map[cellKey]gridCell)
	nbest := 0
	for _, c := range g.Cells {
		k := cellKey{c.Market, c.Line, c.Outcome, c.Bookmaker}
		if _, dup := got[k]; dup {
			t.Errorf("two cells for %v", k)
		}
		isBest := c.Best
		c.Best = false
		got[k] = c
		w, ok := want[k]
		if !ok {
			t.Errorf("cell %v: not in the reader's markets", k)
			continue
		}
		if c != w {
			t.Errorf("cell %v: page %+v, reader %+v", k, c, w)
		}
		odds, _ := strconv.ParseFloat(c.Odds, 64)
		wantBest := !w.Suspended && !w.Unavailable && odds == best[[3]string{c.Market, c.Line, c.Outcome}]
		if isBest != wantBest {
			t.Errorf("cell %v (odds %s, best %v): marked best %v, want %v", k, c.Odds, best[[3]string{c.Market, c.Line, c.Outcome}],
				isBest, wantBest)
		}
		if isBest {
			nbest++
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("no cell for %v", k)
		}
	}
	if len(g.Cells) != len(want) || nbest == 0 {
		t.Errorf("%d cells (%d best), want %d", len(g.Cells), nbest, len(want))
	}
	// The rest of the rows are cells of bookmakers without the market.
	if g.Blocks != len(blocks) || g.Books != len(books) || g.Rows != len(outcomes) ||
		g.Absent != len(outcomes)*len(books)-len(want) {
		t.Errorf("grid of %d markets, %d bookmakers, %d outcome rows, %d empty cells; want %d, %d, %d, %d",
			g.Blocks, g.Books, g.Rows, g.Absent, len(blocks), len(books), len(outcomes), len(outcomes)*len(books)-len(want))
	}
	// Margins: one per market and bookmaker.
	margins := make(map[[3]string]string)
	for _, m := range g.Margins {
		margins[[3]string{m.Market, m.Line, m.Bookmaker}] = m.Text
	}
	for _, s := range states {
		k := s.Key()
		text := margins[[3]string{k.MarketID, lineAttr(k.Line), s.Bookmaker}]
		sum, complete := 0.0, len(s.Outcomes) > 1
		for _, o := range s.Outcomes {
			sum += 1 / o.Odds
			complete = complete && !o.Suspended
		}
		wantText := "margin " + strconv.FormatFloat((sum-1)*100, 'f', 1, 64) + "%"
		if !complete {
			wantText = "margin n/a"
		}
		if s.Unavailable {
			wantText = "unavailable since " + s.ChangedAt.UTC().Format("15:04:05")
		}
		if text != wantText {
			t.Errorf("margin of %v: %q, want %q", k, text, wantText)
		}
	}
	for _, s := range g.Seen {
		if w := seen[s[0]].UTC().Format(time.RFC3339Nano); s[1] != w {
			t.Errorf("%s seen at %s, want %s", s[0], s[1], w)
		}
	}
}

// chartPage is what the market page's chart shows.
type chartPage struct {
	From    string         `json:"from"`
	To      string         `json:"to"`
	Kickoff string         `json:"kickoff"`
	Lines   []chartLine    `json:"lines"`
	Points  []chartPt      `json:"points"`
	Bands   []string       `json:"bands"`
	Marks   map[string]int `json:"marks"`
	XTicks  []string       `json:"xticks"`
	YTicks  []string       `json:"yticks"`
	Legend  []string       `json:"legend"`
	Outside int            `json:"outside"`
}

type chartLine struct {
	Bookmaker string `json:"bookmaker"`
	Outcome   string `json:"outcome"`
	Points    int    `json:"points"`
	Vertices  int    `json:"vertices"`
}

type chartPt struct {
	Bookmaker string `json:"bookmaker"`
	Outcome   string `json:"outcome"`
	Odds      string `json:"odds"`
	T         string `json:"t"`
	Suspended bool   `json:"suspended"`
}

const readChart = `(() => {
	const svg = document.getElementById('chart');
	const ds = sel => [...svg.querySelectorAll(sel)];
	const axisX = ds('line.axis')[1], axisY = ds('line.axis')[0];
	const left = +axisY.getAttribute('x1'), bottom = +axisX.getAttribute('y1'), right = +axisX.getAttribute('x2'),
		top = +axisY.getAttribute('y1');
	const points = ds('circle.point');
	return {from: svg.dataset.from, to: svg.dataset.to, kickoff: svg.dataset.kickoff || '',
		lines: ds('polyline.series').map(p => ({bookmaker: p.dataset.bookmaker, outcome: p.dataset.outcome,
			points: +p.dataset.points, vertices: p.getAttribute('points').trim().split(/\s+/).length})),
		points: points.map(c => ({bookmaker: c.dataset.bookmaker, outcome: c.dataset.outcome, odds: c.dataset.odds,
			t: c.dataset.t, suspended: c.classList.contains('suspended')})),
		outside: points.filter(c => +c.getAttribute('cx') < left - 0.1 || +c.getAttribute('cx') > right + 0.1 ||
			+c.getAttribute('cy') < top - 0.1 || +c.getAttribute('cy') > bottom + 0.1).length,
		bands: ds('rect.unavailable').map(r => r.dataset.bookmaker),
		marks: {opening: ds('path.mark.opening').length, closing: ds('path.mark.closing').length},
		xticks: ds('text.xtick').map(e => e.textContent), yticks: ds('text.ytick').map(e => e.textContent),
		legend: [...document.querySelectorAll('#legend .group')].map(e => e.textContent.replace(/\s+/g, ' ').trim())};
})()`

// checkChart compares the chart with the reader's history of the market
// over the chart's window: one line per bookmaker and outcome, with one
// point per change plus the state at the window's start, unavailable
// periods shaded, opening and closing marked.
func checkChart(t *testing.T, c chartPage, hist []marketodds.HistoryRecord, marks map[string]int) {
	t.Helper()
	from, err := time.Parse(time.RFC3339Nano, c.From)
	if err != nil {
		t.Fatalf("chart window: %v", err)
	}
	type skey struct{ book, outcome string }
	want := make(map[skey][]chartPt)
	bands := make(map[string]int)
	unavailable := make(map[string]bool)
	for _, h := range hist {
		if h.Unavailable {
			if !unavailable[h.Bookmaker] {
				bands[h.Bookmaker]++
			}
			unavailable[h.Bookmaker] = true
			continue
		}
		unavailable[h.Bookmaker] = false
		at := h.CapturedAt
		if at.Before(from) {
			at = from
		}
		for _, o := range h.Outcomes {
			k := skey{h.Bookmaker, o.Name}
			want[k] = append(want[k], chartPt{Bookmaker: h.Bookmaker, Outcome: o.Name,
				Odds: strconv.FormatFloat(o.Odds, 'f', -1, 64), T: at.UTC().Format(time.RFC3339Nano), Suspended: o.Suspended})
		}
	}
	if len(c.Lines) != len(want) {
		t.Errorf("%d lines, want one per bookmaker and outcome: %d", len(c.Lines), len(want))
	}
	for _, l := range c.Lines {
		w := want[skey{l.Bookmaker, l.Outcome}]
		if l.Points != len(w) || l.Vertices != 2*len(w) {
			t.Errorf("line %s %s: %d points, %d vertices; want %d points (a step line: %d vertices)",
				l.Bookmaker, l.Outcome, l.Points, l.Vertices, len(w), 2*len(w))
		}
	}
	got := make(map[skey][]chartPt)
	for _, p := range c.Points {
		k := skey{p.Bookmaker, p.Outcome}
		got[k] = append(got[k], p)
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("points of %s %s:\n page   %v\n reader %v", k.book, k.outcome, got[k], w)
		}
	}
	if c.Outside != 0 {
		t.Errorf("%d points outside the plot area", c.Outside)
	}
	gotBands := make(map[string]int)
	for _, b := range c.Bands {
		gotBands[b]++
	}
	if !maps.Equal(gotBands, bands) {
		t.Errorf("unavailable periods shaded %v, want %v", gotBands, bands)
	}
	if c.Marks["opening"] != marks["opening"] || c.Marks["closing"] != marks["closing"] {
		t.Errorf("marks %v, want %v", c.Marks, marks)
	}
	if len(c.XTicks) < 2 || len(c.YTicks) < 2 {
		t.Errorf("axes labelled %v and %v: want times and odds", c.XTicks, c.YTicks)
	}
	for _, y := range c.YTicks {
		if v, err := strconv.ParseFloat(y, 64); err != nil || v < 1 {
			t.Errorf("odds axis label %q", y)
		}
	}
	for _, x := range c.XTicks {
		if _, err := time.Parse("15:04", x[max(0, len(x)-5):]); err != nil {
			t.Errorf("time axis label %q", x)
		}
	}
	if len(c.Legend) != 3 || !strings.HasPrefix(c.Legend[0], "Outcomes:") || !strings.HasPrefix(c.Legend[1], "Bookmakers:") {
		t.Errorf("legend %q", c.Legend)
	}
}

// TestBoardInBrowser drives the board's three pages in headless Chromium
// and checks what they show against the board's reader.
func TestBoardInBrowser(t *testing.T) {
	t.Parallel()
	board := startBoard(t)
	br := startBrowser(t)
	shots := screenshotDir(t)
	ctx := context.Background()
	fixtures := board.vars(t)
	if fixtures.Events == 0 {
		t.Fatal("no events")
	}
	now, err := time.Parse(time.RFC3339, fixtures.SimulatedTime)
	if err != nil {
		t.Fatal(err)
	}

	// The events page: every event with its bookmakers' last scrapes.
	br.navigate(t, board.url)
	type eventRow struct {
		ID      string      `json:"id"`
		Kickoff string      `json:"kickoff"`
		Scrapes [][2]string `json:"scrapes"`
	}
	rows := evaluate[[]eventRow](t, br, `[...document.querySelectorAll('tr.event')].map(tr => ({id: tr.dataset.event,
		kickoff: tr.dataset.kickoff,
		scrapes: [...tr.querySelectorAll('td.scraped')].map(td => [td.dataset.bookmaker, td.dataset.at || ''])}))`)
	if len(rows) != fixtures.Events {
		t.Fatalf("events page lists %d events, /debug/vars %d", len(rows), fixtures.Events)
	}
	var ids []int64
	for _, r := range rows {
		id, _ := strconv.ParseInt(r.ID, 10, 64)
		ids = append(ids, id)
	}
	scrapes, err := board.reader.Scrapes(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var wantScrapes, gotScrapes []string
	for _, s := range scrapes {
		wantScrapes = append(wantScrapes, fmt.Sprintf("%d %s %s", s.EventID, s.Bookmaker, s.LastScrapedAt.UTC().Format(time.RFC3339Nano)))
	}
	for _, r := range rows {
		for _, s := range r.Scrapes {
			gotScrapes = append(gotScrapes, fmt.Sprintf("%s %s %s", r.ID, s[0], s[1]))
		}
	}
	slices.Sort(gotScrapes)
	if !slices.Equal(gotScrapes, wantScrapes) || len(wantScrapes) != 3*len(rows) {
		t.Errorf("last scrapes on the page:\n%v\nreader:\n%v", gotScrapes, wantScrapes)
	}
	br.screenshot(t, shots, "events")

	// The event page, latest. The event: one that kicked off while it was
	// scraped, so that its charts have a kick-off and closing odds (the
	// most changed one, if none did).
	hist, err := board.reader.History(ctx, Query{EventIDs: ids}, now.Add(-24*time.Hour), now.Add(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	changes := make(map[int64]int)
	first := now
	for _, h := range hist {
		changes[h.EventID]++
		if h.CapturedAt.Before(first) {
			first = h.CapturedAt
		}
	}
	id := slices.MaxFunc(ids, func(a, b int64) int { return cmp.Compare(changes[a], changes[b]) })
	for i, r := range rows {
		kickoff, err := time.Parse(time.RFC3339Nano, r.Kickoff)
		if err != nil {
			t.Fatalf("event %s kicks off at %q: %v", r.ID, r.Kickoff, err)
		}
		if kickoff.After(first.Add(15*time.Minute)) && kickoff.Before(now.Add(-15*time.Minute)) {
			id = ids[i]
			break
		}
	}
	eventURL := fmt.Sprintf("%sevents/%d", board.url, id)
	br.navigate(t, eventURL)
	latest := evaluate[gridPage](t, br, readGrid)
	asOf, err := time.Parse(time.RFC3339Nano, latest.AsOf)
	if err != nil || !asOf.Equal(now) {
		t.Fatalf("the grid is as of %q (%v), want the board's now, %s", latest.AsOf, err, now)
	}
	states, err := board.reader.MarketsAt(ctx, Query{EventIDs: []int64{id}}, asOf)
	if err != nil {
		t.Fatal(err)
	}
	checkGrid(t, latest, states)
	br.screenshot(t, shots, "event")

	// As of an earlier time: a change in the middle of the event's history,
	// entered in the form's field and submitted.
	var times []time.Time
	for _, h := range hist {
		if h.EventID == id {
			times = append(times, h.CapturedAt)
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	earlier := times[len(times)/2].Truncate(time.Second)
	if err := chromedp.Do(br.ctx, chromedp.SetValue(chromedp.ID("at"), earlier.Format("2006-01-02T15:04:05"))); err != nil {
		t.Fatalf("as-of field: %v", err)
	}
	if _, err := chromedp.Run(br.ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS("#asof-form button")))); err != nil {
		t.Fatalf("as-of form: %v", err)
	}
	loc := evaluate[string](t, br, `document.location.search`)
	if !strings.Contains(loc, "at=") {
		t.Errorf("the as-of form went to %q", loc)
	}
	past := evaluate[gridPage](t, br, readGrid)
	if past.AsOf != earlier.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("as of %q, want %s", past.AsOf, earlier)
	}
	pastStates, err := board.reader.MarketsAt(ctx, Query{EventIDs: []int64{id}}, earlier)
	if err != nil {
		t.Fatal(err)
	}
	checkGrid(t, past, pastStates)
	if slices.EqualFunc(past.Cells, latest.Cells, func(a, b gridCell) bool { return a == b }) {
		t.Error("the earlier grid is the latest one")
	}
	br.screenshot(t, shots, "event-earlier")

	// Charts: the 1X2 market, and a market that was unavailable for a while.
	markets := []marketodds.Key{{EventID: id, MarketID: "3743"}}
	for _, h := range hist {
		if h.EventID == id && h.Unavailable && h.MarketID != "3743" {
			markets = append(markets, h.Key())
			break
		}
	}
	if len(markets) < 2 {
		t.Fatalf("no market of event %d was unavailable: the test needs one", id)
	}
	for i, k := range markets {
		br.navigate(t, fmt.Sprintf("%sevents/%d/markets/%s%s", board.url, id, k.MarketID, lineArg(k.Line)))
		c := evaluate[chartPage](t, br, readChart)
		from, err1 := time.Parse(time.RFC3339Nano, c.From)
		to, err2 := time.Parse(time.RFC3339Nano, c.To)
		if err1 != nil || err2 != nil || !to.Equal(now) {
			t.Fatalf("chart window %q to %q, want up to %s", c.From, c.To, now)
		}
		q := Query{EventIDs: []int64{id}, MarketIDs: []string{k.MarketID}}
		mh, err := board.reader.History(ctx, q, from, to)
		if err != nil {
			t.Fatal(err)
		}
		mh = slices.DeleteFunc(mh, func(h marketodds.HistoryRecord) bool { return h.Key().Line != k.Line })
		ocs, err := board.reader.OpeningClosing(ctx, q, to)
		if err != nil {
			t.Fatal(err)
		}
		// Opening marks: every outcome of each bookmaker's first record, when
		// it was offered. Closing marks: the same of the record in force at
		// kick-off once the match kicked off, else of the latest one (at the
		// window's end).
		closeAt := to
		if c.Kickoff != "" {
			kickoff, err := time.Parse(time.RFC3339Nano, c.Kickoff)
			if err != nil {
				t.Fatal(err)
			}
			if !kickoff.After(to) {
				closeAt = kickoff
			}
		}
		closings, err := board.reader.OpeningClosing(ctx, q, closeAt)
		if err != nil {
			t.Fatal(err)
		}
		marks := map[string]int{}
		for _, oc := range ocs {
			if oc.Key.Line == k.Line && !oc.Opening.Unavailable && !oc.Opening.CapturedAt.Before(from) {
				marks["opening"] += len(oc.Opening.Outcomes)
			}
		}
		for _, oc := range closings {
			if oc.Key.Line == k.Line && !oc.Closing.Unavailable && !closeAt.Before(from) {
				marks["closing"] += len(oc.Closing.Outcomes)
			}
		}
		checkChart(t, c, mh, marks)
		if i == 1 && len(c.Bands) == 0 {
			t.Errorf("market %v was unavailable in the window; no period is shaded", k)
		}
		br.screenshot(t, shots, []string{"chart-1x2", "chart-unavailable"}[i])
	}

	if msgs := br.console(); len(msgs) > 0 {
		t.Errorf("the pages wrote to the console:\n%s", strings.Join(msgs, "\n"))
	}
}
