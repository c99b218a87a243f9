package main

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"expvar"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oddsledger/oddsledger/examples/internal/cli"
	"github.com/oddsledger/oddsledger/examples/internal/feed"
	"github.com/oddsledger/oddsledger/marketodds"
)

//go:embed templates/*.html
var templateFiles embed.FS

// board serves the pages. It reads the store only through its reader.
type board struct {
	d      *driver
	r      reader
	logger *slog.Logger
	pages  map[string]*template.Template
	vars   *expvar.Map // this board's counters, served by /debug/vars
}

func newBoard(d *driver, r reader, logger *slog.Logger) *board {
	b := &board{d: d, r: r, logger: logger, pages: make(map[string]*template.Template)}
	funcs := template.FuncMap{
		"clock":    func(t time.Time) string { return t.UTC().Format("15:04:05") },
		"datetime": func(t time.Time) string { return t.UTC().Format("Mon 2 Jan 15:04") },
		"full":     func(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006 15:04:05") },
		"stamp":    func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"inputTime": func(t time.Time) string {
			return t.UTC().Format("2006-01-02T15:04:05")
		},
		"odds":  func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
		"pct":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "%" },
		"num":   num,
		"num1":  num1,
		"ago":   func(now, t time.Time) string { return ago(now.Sub(t)) },
		"attr":  func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
		"add":   func(a, b float64) float64 { return a + b },
		"sub":   func(a, b float64) float64 { return a - b },
		"mid":   func(a, b float64) float64 { return (a + b) / 2 },
		"isNaN": math.IsNaN,
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, errors.New("dict: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
	}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	for _, name := range []string{"events", "event", "market", "error"} {
		t := template.Must(base.Clone())
		b.pages[name] = template.Must(t.ParseFS(templateFiles, "templates/"+name+".html"))
	}
	b.vars = new(expvar.Map).Init()
	b.vars.Set("cycles", expvar.Func(func() any { return d.cycles() }))
	b.vars.Set("simulated_time", expvar.Func(func() any { return d.now().Format(time.RFC3339) }))
	b.vars.Set("events", expvar.Func(func() any { return len(d.events()) }))
	b.vars.Set("feed", expvar.Func(func() any {
		st := d.feed.Stats()
		return map[string]any{
			"scrapes": st.Scrapes, "markets_scraped": st.Scraped, "writes": st.Writes, "changes": st.Changed,
			"history_rows": st.HistoryAdded, "history_duplicates": st.HistoryDuplicate, "current_upserts": st.Upserted,
			"stale": st.Stale, "rejected": st.Rejected, "dropped_writes": st.DroppedWrites,
			"queue": map[string]any{"enqueued": st.Queue.Enqueued, "succeeded": st.Queue.Succeeded,
				"dropped": st.Queue.Dropped, "retries": st.Queue.Retries, "queued": st.Queue.Queued,
				"in_flight": st.Queue.InFlight},
		}
	}))
	// The store's own counters (Store.Stats), and its write calls as its
	// Config.OnBatch hook reported them to the feed.
	b.vars.Set("store", expvar.Func(func() any { return storeVars(d.feed.Store().Stats()) }))
	b.vars.Set("write_batches", expvar.Func(func() any { return batchVars(d.feed.Stats().Batches) }))
	return b
}

// storeVars is a store's Stats for /debug/vars.
func storeVars(st marketodds.Stats) map[string]int64 {
	return map[string]int64{
		"batches": st.Batches, "succeeded": st.Succeeded, "failed": st.Failed, "writes": st.Writes,
		"invalid": st.Invalid, "rows_isolated": st.RowsIsolated, "upserted": st.Upserted, "stale": st.Stale,
		"confirmed_by_scrape": st.ConfirmedByScrape, "history_added": st.HistoryAdded,
		"history_duplicate": st.HistoryDuplicate, "scrapes": st.Scrapes, "partitions_created": st.PartitionsCreated,
		"partitions_dropped": st.PartitionsDropped, "transient_errors": st.TransientErrors,
		"permanent_errors": st.PermanentErrors,
	}
}

// batchVars are the write calls for /debug/vars: count, errors, the sum of
// the batch sizes, and the durations' histogram: counts[i] is the number of
// calls that took at most bounds[i] ms (and more than the bound before);
// the last count, one past the bounds, is of the slower calls.
func batchVars(bs feed.BatchStats) map[string]any {
	return map[string]any{
		"count": bs.Count, "errors": bs.Errors, "batch_size_sum": bs.Writes,
		"duration_ms": map[string]any{
			"bounds": feed.BatchBucketsMs, "counts": bs.Buckets,
			"sum": float64(bs.Total) / float64(time.Millisecond), "max": float64(bs.Max) / float64(time.Millisecond),
		},
	}
}

func (b *board) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", b.serve("events", b.events))
	mux.HandleFunc("GET /events/{id}", b.serve("event", b.event))
	mux.HandleFunc("GET /events/{id}/markets/{market}", b.serve("market", b.market))
	mux.HandleFunc("GET /debug/vars", b.debugVars)
	mux.HandleFunc("/", b.serve("", func(*http.Request) (string, any, error) {
		return "", nil, &httpError{http.StatusNotFound, "There is no such page."}
	}))
	return mux
}

