package marketodds_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The reads are checked against a reference model: a random workload of
// scrapes (changes, confirmations, disappearances and returns, over several
// days and so several partitions) is written through WriteMarketBatch in
// batches that are reordered and retried, and an in-memory replay of the
// same writes answers MarketsAt, History and OpeningClosing for many random
// times and queries. The store must answer exactly the same, in both
// confirmation modes, before and after retention drops partitions.
//
// The model is a function of what was sent, not of the order it arrived
// in: the records of a market are its distinct changes (key, CapturedAt),
// and the scrapes of an event at a bookmaker are the distinct (EventID,
// Bookmaker, CapturedAt) of the writes. Disappearances carry the market's
// last data here (changedetect sends them without, and the store copies the
// current row's data, which depends on arrival order); TestReadDisappearance
// covers the data-less form.

func TestReadMatchesModel(t *testing.T) {
	for _, mode := range []marketodds.ConfirmMode{marketodds.ConfirmMarkets, marketodds.ConfirmScrapes} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d (mode %s)", seed, mode)
			rng := rand.New(rand.NewPCG(seed, 12))
			s := newReadStore(t, &marketodds.Config{Confirm: mode})
			w := newModelWorkload(rng)
			w.apply(t, s, rng)
			m := newReadModel(w.writes)
			checkReads(t, s, m, w, rng, 150, 60, 60)

			// Retention: drop the first day (history and scrape log).
			horizon := w.start.AddDate(0, 0, 1)
			if _, err := s.DropPartitionsBefore(context.Background(), horizon); err != nil {
				t.Fatal(err)
			}
			m.horizon = horizon
			checkReads(t, s, m, w, rng, 80, 40, 40)
		})
	}
}

