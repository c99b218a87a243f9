package marketodds_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// The two confirmation modes are checked against each other and against a
// reference model: a random workload of whole scrapes, as a
// changedetect.Classifier produces them (fed in scrape order), is cut into
// batches (several scrapes per batch, some scrapes split across two) and the
// same batches are delivered to two schemas, one per mode, in several ways:
// in order, with retries, reordered, and by two concurrent writers. Every
// read (CurrentMarkets, ScanCurrent, the view market_odds_live) and every
// table the modes share (history, market_scrapes, market_scrape_log) must
// be the same in both schemas, and must hold what the per-market mode is
// meant to hold.

// newModeStore is a store migrated in a schema of its own with the given
// confirmation mode.
func newModeStore(t testing.TB, mode marketodds.ConfirmMode) *testStore {
	t.Helper()
	schema := pgtest.Schema(t)
	s, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema, Confirm: mode})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &testStore{Store: s, schema: schema, t: t}
}

// storeOnSchema is one more store (another process) on s's schema.
func (s *testStore) storeOnSchema(mode marketodds.ConfirmMode) *marketodds.Store {
	s.t.Helper()
	o, err := marketodds.NewStore(pgtest.Pool(s.t), &marketodds.Config{Schema: s.schema, Confirm: mode})
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

// rowsText returns every row of a table or view of the schema, all columns, as
// PostgreSQL prints the row, in key order.
func (s *testStore) rowsText(table string) []string {
	s.t.Helper()
	order := map[string]string{
		"market_odds_current": "event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)",
		"market_odds_live":    "event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)",
		"market_odds_history": "event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at",
		"market_scrapes":      "event_id, bookmaker_slug",
		"market_scrape_log":   "event_id, bookmaker_slug, scraped_at",
	}[table]
	q := fmt.Sprintf("SELECT x::text FROM %s x ORDER BY %s", pgx.Identifier{s.schema, table}.Sanitize(), order)
	rows, err := pgtest.Pool(s.t).Query(context.Background(), q)
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	return out
}

// scanAllCurrent is ScanCurrent of every row.
func (s *testStore) scanAllCurrent() []marketodds.CurrentMarket {
	s.t.Helper()
	var out []marketodds.CurrentMarket
	err := s.ScanCurrent(context.Background(), time.Unix(0, 0), func(m marketodds.CurrentMarket) error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// schemaReads is everything a reader sees of a schema, and the tables both
// modes share.
type schemaReads struct {
	current map[int64][]marketodds.CurrentMarket // CurrentMarkets per event
	scan    []marketodds.CurrentMarket
	live    []string // market_odds_live
	tables  map[string][]string
}

func (s *testStore) readAll(events []int64) schemaReads {
	s.t.Helper()
	sn := schemaReads{current: map[int64][]marketodds.CurrentMarket{}, scan: s.scanAllCurrent(), live: s.rowsText("market_odds_live"),
		tables: map[string][]string{}}
	for _, e := range events {
		ms, err := s.CurrentMarkets(context.Background(), e)
		if err != nil {
			s.t.Fatal(err)
		}
		sn.current[e] = ms
	}
	for _, table := range []string{"market_odds_history", "market_scrapes", "market_scrape_log"} {
		sn.tables[table] = s.rowsText(table)
	}
	return sn
}

// diffReads reports every difference between a and b, "" when none.
func diffReads(a, b schemaReads) string {
	var out string
	for e, ms := range a.current {
		if d := gocmp.Diff(ms, b.current[e]); d != "" {
			out += fmt.Sprintf("CurrentMarkets(%d):\n%s", e, d)
		}
	}
	if d := gocmp.Diff(a.scan, b.scan); d != "" {
		out += "ScanCurrent:\n" + d
	}
	if d := gocmp.Diff(a.live, b.live); d != "" {
		out += "market_odds_live:\n" + d
	}
	for table, rows := range a.tables {
		if d := gocmp.Diff(rows, b.tables[table]); d != "" {
			out += table + ":\n" + d
		}
	}
	return out
}

// --- The workload -----------------------------------------------------------

// cfScrape is one scrape of one (event, bookmaker): the markets offered,
// and the writes the classifier returned for them: whole.
type cfScrape struct {
	event     int64
	bookmaker string
	at        time.Time
	markets   []marketodds.Market
	writes    []marketodds.Write
}

// cfMarket is one market of a book in the workload, and its state.
type cfMarket struct {
	m        marketodds.Market // the data while offered
	appears  int               // the round it is first offered
	canGo    bool              // it may disappear (and return)
	toggles  bool              // its line alternates between nil and 0: one market
	offered  bool
	appeared bool
}

type cfBook struct {
	event     int64
	bookmaker string
	offset    time.Duration // of its scrapes within a round
	markets   []*cfMarket
}

// cfWorkload is the scrapes of every book, in scrape order, as one
// classifier classified them.
type cfWorkload struct {
	events  []int64
	scrapes []cfScrape
}

func cfOdds(rng *rand.Rand) float64 { return float64(101+rng.IntN(1900)) / 100 }

func cfOutcomes(rng *rand.Rand, names ...string) []marketodds.Outcome {
	os := make([]marketodds.Outcome, len(names))
	for i, n := range names {
		os[i] = marketodds.Outcome{Name: n, Odds: cfOdds(rng)}
	}
	return os
}

// cfBookMarkets are a book's ~10 markets: no line, line 0, a line that is
// sometimes nil and sometimes 0, lines, handicaps (Asian at a nil line and
// at lines, European), no groups, and a market that appears late.
func cfBookMarkets(rng *rand.Rand, event int64, bookmaker string) []*cfMarket {
	mk := func(id, name string, line *float64, h *marketodds.Handicap, groups []string, outcomes ...string) marketodds.Market {
		return marketodds.Market{EventID: event, Bookmaker: bookmaker, MarketID: id, Line: line, Name: name,
			Outcomes: cfOutcomes(rng, outcomes...), Groups: groups, Handicap: h}
	}
	return []*cfMarket{
		{m: mk("1", "1X2 | Full Time", nil, nil, []string{"main", "popular"}, "1", "X", "2")}, // never goes: a scrape is never empty
		{m: mk("18", "Over/Under | Full Time", ptr(1.5), nil, []string{"goals"}, "Over", "Under"), canGo: true},
		{m: mk("18", "Over/Under | Full Time", ptr(2.5), nil, []string{"goals"}, "Over", "Under"), canGo: true},
		{m: mk("18", "Over/Under | Full Time", ptr(3.5), nil, []string{"goals"}, "Over", "Under"), canGo: true, appears: 1 + rng.IntN(4)},
		{m: mk("29", "Both Teams To Score", ptr(0.0), nil, []string{"main"}, "Yes", "No"), canGo: true},
		{m: mk("10", "Double Chance", nil, nil, nil, "1X", "12", "X2"), canGo: true, toggles: true},
		{m: mk("3", "Asian Handicap", nil, &marketodds.Handicap{Type: "asian", Home: 0, Away: 0}, []string{"handicap"}, "1", "2"), canGo: true},
		{m: mk("3", "Asian Handicap", ptr(-0.5), &marketodds.Handicap{Type: "asian", Home: -0.5, Away: 0.5}, []string{"handicap"}, "1", "2"), canGo: true},
		{m: mk("3", "Asian Handicap", ptr(1.25), &marketodds.Handicap{Type: "asian", Home: 1.25, Away: -1.25}, []string{"handicap"}, "1", "2"), canGo: true},
		{m: mk("4", "European Handicap", ptr(-1.0), &marketodds.Handicap{Type: "european", Home: -1, Away: 1}, nil, "1", "X", "2"), canGo: true},
		{m: mk("45", "Correct Score", nil, nil, []string{"scores"}, "1:0", "0:0", "0:1", "2:1", "other"), canGo: true, appears: 3 + rng.IntN(10)},
	}
}

// step moves the market to its state in round r and reports whether it is
// offered. Data is never changed in place: the classifier's writes share it.
func (m *cfMarket) step(rng *rand.Rand, r int) bool {
	switch {
	case r < m.appears:
		return false
	case !m.appeared:
		m.appeared, m.offered = true, true
		return true
	case !m.offered:
		if rng.IntN(3) == 0 { // back, maybe with other odds
			m.offered = true
			if rng.IntN(2) == 0 {
				m.changeOdds(rng)
			}
		}
		return m.offered
	case m.canGo && rng.IntN(20) == 0:
		m.offered = false
		return false
	}
	if rng.IntN(8) == 0 {
		m.changeOdds(rng)
	}
	if rng.IntN(16) == 0 { // (un)suspend an outcome
		os := slices.Clone(m.m.Outcomes)
		i := rng.IntN(len(os))
		os[i].Suspended = !os[i].Suspended
		m.m.Outcomes = os
	}
	if m.toggles && rng.IntN(8) == 0 {
		if m.m.Line == nil {
			m.m.Line = ptr(0.0)
		} else {
			m.m.Line = nil
		}
	}
	return true
}

func (m *cfMarket) changeOdds(rng *rand.Rand) {
	os := slices.Clone(m.m.Outcomes)
	os[rng.IntN(len(os))].Odds = cfOdds(rng)
	m.m.Outcomes = os
}

// newCFWorkload scrapes every book rounds times, three minutes apart from
// 23:00 UTC (so across midnight: two partitions), and classifies each scrape
// in scrape order with one classifier.
func newCFWorkload(rng *rand.Rand, rounds int) *cfWorkload {
	start := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	w := &cfWorkload{events: []int64{-7, 101, 102, 103}}
	bookmakers := []string{"betpawa", "bet9ja", "sportybet"}
	var books []*cfBook
	for _, e := range w.events {
		n := 2 + rng.IntN(2)
		for _, bm := range bookmakers[:n] {
			books = append(books, &cfBook{event: e, bookmaker: bm,
				offset:  time.Duration(rng.IntN(170_000)) * time.Millisecond,
				markets: cfBookMarkets(rng, e, bm)})
		}
	}
	c := changedetect.New(nil)
	for r := range rounds {
		var round []cfScrape
		for _, b := range books {
			at := start.Add(time.Duration(r)*3*time.Minute + b.offset)
			var ms []marketodds.Market
			for _, m := range b.markets {
				if m.step(rng, r) {
					ms = append(ms, m.m)
				}
			}
			rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
			round = append(round, cfScrape{event: b.event, bookmaker: b.bookmaker, at: at, markets: ms})
		}
		slices.SortStableFunc(round, func(a, b cfScrape) int { return a.at.Compare(b.at) })
		for i := range round {
			sc := &round[i]
			sc.writes = c.Classify(sc.event, sc.bookmaker, sc.markets, sc.at)
		}
		w.scrapes = append(w.scrapes, round...)
	}
	return w
}

// batches cuts the scrapes, in scrape order, into batches of one to four
// scrapes; about one boundary in three splits a scrape, its first writes in
// one batch and the rest in the next. It returns how many were split.
func (w *cfWorkload) batches(rng *rand.Rand) ([]marketodds.Batch, int) {
	var out []marketodds.Batch
	var cur []marketodds.Write
	split, n, target := 0, 0, 1+rng.IntN(4)
	emit := func() {
		rng.Shuffle(len(cur), func(i, j int) { cur[i], cur[j] = cur[j], cur[i] })
		out = append(out, marketodds.Batch{Writes: cur, RunID: 1, Index: len(out)})
		cur = nil
	}
	for i, sc := range w.scrapes {
		cur = append(cur, sc.writes...)
		if n++; n < target && i < len(w.scrapes)-1 {
			continue
		}
		if i < len(w.scrapes)-1 && len(sc.writes) > 1 && (split == 0 || rng.IntN(3) == 0) {
			k := 1 + rng.IntN(len(sc.writes)-1)
			cur = cur[:len(cur)-(len(sc.writes)-k)]
			emit()
			cur = slices.Clone(sc.writes[k:])
			split++
		} else {
			emit()
		}
		n, target = 0, 1+rng.IntN(4)
	}
	if len(cur) > 0 {
		emit()
	}
	return out, split
}

// --- Deliveries -------------------------------------------------------------

// cfDelivery plans how the batches reach a schema: one list per writer,
// each written in order; the writers run concurrently.
type cfDelivery struct {
	name string
	plan func(rng *rand.Rand, bs []marketodds.Batch) [][]marketodds.Batch
	// inOrder: every market's writes arrive in scrape order (a retry of a
	// batch already written aside), so that the model holds in full:
	// change_count and history's data too, which depend on arrival order.
	inOrder bool
}

var cfDeliveries = []cfDelivery{
	{name: "in-order", inOrder: true, plan: func(_ *rand.Rand, bs []marketodds.Batch) [][]marketodds.Batch {
		return [][]marketodds.Batch{bs}
	}},
	{name: "retried", inOrder: true, plan: func(rng *rand.Rand, bs []marketodds.Batch) [][]marketodds.Batch {
		// A batch whose commit went through is sent again after 1 to 3
		// later batches (the answer was lost; the queue retried it late).
		var out []marketodds.Batch
		again := map[int][]marketodds.Batch{}
		for i, b := range bs {
			out = append(out, b)
			if i == 0 || rng.IntN(4) == 0 {
				j := i + 1 + rng.IntN(3)
				again[j] = append(again[j], b)
			}
			out = append(out, again[i]...)
		}
		for i := len(bs); i < len(bs)+3; i++ {
			out = append(out, again[i]...)
		}
		return [][]marketodds.Batch{out}
	}},
	{name: "reordered", plan: func(rng *rand.Rand, bs []marketodds.Batch) [][]marketodds.Batch {
		// A batch is delayed behind the next 1 to 8 (sent once): as far
		// as the next scrape of some of its books, a few batches on. The
		// first, which holds the first appearance of its books' markets,
		// is delayed behind the next scrape of each of them.
		var out []marketodds.Batch
		delayed := map[int][]marketodds.Batch{}
		for i, b := range bs {
			j := min(i+1+rng.IntN(8), len(bs)-1)
			if i == 0 {
				j = min(15, len(bs)-1)
			}
			if j > i && (i == 0 || rng.IntN(5) == 0) {
				delayed[j] = append(delayed[j], b)
			} else {
				out = append(out, b)
			}
			out = append(out, delayed[i]...)
		}
		return [][]marketodds.Batch{out}
	}},
	{name: "two-writers-same-batches", inOrder: true, plan: func(_ *rand.Rand, bs []marketodds.Batch) [][]marketodds.Batch {
		// Both writers write every batch, in order, racing each other on the
		// same rows: each batch's first arrival is in order (a writer starts
		// a batch only after its own copy of the one before committed), the
		// second is a retry that may run at the same time as the first.
		return [][]marketodds.Batch{bs, bs}
	}},
	{name: "two-writers-by-event", inOrder: true, plan: func(_ *rand.Rand, bs []marketodds.Batch) [][]marketodds.Batch {
		return cfSplit(bs, func(w marketodds.Write) int { return int(w.EventID & 1) })
	}},
	{name: "two-writers-sharing-events", inOrder: true, plan: func(_ *rand.Rand, bs []marketodds.Batch) [][]marketodds.Batch {
		// One writer per bookmaker slice, as a host splits the work: every
		// event is written by both.
		return cfSplit(bs, func(w marketodds.Write) int { return btoi(w.Bookmaker == "betpawa") })
	}},
}

// cfSplit gives each write of every batch to the writer that which names.
func cfSplit(bs []marketodds.Batch, which func(marketodds.Write) int) [][]marketodds.Batch {
	out := make([][]marketodds.Batch, 2)
	for _, b := range bs {
		var parts [2][]marketodds.Write
		for _, w := range b.Writes {
			parts[which(w)] = append(parts[which(w)], w)
		}
		for i, p := range parts {
			if len(p) > 0 {
				out[i] = append(out[i], marketodds.Batch{Writes: p, RunID: b.RunID, Index: b.Index})
			}
		}
	}
	return out
}

// cfWrite writes a batch, again when the error is transient (two writers
// that share markets may deadlock; PostgreSQL breaks it with 40P01).
func cfWrite(ctx context.Context, s *marketodds.Store, b marketodds.Batch) (marketodds.Result, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.WriteMarketBatch(ctx, b)
		if err != nil && marketodds.IsTransient(err) && attempt < 20 {
			continue
		}
		if err == nil && len(res.Rejected) > 0 {
			err = fmt.Errorf("batch %d: rejected %+v", b.Index, res.Rejected)
		}
		return res, err
	}
}

// deliverPlan writes the plan to s's schema: one store per writer, concurrently.
func (s *testStore) deliverPlan(plan [][]marketodds.Batch) {
	s.t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, len(plan))
	for i, bs := range plan {
		store := s.Store
		if i > 0 {
			store = s.storeOnSchema(s.Config().Confirm)
		}
		wg.Go(func() {
			for _, b := range bs {
				if _, err := cfWrite(ctx, store, b); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.t.Fatal(err)
	}
}

// --- The reference model ----------------------------------------------------

// cfModel is what the per-market mode must hold after every write of the
// workload, whatever order they arrived in (change_count and the data of
// history rows: in scrape order).
type cfModel struct {
	current map[marketodds.Key]marketodds.CurrentMarket
	history map[marketodds.Key][]marketodds.HistoryRecord
	newest  map[cfBookID]time.Time // newest scrape per (event, bookmaker)
	scrapes int                    // distinct scrapes
}

type cfBookID struct {
	event     int64
	bookmaker string
}

func newCFModel(scrapes []cfScrape) *cfModel {
	m := &cfModel{current: map[marketodds.Key]marketodds.CurrentMarket{},
		history: map[marketodds.Key][]marketodds.HistoryRecord{}, newest: map[cfBookID]time.Time{}}
	byKey := map[marketodds.Key][]marketodds.Write{}
	for _, sc := range scrapes {
		m.scrapes++
		k := cfBookID{sc.event, sc.bookmaker}
		if sc.at.After(m.newest[k]) {
			m.newest[k] = sc.at
		}
		for _, w := range sc.writes {
			byKey[w.Key()] = append(byKey[w.Key()], w)
		}
	}
	for k, ws := range byKey {
		slices.SortFunc(ws, func(a, b marketodds.Write) int { return a.CapturedAt.Compare(b.CapturedAt) })
		var cm marketodds.CurrentMarket
		var before *marketodds.Write // the newest write with data so far
		for i := range ws {
			w := &ws[i]
			if w.Changed {
				cm.ChangeCount++
				cm.LastUpdatedAt = w.CapturedAt
				rec := w.Market
				if len(w.Outcomes) == 0 { // a disappearance records the data the market had
					rec = before.Market
					rec.Line = w.Line
				} else {
					cm.Market = w.Market // the newest change's data
				}
				m.history[k] = append(m.history[k], marketodds.HistoryRecord{Market: rec, CapturedAt: w.CapturedAt, Unavailable: w.Unavailable})
			}
			if len(w.Outcomes) > 0 {
				before = w
			}
			cm.LastConfirmedAt = w.CapturedAt // the newest scrape that reported it, offered or gone
			switch {
			case !w.Unavailable:
				cm.UnavailableAt = nil
			case cm.UnavailableAt == nil:
				cm.UnavailableAt = ptr(w.CapturedAt)
			}
		}
		m.current[k] = cm
	}
	return m
}

// check compares s with the model. Out of order, only what does not depend
// on arrival order is compared: confirmation, availability and data.
func (m *cfModel) check(t *testing.T, s *testStore, events []int64, inOrder bool) {
	t.Helper()
	opts := gocmp.Options{cmpopts.EquateEmpty()}
	if !inOrder {
		opts = append(opts, cmpopts.IgnoreFields(marketodds.CurrentMarket{}, "LastUpdatedAt", "ChangeCount"))
	}
	got := map[marketodds.Key]marketodds.CurrentMarket{}
	for _, e := range events {
		for k, cm := range s.current(e) {
			got[k] = cm
		}
	}
	if d := gocmp.Diff(m.current, got, opts); d != "" {
		t.Errorf("schema %s: CurrentMarkets differ from the model (-model +store):\n%s", s.schema, d)
	}
	if inOrder {
		for k, want := range m.history {
			if d := gocmp.Diff(want, s.history(k), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("schema %s: history of %v differs from the model (-model +store):\n%s", s.schema, k, d)
			}
		}
	}
	if n := s.count("SELECT count(*) FROM market_odds_history"); inOrder && n != m.changes() {
		t.Errorf("schema %s: %d history rows, want %d", s.schema, n, m.changes())
	}
	if n := s.count("SELECT count(*) FROM market_scrape_log"); n != m.scrapes {
		t.Errorf("schema %s: %d scrape log rows, want %d", s.schema, n, m.scrapes)
	}
	newest := map[cfBookID]time.Time{}
	rows, err := pgtest.Pool(t).Query(context.Background(),
		"SELECT event_id, bookmaker_slug, last_scraped_at FROM "+pgx.Identifier{s.schema, "market_scrapes"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	var e int64
	var bm string
	var ts time.Time
	if _, err := pgx.ForEachRow(rows, []any{&e, &bm, &ts}, func() error {
		newest[cfBookID{e, bm}] = ts
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := gocmp.Diff(m.newest, newest); d != "" {
		t.Errorf("schema %s: market_scrapes differs from the newest scrape of each book (-model +store):\n%s", s.schema, d)
	}
}

func (m *cfModel) changes() int {
	n := 0
	for _, h := range m.history {
		n += len(h)
	}
	return n
}

// --- 1. The modes are equivalent --------------------------------------------

func TestConfirmModesEquivalent(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3, 4} {
		for _, dl := range cfDeliveries {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, dl.name), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(seed, 11))
				w := newCFWorkload(rng, 30)
				bs, split := w.batches(rng)
				if split == 0 || len(bs) < 10 {
					t.Fatalf("workload of %d batches, %d scrapes split: too small to say anything", len(bs), split)
				}
				plan := dl.plan(rand.New(rand.NewPCG(seed, 12)), bs)
				model := newCFModel(w.scrapes)

				mk := newModeStore(t, marketodds.ConfirmMarkets)
				sc := newModeStore(t, marketodds.ConfirmScrapes)
				mk.deliverPlan(plan)
				sc.deliverPlan(plan)

				if d := diffReads(mk.readAll(w.events), sc.readAll(w.events)); d != "" {
					t.Errorf("the modes differ (-markets +scrapes):\n%s", d)
				}
				model.check(t, mk, w.events, dl.inOrder)
				model.check(t, sc, w.events, dl.inOrder)
				// ConfirmScrapes wrote fewer current rows: its table lags
				// where the view does not.
				if n := sc.count(`SELECT count(*) FROM market_odds_current c JOIN market_odds_live v USING (event_id, bookmaker_slug, betpawa_market_id)
					WHERE COALESCE(c.line, 0) = COALESCE(v.line, 0) AND c.last_confirmed_at < v.last_confirmed_at`); n == 0 {
					t.Error("ConfirmScrapes wrote every confirmation per market: the view had nothing to add")
				}
			})
		}
	}
}

// --- The smallest reorderings ------------------------------------------------

// cfBookScrapes classifies the scrapes of one book (event 1 at betpawa),
// the i-th at at(i+1), with one classifier, in scrape order: whole scrapes.
func cfBookScrapes(scrapes ...[]marketodds.Market) []cfScrape {
	c := changedetect.New(nil)
	out := make([]cfScrape, len(scrapes))
	for i, ms := range scrapes {
		out[i] = cfScrape{event: 1, bookmaker: "betpawa", at: at(i + 1), writes: c.Classify(1, "betpawa", ms, at(i+1))}
	}
	return out
}

// cfDeliverScrapes writes each scrape as a batch of its own, in the order
// given (scrape numbers from 1), to a schema of each mode, and checks that
// the modes read the same and hold what the model says (out of order:
// confirmation, availability and data).
func cfDeliverScrapes(t *testing.T, scrapes []cfScrape, order ...int) (mk, sc *testStore) {
	t.Helper()
	mk = newModeStore(t, marketodds.ConfirmMarkets)
	sc = newModeStore(t, marketodds.ConfirmScrapes)
	for _, s := range []*testStore{mk, sc} {
		for _, i := range order {
			s.write(scrapes[i-1].writes...)
		}
	}
	inOrder := slices.IsSorted(order)
	if d := diffReads(mk.readAll([]int64{1}), sc.readAll([]int64{1})); d != "" {
		t.Errorf("scrapes delivered in the order %v: the modes differ (-markets +scrapes):\n%s", order, d)
	}
	m := newCFModel(scrapes)
	m.check(t, mk, []int64{1}, inOrder)
	m.check(t, sc, []int64{1}, inOrder)
	return mk, sc
}

var (
	cfAnchor = market1X2(1, "betpawa", 2, 3, 4) // always offered: no scrape is empty
	cfM1     = overUnder(1, "betpawa", 2.5, 1.8, 2.0)
	cfM2     = overUnder(1, "betpawa", 2.5, 1.7, 2.1)
)

// A confirmation that arrives before the market's first appearance: in
// ConfirmMarkets it makes the row (change_count 0, last_updated_at the
// confirmation's), which ConfirmScrapes never writes; the appearance must
// still set last_updated_at and change_count when it lands, as in order.
func TestConfirmModesConfirmationBeforeAppearance(t *testing.T) {
	t.Parallel()
	scrapes := cfBookScrapes(
		[]marketodds.Market{cfAnchor, cfM1}, // 1: both appear
		[]marketodds.Market{cfAnchor, cfM1}, // 2: unchanged
	)
	mk, sc := cfDeliverScrapes(t, scrapes, 2, 1)
	for _, s := range []*testStore{mk, sc} {
		for k, row := range s.current(1) {
			if !row.LastUpdatedAt.Equal(at(1)) || row.ChangeCount != 1 || !row.LastConfirmedAt.Equal(at(2)) {
				t.Errorf("schema %s, %v: updated %v, %d changes, confirmed %v; want updated at(1), 1 change, confirmed at(2)",
					s.schema, k, row.LastUpdatedAt, row.ChangeCount, row.LastConfirmedAt)
			}
		}
	}
}

// Found by TestConfirmModesEquivalent (reordered): a market that came back
// (scrape 3), was confirmed (4) and went again (5), whose return arrives
// last. ConfirmMarkets gets unavailable_at right (the confirmation of 4
// cleared the first disappearance's time before 5 set its own);
// ConfirmScrapes never writes that confirmation, so the second
// disappearance keeps the first one's time (COALESCE(c.unavailable_at, ...)
// in the upsert), and the late return, older than the row's last change,
// is refused by the stale guard in both modes (see
// TestConfirmLateChangeBehindDisappearance for its data).
func TestConfirmModesLateReturnUnavailableAt(t *testing.T) {
	t.Parallel()
	scrapes := cfBookScrapes(
		[]marketodds.Market{cfAnchor, cfM1}, // 1: appears
		[]marketodds.Market{cfAnchor},       // 2: gone
		[]marketodds.Market{cfAnchor, cfM2}, // 3: back, other odds
		[]marketodds.Market{cfAnchor, cfM2}, // 4: unchanged
		[]marketodds.Market{cfAnchor},       // 5: gone again
	)
	mk, sc := cfDeliverScrapes(t, scrapes, 1, 2, 4, 5, 3)
	for _, s := range []*testStore{mk, sc} {
		row := s.current(1)[cfM1.Key()]
		if row.UnavailableAt == nil || !row.UnavailableAt.Equal(at(5)) {
			t.Errorf("schema %s (%s): unavailable_at %v, want at(5) = %v: the market was offered at 3 and 4",
				s.schema, s.Config().Confirm, row.UnavailableAt, at(5))
		}
	}
}

// Found by TestConfirmModesEquivalent (reordered): a market that appeared
// (1), was confirmed (2) and went (3), whose appearance arrives last. In
// ConfirmMarkets the confirmation of 2 made the row with its data, so the
// disappearance records that data in history and the row keeps it.
// ConfirmScrapes never writes that confirmation: the disappearance finds no
// row, records no data in history (an empty name, outcomes [], groups {},
// no handicap) and makes a current row without data, and the appearance, older
// than that row's last change, is refused by the stale guard: the market's
// data is lost from the current table.
func TestConfirmModesLateAppearanceBehindDisappearance(t *testing.T) {
	t.Parallel()
	scrapes := cfBookScrapes(
		[]marketodds.Market{cfAnchor, cfM1}, // 1: appears
		[]marketodds.Market{cfAnchor, cfM1}, // 2: unchanged
		[]marketodds.Market{cfAnchor},       // 3: gone
	)
	mk, sc := cfDeliverScrapes(t, scrapes, 2, 3, 1)
	for _, s := range []*testStore{mk, sc} {
		if row := s.current(1)[cfM1.Key()]; !gocmp.Equal(cfM1, row.Market) {
			t.Errorf("schema %s (%s): current data %+v, want the appearance's %+v", s.schema, s.Config().Confirm, row.Market, cfM1)
		}
		if h := s.history(cfM1.Key()); len(h) != 2 || !gocmp.Equal(cfM1, h[1].Market) {
			t.Errorf("schema %s (%s): history %+v, want the disappearance with the appearance's data", s.schema, s.Config().Confirm, h)
		}
	}
}

// Found by TestConfirmModesEquivalent (reordered), in both modes alike: a
// change (2) that arrives after the market's disappearance (3). The
// disappearance, a change without data, moved last_updated_at, so the stale
// guard refuses the older change: the current row keeps the data of 1,
// which the market no longer had when it went, and the disappearance's
// history row records that data too (the current row's, when it arrived).
func TestConfirmLateChangeBehindDisappearance(t *testing.T) {
	t.Parallel()
	scrapes := cfBookScrapes(
		[]marketodds.Market{cfAnchor, cfM1}, // 1: appears
		[]marketodds.Market{cfAnchor, cfM2}, // 2: changes
		[]marketodds.Market{cfAnchor},       // 3: gone
	)
	mk, sc := cfDeliverScrapes(t, scrapes, 1, 3, 2)
	for _, s := range []*testStore{mk, sc} {
		if row := s.current(1)[cfM1.Key()]; !gocmp.Equal(cfM2, row.Market) {
			t.Errorf("schema %s (%s): current data %v, want the last change's %v", s.schema, s.Config().Confirm, row.Outcomes, cfM2.Outcomes)
		}
		if h := s.history(cfM1.Key()); len(h) != 3 || !gocmp.Equal(cfM2, h[2].Market) {
			t.Errorf("schema %s (%s): history %+v, want the disappearance with the data of 2", s.schema, s.Config().Confirm, h)
		}
	}
}

// --- 2. The mode belongs to the schema ---------------------------------------

// writtenRows is every row of the tables a write touches, as PostgreSQL prints
// them: what "nothing written" compares.
func (s *testStore) writtenRows() map[string][]string {
	s.t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"market_odds_current", "market_odds_history", "market_scrapes", "market_scrape_log"} {
		out[table] = s.rowsText(table)
	}
	return out
}

func (s *testStore) schemaConfirmMode() string {
	s.t.Helper()
	var mode string
	if err := pgtest.Pool(s.t).QueryRow(context.Background(),
		"SELECT confirm_mode FROM "+pgx.Identifier{s.schema, "oddsledger_settings"}.Sanitize()).Scan(&mode); err != nil {
		s.t.Fatal(err)
	}
	return mode
}

// checkRefused checks that a write through store is refused with
// ErrSchemaMismatch and writes nothing.
func (s *testStore) checkRefused(store *marketodds.Store, b marketodds.Batch, why string) {
	s.t.Helper()
	before := s.writtenRows()
	res, err := store.WriteMarketBatch(context.Background(), b)
	if !errors.Is(err, marketodds.ErrSchemaMismatch) {
		s.t.Errorf("%s: err = %v, want ErrSchemaMismatch", why, err)
	}
	if res.Upserted+res.Stale+res.HistoryAdded+res.HistoryDuplicate+res.Scrapes+res.ConfirmedByScrape != 0 {
		s.t.Errorf("%s: refused write counts %+v, want nothing", why, res)
	}
	if d := gocmp.Diff(before, s.writtenRows()); d != "" {
		s.t.Errorf("%s: a refused write wrote (-before +after):\n%s", why, d)
	}
}

// cfWholeCut returns the first index from i on where bs can be cut without
// splitting a scrape: bs[j-1] and bs[j] share none.
func cfWholeCut(bs []marketodds.Batch, i int) int {
	type scrapeKey struct {
		event     int64
		bookmaker string
		at        time.Time
	}
	for j := max(i, 1); j < len(bs); j++ {
		before := map[scrapeKey]bool{}
		for _, w := range bs[j-1].Writes {
			before[scrapeKey{w.EventID, w.Bookmaker, w.CapturedAt}] = true
		}
		if !slices.ContainsFunc(bs[j].Writes, func(w marketodds.Write) bool {
			return before[scrapeKey{w.EventID, w.Bookmaker, w.CapturedAt}]
		}) {
			return j
		}
	}
	panic("no cut")
}

func TestConfirmModeBelongsToSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := newModeStore(t, marketodds.ConfirmMarkets) // the schema is made in markets mode

	rng := rand.New(rand.NewPCG(5, 5))
	w := newCFWorkload(rng, 24)
	bs, _ := w.batches(rng)
	// Writers are stopped between whole scrapes (between the two batches of
	// a split scrape, the markets mode has confirmed only half of it).
	c1, c2 := cfWholeCut(bs, len(bs)/3), cfWholeCut(bs, 2*len(bs)/3)
	phases := [][]marketodds.Batch{bs[:c1], bs[c1:c2], bs[c2:]}

	// A store configured for scrapes is refused by it: Migrate and writes.
	wrong := owner.storeOnSchema(marketodds.ConfirmScrapes)
	if err := wrong.Migrate(ctx); !errors.Is(err, marketodds.ErrSchemaMismatch) {
		t.Errorf("Migrate of a ConfirmScrapes store on a markets schema: %v, want ErrSchemaMismatch", err)
	}
	owner.checkRefused(wrong, phases[0][0], "ConfirmScrapes store on a markets schema")
	if m := owner.schemaConfirmMode(); m != "markets" {
		t.Errorf("confirm_mode %q after a refused store, want markets", m)
	}
	if n := owner.count("SELECT count(*) FROM market_odds_current"); n != 0 {
		t.Fatalf("%d current rows after refused writes", n)
	}

	// Phase 1 in markets mode, by a writer of its own: once it has written,
	// its check of the schema's settings is cached.
	writerM := owner.storeOnSchema(marketodds.ConfirmMarkets)
	for _, b := range phases[0] {
		if _, err := cfWrite(ctx, writerM, b); err != nil {
			t.Fatal(err)
		}
	}

	// To scrapes: nothing read changes across the switch.
	before := owner.readAll(w.events)
	if err := owner.SwitchConfirmMode(ctx, marketodds.ConfirmScrapes); err != nil {
		t.Fatal(err)
	}
	if d := diffReads(before, owner.readAll(w.events)); d != "" {
		t.Errorf("switching to scrapes changed what is read (-before +after):\n%s", d)
	}
	if m := owner.schemaConfirmMode(); m != "scrapes" {
		t.Errorf("confirm_mode %q after the switch, want scrapes", m)
	}
	// The markets writer that wrote before the switch is refused now.
	owner.checkRefused(writerM, phases[1][0], "markets writer after the switch to scrapes")
	owner.checkRefused(writerM, phases[1][0], "markets writer after the switch to scrapes, again")

	// Phase 2 in scrapes mode.
	writerS := owner.storeOnSchema(marketodds.ConfirmScrapes)
	byScrape := 0
	for _, b := range phases[1] {
		res, err := cfWrite(ctx, writerS, b)
		if err != nil {
			t.Fatal(err)
		}
		byScrape += res.ConfirmedByScrape
	}
	if byScrape == 0 {
		t.Error("the scrapes writer confirmed no market by its scrape")
	}

	// Back to markets: the view's confirmations are written into the rows,
	// and nothing read changes.
	before = owner.readAll(w.events)
	if err := owner.SwitchConfirmMode(ctx, marketodds.ConfirmMarkets); err != nil {
		t.Fatal(err)
	}
	if d := diffReads(before, owner.readAll(w.events)); d != "" {
		t.Errorf("switching to markets changed what is read (-before +after):\n%s", d)
	}
	if m := owner.schemaConfirmMode(); m != "markets" {
		t.Errorf("confirm_mode %q after the switch back, want markets", m)
	}
	if d := gocmp.Diff(owner.rowsText("market_odds_live"), owner.rowsText("market_odds_current")); d != "" {
		t.Errorf("after the switch to markets, the table is not what the view read (-view +table):\n%s", d)
	}
	owner.checkRefused(writerS, phases[2][0], "scrapes writer after the switch to markets")

	// The markets writer, refused while the schema confirmed per scrape,
	// is accepted again; phase 3 in markets mode.
	for _, b := range phases[2] {
		if _, err := cfWrite(ctx, writerM, b); err != nil {
			t.Fatal(err)
		}
	}
	// The result is what markets mode throughout would have made.
	ref := newModeStore(t, marketodds.ConfirmMarkets)
	ref.deliverPlan([][]marketodds.Batch{bs})
	if d := diffReads(ref.readAll(w.events), owner.readAll(w.events)); d != "" {
		t.Errorf("markets, scrapes, markets differs from markets throughout (-throughout +switched):\n%s", d)
	}
	newCFModel(w.scrapes).check(t, owner, w.events, true)
}

// --- 3. Result.Scrapes -------------------------------------------------------

func TestConfirmResultScrapes(t *testing.T) {
	t.Parallel()
	for _, mode := range []marketodds.ConfirmMode{marketodds.ConfirmMarkets, marketodds.ConfirmScrapes} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			s := newModeStore(t, mode)
			ou := func(event int64, bookmaker string, line float64, at time.Time, chg bool) marketodds.Write {
				return marketodds.Write{Market: overUnder(event, bookmaker, line, 1.9, 1.9), CapturedAt: at, Changed: chg}
			}
			scrapes := func(res marketodds.Result, want int, why string) {
				t.Helper()
				if res.Scrapes != want {
					t.Errorf("%s: Result.Scrapes %d, want %d", why, res.Scrapes, want)
				}
			}
			newest := func(event int64, bookmaker string) time.Time {
				t.Helper()
				var ts time.Time
				if err := pgtest.Pool(t).QueryRow(context.Background(), "SELECT last_scraped_at FROM "+
					pgx.Identifier{s.schema, "market_scrapes"}.Sanitize()+" WHERE event_id = $1 AND bookmaker_slug = $2",
					event, bookmaker).Scan(&ts); err != nil {
					t.Fatal(err)
				}
				return ts
			}

			// Four scrapes in one batch: two books of event 1, two scrapes of
			// one book of event 2 (the second with a nanosecond part, which
			// the store cuts).
			first := []marketodds.Write{
				ou(1, "betpawa", 0.5, at(0), true), ou(1, "betpawa", 1.5, at(0), true),
				ou(1, "bet9ja", 0.5, at(0), true),
				ou(2, "betpawa", 0.5, at(0), true), ou(2, "betpawa", 0.5, at(1).Add(300*time.Nanosecond), false),
			}
			scrapes(s.write(first...), 4, "four scrapes")
			scrapes(s.write(first...), 0, "the same batch again")
			if got := newest(2, "betpawa"); !got.Equal(at(1)) {
				t.Errorf("market_scrapes for event 2: %v, want the batch's newest %v", got, at(1))
			}

			// One scrape split across two batches is recorded once.
			scrapes(s.write(ou(3, "betpawa", 0.5, at(2), true), ou(3, "betpawa", 1.5, at(2), true), ou(4, "betpawa", 0.5, at(2), true)),
				2, "first part of a scrape, and another scrape")
			scrapes(s.write(ou(3, "betpawa", 2.5, at(2), true)), 0, "the rest of the scrape")
			if n := s.count("SELECT count(*) FROM market_scrape_log WHERE event_id = 3"); n != 1 {
				t.Errorf("%d scrape log rows for the split scrape, want 1", n)
			}

			// An older scrape after a newer one: logged, market_scrapes stays.
			scrapes(s.write(ou(1, "betpawa", 0.5, at(10), false), ou(1, "betpawa", 1.5, at(10), false)), 1, "a newer scrape")
			scrapes(s.write(ou(1, "betpawa", 0.5, at(5), false), ou(1, "betpawa", 1.5, at(5), false)), 1, "an older scrape, later")
			if got := newest(1, "betpawa"); !got.Equal(at(10)) {
				t.Errorf("market_scrapes went backwards: %v, want %v", got, at(10))
			}
			if n := s.count("SELECT count(*) FROM market_scrape_log WHERE event_id = 1 AND bookmaker_slug = 'betpawa'"); n != 3 {
				t.Errorf("%d scrape log rows for event 1 at betpawa, want 3", n)
			}
			if n := s.count("SELECT count(*) FROM market_scrape_log"); n != 8 {
				t.Errorf("%d scrape log rows, want 8", n)
			}
			cur := s.current(1)
			for _, line := range []float64{0.5, 1.5} {
				if row := cur[overUnder(1, "betpawa", line, 1.9, 1.9).Key()]; !row.LastConfirmedAt.Equal(at(10)) {
					t.Errorf("line %v: confirmed %v, want %v (the older scrape does not move it back)", line, row.LastConfirmedAt, at(10))
				}
			}
		})
	}
}