// httpError is a request the board cannot serve: its status is 4xx.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// page is what the layout shows around every page.
type page struct {
	Title string
	Now   time.Time
	Stats statsView
	Body  any
}

type statsView struct {
	Cycles int
	feed.Stats
}

// serve renders the page a handler returns, or the error page of its error:
// 4xx for a bad request, 500 (logged) for anything else. Pages are rendered
// whole before anything is written.
func (b *board) serve(name string, h func(*http.Request) (title string, body any, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		title, body, err := h(r)
		if err != nil && r.Context().Err() != nil {
			return // the client went away: nobody to answer
		}
		if err != nil {
			name, title, body = "error", "Error", err.Error()
			var he *httpError
			if errors.As(err, &he) {
				status = he.status
			} else {
				status = http.StatusInternalServerError
				b.logger.Error("page failed", "path", r.URL.Path, "err", err)
				body = "The board could not read the store; the log says why."
			}
			title = fmt.Sprintf("%d %s", status, http.StatusText(status))
		}
		var buf bytes.Buffer
		p := page{Title: title, Now: b.d.now(), Stats: statsView{Cycles: b.d.cycles(), Stats: b.d.feed.Stats()}, Body: body}
		if err := b.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
			b.logger.Error("render", "page", name, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	}
}

// debugVars serves expvar's JSON: the process's variables (cmdline,
// memstats) and this board's, under "oddsboard". The board's are kept out
// of the process-wide registry, so that several boards (tests) can run in
// one process.
func (b *board) debugVars(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	var buf bytes.Buffer
	buf.WriteString("{\n")
	expvar.Do(func(kv expvar.KeyValue) {
		fmt.Fprintf(&buf, "%q: %s,\n", kv.Key, kv.Value)
	})
	fmt.Fprintf(&buf, "%q: %s\n}\n", "oddsboard", b.vars)
	_, _ = w.Write(buf.Bytes())
}

// The events page.

type eventsView struct {
	Now        time.Time
	Bookmakers []string
	Live       []eventRow
	Upcoming   []eventRow
}

type eventRow struct {
	fixture
	Live    bool
	Minute  int
	Scrapes []scrapeCell // one per column of eventsView.Bookmakers
}

type scrapeCell struct {
	Bookmaker string
	At        time.Time
	Seen      bool
}

func (b *board) events(r *http.Request) (string, any, error) {
	now := b.d.now()
	fixtures := b.d.events()
	ids := make([]int64, len(fixtures))
	for i, f := range fixtures {
		ids[i] = f.ID
	}
	var scrapes []Scrape
	if len(ids) > 0 {
		var err error
		if scrapes, err = b.r.Scrapes(r.Context(), ids); err != nil {
			return "", nil, err
		}
	}
	v := eventsView{Now: now}
	last := make(map[int64]map[string]time.Time)
	for _, s := range scrapes {
		if last[s.EventID] == nil {
			last[s.EventID] = make(map[string]time.Time)
		}
		last[s.EventID][s.Bookmaker] = s.LastScrapedAt
		if !slices.Contains(v.Bookmakers, s.Bookmaker) {
			v.Bookmakers = append(v.Bookmakers, s.Bookmaker)
		}
	}
	slices.Sort(v.Bookmakers)
	for _, f := range fixtures {
		row := eventRow{fixture: f, Live: !now.Before(f.Kickoff)}
		if row.Live {
			row.Minute = int(now.Sub(f.Kickoff) / time.Minute)
		}
		for _, bk := range v.Bookmakers {
			at, ok := last[f.ID][bk]
			row.Scrapes = append(row.Scrapes, scrapeCell{Bookmaker: bk, At: at, Seen: ok})
		}
		if row.Live {
			v.Live = append(v.Live, row)
		} else {
			v.Upcoming = append(v.Upcoming, row)
		}
	}
	return "Events", v, nil
}

// The event page: the grid.

type eventView struct {
	Event      fixture
	Known      bool // in the fixture list (else only its id is known)
	Now, At    time.Time
	AsOf       bool // At is earlier than Now
	Status     string
	Bookmakers []bookColumn
	Markets    []marketBlock
	Cells      int
}

type bookColumn struct {
	Slug   string
	SeenAt time.Time
}

type marketBlock struct {
	MarketID string
	Line     float64
	Name     string
	Href     string
	Books    []bookMarket // one per column
	Outcomes []outcomeRow
}

// bookMarket is a market at one bookmaker: its margin, or why there is
// none.
type bookMarket struct {
	Bookmaker   string
	Offered     bool // the bookmaker ever had the market, as of At
	Unavailable bool
	Margin      float64
	ChangedAt   time.Time
	SeenAt      time.Time
}

type outcomeRow struct {
	Name  string
	Cells []oddsCell // one per column
}

type oddsCell struct {
	MarketID    string
	Line        float64
	Outcome     string
	Bookmaker   string
	Present     bool
	Odds        float64
	Suspended   bool
	Unavailable bool
	Best        bool
}

func (b *board) event(r *http.Request) (string, any, error) {
	id, err := eventID(r)
	if err != nil {
		return "", nil, err
	}
	now := b.d.now()
	at := now
	if s := r.FormValue("at"); s != "" {
		if at, err = parseTime("at", s, now); err != nil {
			return "", nil, err
		}
	}
	fx, known := b.d.fixture(id)
	states, err := b.r.MarketsAt(r.Context(), Query{EventIDs: []int64{id}}, at)
	if err != nil {
		return "", nil, err
	}
	if !known {
		if err := b.mustExist(r.Context(), id, states, at, now); err != nil {
			return "", nil, err
		}
		fx = fixture{ID: id, Home: "Event", Away: strconv.FormatInt(id, 10)}
	}
	v := eventView{Event: fx, Known: known, Now: now, At: at, AsOf: at.Before(now), Status: status(fx, known, at)}
	v.Bookmakers, v.Markets = grid(states, bestPrices(states), id)
	for _, m := range v.Markets {
		v.Cells += len(m.Outcomes) * len(v.Bookmakers)
	}
	return fx.Home + " v " + fx.Away, v, nil
}

// mustExist tells an unknown event (404) from one that has data: an event
// outside the fixture list exists when the store has markets of it.
func (b *board) mustExist(ctx context.Context, id int64, states []MarketState, at, now time.Time) error {
	if len(states) > 0 {
		return nil
	}
	if at.Before(now) {
		later, err := b.r.MarketsAt(ctx, Query{EventIDs: []int64{id}}, now)
		if err != nil {
			return err
		}
		if len(later) > 0 {
			return nil
		}
	}
	return notFound("There is no event %d: nothing of it was scraped.", id)
}

func status(f fixture, known bool, at time.Time) string {
	switch {
	case !known:
		return "not in the fixture list"
	case at.Before(f.Kickoff):
		return "kick-off in " + ago(f.Kickoff.Sub(at))
	default:
		return fmt.Sprintf("live, %d'", int(at.Sub(f.Kickoff)/time.Minute))
	}
}

// grid lays the states out: a block per market (in key order), a row per
// outcome (in the order the bookmakers list them), a column per bookmaker.
func grid(states []MarketState, best []BestPrice, eventID int64) ([]bookColumn, []marketBlock) {
	var books []bookColumn
	col := make(map[string]int)
	for _, s := range states {
		if _, ok := col[s.Bookmaker]; !ok {
			col[s.Bookmaker] = len(books)
			books = append(books, bookColumn{Slug: s.Bookmaker})
		}
		if c := &books[col[s.Bookmaker]]; s.SeenAt.After(c.SeenAt) {
			c.SeenAt = s.SeenAt
		}
	}
	slices.SortFunc(books, func(a, b bookColumn) int { return strings.Compare(a.Slug, b.Slug) })
	for i, c := range books {
		col[c.Slug] = i
	}
	type mkey struct {
		id   string
		line float64
	}
	isBest := make(map[string]bool) // market/line/outcome/bookmaker
	bestKey := func(id string, line float64, outcome, book string) string {
		return id + "\x00" + strconv.FormatFloat(line, 'g', -1, 64) + "\x00" + outcome + "\x00" + book
	}
	for _, p := range best {
		for _, bk := range p.Bookmakers {
			isBest[bestKey(p.MarketID, p.Line, p.Outcome, bk)] = true
		}
	}
	blocks := make(map[mkey]*marketBlock)
	var order []mkey
	for _, s := range states {
		k := s.Key()
		mk := mkey{k.MarketID, k.Line}
		m := blocks[mk]
		if m == nil {
			m = &marketBlock{MarketID: k.MarketID, Line: k.Line, Name: s.Name,
				Href:  fmt.Sprintf("/events/%d/markets/%s%s", eventID, k.MarketID, lineArg(k.Line)),
				Books: make([]bookMarket, len(books))}
			for i, c := range books {
				m.Books[i].Bookmaker = c.Slug
			}
			blocks[mk] = m
			order = append(order, mk)
		}
		c := col[s.Bookmaker]
		m.Books[c] = bookMarket{Bookmaker: s.Bookmaker, Offered: true, Unavailable: s.Unavailable,
			Margin: margin(s.Market), ChangedAt: s.ChangedAt, SeenAt: s.SeenAt}
		for _, o := range s.Outcomes {
			i := slices.IndexFunc(m.Outcomes, func(r outcomeRow) bool { return r.Name == o.Name })
			if i < 0 {
				i = len(m.Outcomes)
				m.Outcomes = append(m.Outcomes, outcomeRow{Name: o.Name, Cells: make([]oddsCell, len(books))})
				for j, bc := range books {
					m.Outcomes[i].Cells[j] = oddsCell{MarketID: k.MarketID, Line: k.Line, Outcome: o.Name, Bookmaker: bc.Slug}
				}
			}
			m.Outcomes[i].Cells[c] = oddsCell{MarketID: k.MarketID, Line: k.Line, Outcome: o.Name,
				Bookmaker: s.Bookmaker, Present: true, Odds: o.Odds,
				Suspended: o.Suspended, Unavailable: s.Unavailable,
				Best: isBest[bestKey(k.MarketID, k.Line, o.Name, s.Bookmaker)]}
		}
	}
	slices.SortFunc(order, func(a, b mkey) int { return cmp.Or(strings.Compare(a.id, b.id), cmp.Compare(a.line, b.line)) })
	out := make([]marketBlock, len(order))
	for i, k := range order {
		out[i] = *blocks[k]
	}
	return books, out
}

// The market page: the chart.

type marketView struct {
	Event       fixture
	Known       bool
	MarketID    string
	Line        float64
	Name        string
	EventHref   string
	Now         time.Time
	From, To    time.Time
	Chart       chartView
	Closed      bool // the match kicked off: closing odds, not the latest
	ClosingNote string
	Rows        []openCloseRow
}

type openCloseRow struct {
	Bookmaker, Outcome string
	Color, Dash        string
	Opening, Closing   float64
	OpenedAt, ClosedAt time.Time
	Move               float64 // percent, closing against opening
	HasClosing         bool
}

var marketIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func (b *board) market(r *http.Request) (string, any, error) {
	ctx := r.Context()
	id, err := eventID(r)
	if err != nil {
		return "", nil, err
	}
	marketID := r.PathValue("market")
	if !marketIDPattern.MatchString(marketID) {
		return "", nil, badRequest("%q is not a market id.", marketID)
	}
	line := 0.0
	if s := r.FormValue("line"); s != "" {
		line, err = strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(line) || math.IsInf(line, 0) {
			return "", nil, badRequest("line %q is not a number.", s)
		}
		if line == 0 {
			line = 0 // -0
		}
	}
	now := b.d.now()
	from, to := time.Time{}, now
	if s := r.FormValue("to"); s != "" {
		if to, err = parseTime("to", s, now); err != nil {
			return "", nil, err
		}
	}
	if s := r.FormValue("from"); s != "" {
		if from, err = parseTime("from", s, now); err != nil {
			return "", nil, err
		}
		if !from.Before(to) {
			return "", nil, badRequest("from (%s) must be before to (%s).", from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
	}
	fx, known := b.d.fixture(id)
	q := Query{EventIDs: []int64{id}, MarketIDs: []string{marketID}}
	oneLine := func(k marketodds.Key) bool { return k.Line == line }

	// Opening and latest as of the window's end: the market exists when it
	// has a record by then.
	ocs, err := b.r.OpeningClosing(ctx, q, to)
	if err != nil {
		return "", nil, err
	}
	ocs = slices.DeleteFunc(ocs, func(oc OpenClose) bool { return !oneLine(oc.Key) })
	if len(ocs) == 0 {
		if !known {
			if err := b.mustExist(ctx, id, nil, to, now); err != nil {
				return "", nil, err
			}
		}
		return "", nil, notFound("Event %d has no market %s%s (as of %s).", id, marketID, lineText(line),
			to.Format("2006-01-02 15:04:05 MST"))
	}
	if !known {
		fx = fixture{ID: id, Home: "Event", Away: strconv.FormatInt(id, 10)}
	}
	if from.IsZero() {
		from = ocs[0].Opening.CapturedAt
		for _, oc := range ocs {
			if oc.Opening.CapturedAt.Before(from) {
				from = oc.Opening.CapturedAt
			}
		}
		if !from.Before(to) { // a market first seen at the window's end
			from = to.Add(-time.Minute)
		}
	}
	hist, err := b.r.History(ctx, q, from, to)
	if err != nil {
		return "", nil, err
	}
	hist = slices.DeleteFunc(hist, func(h marketodds.HistoryRecord) bool { return !oneLine(h.Key()) })

	// Closing: at kick-off once the match started, else the latest odds.
	closingAt, note, closed := to, "latest: the match had not kicked off by the window's end", false
	closings := ocs
	if known && !fx.Kickoff.After(to) {
		closingAt, note, closed = fx.Kickoff, "closing: the odds at kick-off", true
		if closings, err = b.r.OpeningClosing(ctx, q, fx.Kickoff); err != nil {
			return "", nil, err
		}
		closings = slices.DeleteFunc(closings, func(oc OpenClose) bool { return !oneLine(oc.Key) })
		if len(closings) == 0 {
			note = "closing: none, the market opened after kick-off"
		}
	}
	in := chartInput{From: from, To: to, Records: hist, ClosingAt: closingAt}
	if known {
		in.Kickoff = fx.Kickoff
	}
	for _, oc := range ocs {
		in.Openings = append(in.Openings, oc.Opening)
	}
	for _, oc := range closings {
		in.Closings = append(in.Closings, oc.Closing)
	}
	v := marketView{Event: fx, Known: known, MarketID: marketID, Line: line, Name: ocs[0].Opening.Name,
		EventHref: fmt.Sprintf("/events/%d", id), Now: now, From: from, To: to, Chart: buildChart(in), Closed: closed, ClosingNote: note}
	v.Rows = openCloseRows(ocs, closings, v.Chart.Legend)
	return v.Name + " - " + fx.Home + " v " + fx.Away, v, nil
}

// openCloseRows is the table under the chart: per bookmaker and outcome,
// the opening odds and the closing (or latest) ones.
func openCloseRows(ocs, closings []OpenClose, legend chartLegend) []openCloseRow {
	style := func(items []legendItem, name string) legendItem {
		for _, it := range items {
			if it.Name == name {
				return it
			}
		}
		return legendItem{}
	}
	var rows []openCloseRow
	for _, oc := range ocs {
		var closing *marketodds.HistoryRecord
		for i := range closings {
			if closings[i].Key == oc.Key {
				closing = &closings[i].Closing
			}
		}
		for _, o := range oc.Opening.Outcomes {
			row := openCloseRow{Bookmaker: oc.Key.Bookmaker, Outcome: o.Name, Opening: o.Odds, OpenedAt: oc.Opening.CapturedAt,
				Color: style(legend.Outcomes, o.Name).Color, Dash: style(legend.Bookmakers, oc.Key.Bookmaker).Dash}
			if closing != nil && !closing.Unavailable {
				for _, c := range closing.Outcomes {
					if c.Name == o.Name {
						row.Closing, row.ClosedAt, row.HasClosing = c.Odds, closing.CapturedAt, true
						row.Move = 100 * (c.Odds/o.Odds - 1)
					}
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// Request parsing.

func eventID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequest("%q is not an event id: event ids are whole numbers.", s)
	}
	return id, nil
}

// timeLayouts are what the time fields accept: the browsers' datetime-local
// values, and RFC 3339. Times without a zone are UTC, as the board shows.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04", "2006-01-02 15:04:05", time.RFC3339Nano}

// parseTime parses a time parameter; it may not be later than now, the
// latest time the board has data for.
func parseTime(name, s string, now time.Time) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), time.UTC); err == nil {
			if t.Year() < 1970 {
				return time.Time{}, badRequest("%s %q is before 1970: nothing was scraped then.", name, s)
			}
			if t.After(now) {
				return time.Time{}, badRequest("%s %q is later than the board's latest data (%s).", name, s,
					now.Format("2006-01-02 15:04:05 MST"))
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, badRequest("%s %q is not a time: use 2006-01-02T15:04:05 (UTC) or RFC 3339.", name, s)
}

// Formatting.

// lineArg is the query string that names a market's line ("" for none).
func lineArg(line float64) string {
	if line == 0 {
		return ""
	}
	return "?line=" + strconv.FormatFloat(line, 'g', -1, 64)
}

func lineText(line float64) string {
	if line == 0 {
		return ""
	}
	return " line " + strconv.FormatFloat(line, 'g', -1, 64)
}

// ago formats a duration for people: 45s, 12m, 3h05m, 2d04h.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + ago(-d)
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// num formats n with thousands separators.
func num(n int64) string { return cli.Thousands(n) }