// checkReads compares the store's answers with the model's for random
// queries and times.
func checkReads(t *testing.T, s *testStore, m *readModel, w *modelWorkload, rng *rand.Rand, nAt, nHist, nOC int) {
	t.Helper()
	ctx := context.Background()
	fails := 0
	// go-cmp renders the difference; a plain comparison decides, at a
	// fraction of the cost (reflection is slow under -race).
	check := func(equal bool, want, got any, format string, args ...any) {
		t.Helper()
		if equal {
			return
		}
		t.Errorf(format+" (-model +store):\n%s", append(args, gocmp.Diff(want, got, cmpopts.EquateEmpty()))...)
		if fails++; fails >= 5 {
			t.FailNow()
		}
	}
	for range nAt {
		q, at := w.randomQuery(rng), w.randomTime(rng, m)
		got, err := s.MarketsAt(ctx, q, at)
		if err != nil {
			t.Fatal(err)
		}
		want := m.marketsAt(q, at)
		check(slices.EqualFunc(want, got, equalState), want, got, "MarketsAt(%+v, %s)", q, at.Format(time.RFC3339Nano))
	}
	for range nHist {
		q, from := w.randomQuery(rng), w.randomTime(rng, m)
		to := from.Add(time.Duration(rng.Int64N(int64(72*time.Hour))) + time.Microsecond).Truncate(time.Microsecond)
		if rng.IntN(4) == 0 {
			to = w.randomTime(rng, m)
			if !from.Before(to) {
				from, to = to.Add(-time.Microsecond), from.Add(time.Microsecond)
			}
		}
		got, err := s.History(ctx, q, from, to)
		if err != nil {
			t.Fatal(err)
		}
		want := m.history(q, from, to)
		check(slices.EqualFunc(want, got, equalRecord), want, got, "History(%+v, %s, %s)", q, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	for range nOC {
		q, closeAt := w.randomQuery(rng), w.randomTime(rng, m)
		got, err := s.OpeningClosing(ctx, q, closeAt)
		if err != nil {
			t.Fatal(err)
		}
		want := m.openingClosing(q, closeAt)
		check(slices.EqualFunc(want, got, func(a, b marketodds.OpenClose) bool {
			return a.Key == b.Key && equalRecord(a.Opening, b.Opening) && equalRecord(a.Closing, b.Closing)
		}), want, got, "OpeningClosing(%+v, %s)", q, closeAt.Format(time.RFC3339Nano))
	}
}

func equalState(a, b marketodds.MarketState) bool {
	return equalMarket(a.Market, b.Market) && a.ChangedAt.Equal(b.ChangedAt) && a.SeenAt.Equal(b.SeenAt) && a.Unavailable == b.Unavailable
}

func equalRecord(a, b marketodds.HistoryRecord) bool {
	return equalMarket(a.Market, b.Market) && a.CapturedAt.Equal(b.CapturedAt) && a.Unavailable == b.Unavailable
}

// equalMarket is what go-cmp with EquateEmpty says of two markets.
func equalMarket(a, b marketodds.Market) bool {
	return a.EventID == b.EventID && a.Bookmaker == b.Bookmaker && a.MarketID == b.MarketID &&
		samePointee(a.Line, b.Line) && a.Name == b.Name && slices.Equal(a.Outcomes, b.Outcomes) &&
		slices.Equal(a.Groups, b.Groups) && samePointee(a.Handicap, b.Handicap)
}

func samePointee[T comparable](a, b *T) bool { return a == b || (a != nil && b != nil && *a == *b) }

// modelMarket is one market of one (event, bookmaker) in the workload.
type modelMarket struct {
	id       string
	line     *float64
	outcomes []string
	handicap bool
	change   float64   // probability of a change per scrape
	appears  time.Time // first offered at the first scrape at or after this
	toggle   bool      // its line alternates between nil and 0 (one market)

	offered, seen bool
	last          marketodds.Market // the data last sent
}

type modelWorkload struct {
	start, end time.Time
	events     []int64
	bookmakers []string
	marketIDs  []string
	scrapes    [][]marketodds.Write // in time order, each one scrape of one (event, bookmaker)
	writes     []marketodds.Write
}

// newModelWorkload makes four days of scrapes of 3 events at 3 bookmakers,
// each scraped every 20 to 90 minutes, with ~9 markets each.
func newModelWorkload(rng *rand.Rand) *modelWorkload {
	w := &modelWorkload{
		start:      time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		events:     []int64{-7, 41, 42},
		bookmakers: []string{"bet9ja", "betpawa", "sportybet"},
	}
	w.end = w.start.AddDate(0, 0, 4)
	type scrape struct {
		at     time.Time
		writes []marketodds.Write
	}
	var all []scrape
	for _, ev := range w.events {
		for _, book := range w.bookmakers {
			markets := w.markets(rng)
			first := w.start.Add(time.Duration(rng.Int64N(int64(time.Hour)))).Truncate(time.Microsecond)
			for at := first; at.Before(w.end); {
				if ws := scrapeOnce(rng, ev, book, markets, at); len(ws) > 0 {
					all = append(all, scrape{at, ws})
				}
				next := at.Add(20*time.Minute + time.Duration(rng.Int64N(int64(70*time.Minute))))
				next = next.Truncate(time.Second).Add(time.Duration(rng.IntN(1_000_000)) * time.Microsecond)
				// Now and then a scrape exactly at a partition boundary.
				if day := next.Truncate(24 * time.Hour); day.After(at) && rng.IntN(3) == 0 {
					next = day
				}
				at = next
			}
		}
	}
	slices.SortStableFunc(all, func(a, b scrape) int { return a.at.Compare(b.at) })
	for _, sc := range all {
		w.scrapes = append(w.scrapes, sc.writes)
		w.writes = append(w.writes, sc.writes...)
	}
	for _, m := range w.markets(rng) {
		if !slices.Contains(w.marketIDs, m.id) {
			w.marketIDs = append(w.marketIDs, m.id)
		}
	}
	return w
}

func (w *modelWorkload) markets(rng *rand.Rand) []*modelMarket {
	l := func(f float64) *float64 { return &f }
	day := 24 * time.Hour
	return []*modelMarket{
		{id: "1X2", outcomes: []string{"1", "X", "2"}, change: 0.12},
		{id: "OU", line: l(1.5), outcomes: []string{"Over", "Under"}, change: 0.08},
		{id: "OU", line: l(2.5), outcomes: []string{"Over", "Under"}, change: 0.1},
		{id: "OU", line: l(3.5), outcomes: []string{"Over", "Under"}, change: 0.05,
			appears: w.start.Add(time.Duration(rng.Int64N(int64(3 * day))))},
		{id: "AH", line: l(0), outcomes: []string{"1", "2"}, handicap: true, change: 0.1, toggle: true},
		{id: "AH", line: l(-0.5), outcomes: []string{"1", "2"}, handicap: true, change: 0.07},
		{id: "BTTS", outcomes: []string{"Yes", "No"}, change: 0.04},
		// Changes rarely: its state at T often sits days back.
		{id: "CS", outcomes: []string{"1-0", "0-0", "0-1", "1-1"}, change: 0.004},
		{id: "DC", outcomes: []string{"1X", "12", "X2"}, change: 0.06,
			appears: w.start.Add(time.Duration(rng.Int64N(int64(2 * day))))},
	}
}

// scrapeOnce is one scrape of one (event, bookmaker): every offered market
// (changed or confirmed), and a disappearance for each market gone since
// the last scrape, as changedetect would classify them.
func scrapeOnce(rng *rand.Rand, event int64, book string, markets []*modelMarket, at time.Time) []marketodds.Write {
	var ws []marketodds.Write
	for _, mm := range markets {
		switch {
		case at.Before(mm.appears):
		case !mm.seen || (!mm.offered && rng.Float64() < 0.2):
			mm.seen, mm.offered = true, true
			mm.last = mm.data(rng, event, book)
			ws = append(ws, marketodds.Write{Market: mm.last, CapturedAt: at, Changed: true})
		case !mm.offered:
		case rng.Float64() < 0.02:
			mm.offered = false
			ws = append(ws, marketodds.Write{Market: mm.last, CapturedAt: at, Changed: true, Unavailable: true})
		case rng.Float64() < mm.change:
			mm.last = mm.data(rng, event, book)
			ws = append(ws, marketodds.Write{Market: mm.last, CapturedAt: at, Changed: true})
		default:
			ws = append(ws, marketodds.Write{Market: mm.last, CapturedAt: at})
		}
	}
	return ws
}

// data is a fresh version of the market: new odds, sometimes a suspended
// outcome, and for the toggling market a nil or 0 line.
func (mm *modelMarket) data(rng *rand.Rand, event int64, book string) marketodds.Market {
	m := marketodds.Market{EventID: event, Bookmaker: book, MarketID: mm.id, Line: mm.line,
		Name: mm.id + " | Full Time", Groups: []string{"main"}}
	if mm.toggle && rng.IntN(2) == 0 {
		m.Line = nil
	}
	if rng.IntN(5) == 0 {
		m.Groups = append(m.Groups, "popular")
	}
	for _, name := range mm.outcomes {
		m.Outcomes = append(m.Outcomes, marketodds.Outcome{Name: name,
			Odds: 1.01 + float64(rng.IntN(900))/100, Suspended: rng.IntN(25) == 0})
	}
	if mm.handicap {
		line := 0.0
		if m.Line != nil {
			line = *m.Line
		}
		m.Handicap = &marketodds.Handicap{Type: "asian", Home: line, Away: -line}
	}
	return m
}

// apply writes the scrapes in batches of one to five consecutive scrapes
// (so that an event's scrapes never go to batches out of their time order),
// swaps neighbouring batches now and then (a batch that failed and was
// retried after the next), and sends some batches twice.
func (w *modelWorkload) apply(t *testing.T, s *testStore, rng *rand.Rand) {
	t.Helper()
	var batches [][]marketodds.Write
	for i := 0; i < len(w.scrapes); {
		n := 1 + rng.IntN(5)
		var b []marketodds.Write
		for ; n > 0 && i < len(w.scrapes); n, i = n-1, i+1 {
			b = append(b, w.scrapes[i]...)
		}
		batches = append(batches, b)
	}
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	for i := 0; i+1 < len(order); i++ {
		if rng.IntN(8) == 0 {
			order[i], order[i+1] = order[i+1], order[i]
			i++
		}
	}
	for i := 0; i < len(order); i++ {
		if rng.IntN(20) == 0 {
			j := min(len(order), i+1+rng.IntN(4))
			order = slices.Insert(order, j, order[i])
			i++
		}
	}
	ctx := context.Background()
	for _, i := range order {
		res, err := s.WriteMarketBatch(ctx, marketodds.Batch{Writes: batches[i], Index: i})
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if len(res.Rejected) > 0 {
			t.Fatalf("batch %d: rejected %v", i, res.Rejected[0].Err)
		}
	}
	t.Logf("%d writes in %d scrapes, %d batches sent %d times", len(w.writes), len(w.scrapes), len(batches), len(order))
}

// randomQuery names one to three events (sometimes one without markets),
// and sometimes a few bookmakers or market ids (sometimes unknown ones).
func (w *modelWorkload) randomQuery(rng *rand.Rand) marketodds.Query {
	var q marketodds.Query
	pick := func(n int) []int { return rng.Perm(n)[:1+rng.IntN(n)] }
	for _, i := range pick(len(w.events)) {
		q.EventIDs = append(q.EventIDs, w.events[i])
	}
	if rng.IntN(6) == 0 {
		q.EventIDs = append(q.EventIDs, 99)
	}
	if rng.IntN(3) == 0 {
		for _, i := range pick(len(w.bookmakers)) {
			q.Bookmakers = append(q.Bookmakers, w.bookmakers[i])
		}
		if rng.IntN(4) == 0 {
			q.Bookmakers = append(q.Bookmakers, "nobody")
		}
	}
	if rng.IntN(3) == 0 {
		for _, i := range pick(len(w.marketIDs)) {
			q.MarketIDs = append(q.MarketIDs, w.marketIDs[i])
		}
	}
	return q
}

// randomTime is a time in or around the workload, often one that matters:
// a change (or a microsecond either side), a scrape, a partition boundary,
// or far after everything (the reads that need only the current table).
func (w *modelWorkload) randomTime(rng *rand.Rand, m *readModel) time.Time {
	var t time.Time
	switch rng.IntN(8) {
	case 0, 1, 2:
		span := w.end.Sub(w.start) + 4*time.Hour
		t = w.start.Add(-2*time.Hour + time.Duration(rng.Int64N(int64(span))))
	case 3, 4:
		ws := w.writes[rng.IntN(len(w.writes))]
		t = ws.CapturedAt.Add(time.Duration(rng.IntN(3)-1) * time.Microsecond)
	case 5:
		t = w.writes[rng.IntN(len(w.writes))].CapturedAt
	case 6:
		t = w.start.AddDate(0, 0, rng.IntN(5)).Add(time.Duration(rng.IntN(3)-1) * time.Microsecond)
	default:
		t = w.end.AddDate(0, 0, 30)
	}
	return t.Truncate(time.Microsecond)
}

// readModel answers the reads from the writes alone.
type readModel struct {
	keys    []marketodds.Key
	changes map[marketodds.Key][]marketodds.HistoryRecord // by CapturedAt
	scrapes map[modelBook][]time.Time                     // sorted

	// Retention: records and scrapes before horizon are gone, except each
	// market's newest change (its current row holds it) and each event and
	// bookmaker's newest scrape (market_scrapes).
	horizon time.Time
}

type modelBook struct {
	event int64
	book  string
}

func newReadModel(writes []marketodds.Write) *readModel {
	m := &readModel{changes: make(map[marketodds.Key][]marketodds.HistoryRecord), scrapes: make(map[modelBook][]time.Time)}
	seen := make(map[marketodds.Key]bool)
	for _, w := range writes {
		k := w.Key()
		if !seen[k] {
			seen[k] = true
			m.keys = append(m.keys, k)
		}
		bk := modelBook{w.EventID, w.Bookmaker}
		if !slices.ContainsFunc(m.scrapes[bk], w.CapturedAt.Equal) {
			m.scrapes[bk] = append(m.scrapes[bk], w.CapturedAt)
		}
		if w.Changed && !slices.ContainsFunc(m.changes[k], func(h marketodds.HistoryRecord) bool { return h.CapturedAt.Equal(w.CapturedAt) }) {
			m.changes[k] = append(m.changes[k], marketodds.HistoryRecord{Market: w.Market, CapturedAt: w.CapturedAt, Unavailable: w.Unavailable})
		}
	}
	slices.SortFunc(m.keys, marketodds.Key.Compare)
	for k := range m.changes {
		slices.SortFunc(m.changes[k], func(a, b marketodds.HistoryRecord) int { return a.CapturedAt.Compare(b.CapturedAt) })
	}
	for bk := range m.scrapes {
		slices.SortFunc(m.scrapes[bk], time.Time.Compare)
	}
	return m
}

// records are a market's retained records, oldest first.
func (m *readModel) records(k marketodds.Key) []marketodds.HistoryRecord {
	all := m.changes[k]
	var out []marketodds.HistoryRecord
	for i, h := range all {
		if !h.CapturedAt.Before(m.horizon) || i == len(all)-1 {
			out = append(out, h)
		}
	}
	return out
}

func (m *readModel) selected(q marketodds.Query) []marketodds.Key {
	var out []marketodds.Key
	for _, k := range m.keys {
		if slices.Contains(q.EventIDs, k.EventID) &&
			(len(q.Bookmakers) == 0 || slices.Contains(q.Bookmakers, k.Bookmaker)) &&
			(len(q.MarketIDs) == 0 || slices.Contains(q.MarketIDs, k.MarketID)) {
			out = append(out, k)
		}
	}
	return out
}

// inForce is the index of the last record at or before at (before it when
// strict), or -1.
func modelInForce(recs []marketodds.HistoryRecord, at time.Time, strict bool) int {
	i := -1
	for j, h := range recs {
		if h.CapturedAt.After(at) || (strict && h.CapturedAt.Equal(at)) {
			break
		}
		i = j
	}
	return i
}

func (m *readModel) marketsAt(q marketodds.Query, at time.Time) []marketodds.MarketState {
	var out []marketodds.MarketState
	for _, k := range m.selected(q) {
		recs := m.records(k)
		i := modelInForce(recs, at, false)
		if i < 0 {
			continue
		}
		h := recs[i]
		st := marketodds.MarketState{Market: h.Market, ChangedAt: h.CapturedAt, SeenAt: h.CapturedAt, Unavailable: h.Unavailable}
		scrapes := m.scrapes[modelBook{k.EventID, k.Bookmaker}]
		for j, sc := range scrapes {
			kept := !sc.Before(m.horizon) || j == len(scrapes)-1
			if kept && !sc.After(at) && sc.After(st.SeenAt) {
				st.SeenAt = sc
			}
		}
		out = append(out, st)
	}
	return out
}

func (m *readModel) history(q marketodds.Query, from, to time.Time) []marketodds.HistoryRecord {
	var out []marketodds.HistoryRecord
	for _, k := range m.selected(q) {
		recs := m.records(k)
		if i := modelInForce(recs, from, true); i >= 0 {
			out = append(out, recs[i])
		}
		for _, h := range recs {
			if !h.CapturedAt.Before(from) && h.CapturedAt.Before(to) {
				out = append(out, h)
			}
		}
	}
	return out
}

func (m *readModel) openingClosing(q marketodds.Query, closeAt time.Time) []marketodds.OpenClose {
	var out []marketodds.OpenClose
	for _, k := range m.selected(q) {
		recs := m.records(k)
		if i := modelInForce(recs, closeAt, false); i >= 0 {
			out = append(out, marketodds.OpenClose{Key: k, Opening: recs[0], Closing: recs[i]})
		}
	}
	return out
}
