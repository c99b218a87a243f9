package main

// TEMPORARY. This file stands in for the read API that issue #13 adds to
// marketodds (Query, MarketState, OpenClose, Store.MarketsAt, Store.History,
// Store.OpeningClosing, Market.Margin, best prices, the scrape list). It
// implements it from what marketodds has today (Store.CurrentMarkets) and
// SQL on the documented schema (market_odds_current, market_odds_history)
// for the rest. When the real API lands, delete this file and follow the
// steps in api.go: nothing else names what is declared here.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/marketodds"
)

type fallbackQuery struct {
	EventIDs   []int64
	Bookmakers []string
	MarketIDs  []string
}

type fallbackMarketState struct {
	marketodds.Market
	// ChangedAt is when the market last changed, at or before the time
	// asked for.
	ChangedAt time.Time
	// SeenAt is the last scrape of the market at or before the time asked
	// for that is known: the current row's last_confirmed_at when it is not
	// later, or else the latest change recorded for the (event, bookmaker)
	// up to that time (every scrape holds every offered market), which is a
	// lower bound: confirmations are not kept in history.
	SeenAt time.Time
	// Unavailable reports that the market was not offered: its data is the
	// last the bookmaker showed.
	Unavailable bool
}

type fallbackOpenClose struct {
	Key              marketodds.Key
	Opening, Closing marketodds.HistoryRecord
}

type fallbackBestPrice struct {
	EventID  int64
	MarketID string
	Line     float64 // as in marketodds.Key: 0 for a market without a line
	Outcome  string
	Odds     float64
	// Bookmakers offering Odds, sorted (more than one on a tie).
	Bookmakers []string
}

type fallbackScrape struct {
	EventID       int64
	Bookmaker     string
	LastScrapedAt time.Time
}

// fallbackMargin is NaN when no margin can be read off the market: fewer
// than two outcomes, a suspended one (the book is incomplete), or odds that
// are not a finite number above 1.
func fallbackMargin(m marketodds.Market) float64 {
	if len(m.Outcomes) < 2 {
		return math.NaN()
	}
	sum := 0.0
	for _, o := range m.Outcomes {
		if o.Suspended || !validOdds(o.Odds) {
			return math.NaN()
		}
		sum += 1 / o.Odds
	}
	return (sum - 1) * 100
}

func validOdds(f float64) bool { return f > 1 && !math.IsInf(f, 1) }

func fallbackBestPrices(states []MarketState) []BestPrice {
	type key struct {
		event   int64
		market  string
		line    float64
		outcome string
	}
	best := make(map[key]*BestPrice)
	var order []key
	for i := range states {
		s := &states[i]
		if s.Unavailable {
			continue
		}
		mk := s.Key()
		for _, o := range s.Outcomes {
			if o.Suspended || !validOdds(o.Odds) {
				continue
			}
			k := key{mk.EventID, mk.MarketID, mk.Line, o.Name}
			b := best[k]
			switch {
			case b == nil:
				order = append(order, k)
				best[k] = &BestPrice{EventID: k.event, MarketID: k.market, Line: k.line, Outcome: k.outcome,
					Odds: o.Odds, Bookmakers: []string{s.Bookmaker}}
			case o.Odds > b.Odds:
				b.Odds, b.Bookmakers = o.Odds, []string{s.Bookmaker}
			case o.Odds == b.Odds && !slices.Contains(b.Bookmakers, s.Bookmaker):
				b.Bookmakers = append(b.Bookmakers, s.Bookmaker)
			}
		}
	}
	out := make([]BestPrice, 0, len(order))
	for _, k := range order {
		b := best[k]
		slices.Sort(b.Bookmakers)
		out = append(out, *b)
	}
	slices.SortStableFunc(out, func(a, b BestPrice) int {
		return cmp.Or(cmp.Compare(a.EventID, b.EventID), strings.Compare(a.MarketID, b.MarketID), cmp.Compare(a.Line, b.Line))
	})
	return out
}

// fallbackReader implements reader on the store's tables.
type fallbackReader struct {
	store            *marketodds.Store
	db               marketodds.DB
	current, history string // qualified, quoted
}

func newFallbackReader(store *marketodds.Store, db marketodds.DB) *fallbackReader {
	schema := store.Config().Schema
	return &fallbackReader{store: store, db: db,
		current: pgx.Identifier{schema, "market_odds_current"}.Sanitize(),
		history: pgx.Identifier{schema, "market_odds_history"}.Sanitize()}
}

const (
	fbColumns = `event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name, outcomes, market_groups,
    handicap_type, handicap_home, handicap_away, captured_at, unavailable`
	fbKey = `event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)`
	// fbWhere filters by the query: $1 event ids, $2 bookmakers, $3 market
	// ids (NULL: all).
	fbWhere = `event_id = ANY($1) AND ($2::text[] IS NULL OR bookmaker_slug = ANY($2))
    AND ($3::text[] IS NULL OR betpawa_market_id = ANY($3))`
)

func (q *fallbackQuery) args() ([]any, error) {
	if len(q.EventIDs) == 0 {
		return nil, errors.New("oddsboard: Query.EventIDs is required")
	}
	orNull := func(ss []string) any {
		if len(ss) == 0 {
			return nil
		}
		return ss
	}
	return []any{q.EventIDs, orNull(q.Bookmakers), orNull(q.MarketIDs)}, nil
}

// records runs a query of fbColumns and returns the records sorted by key,
// then captured_at.
func (r *fallbackReader) records(ctx context.Context, sql string, args ...any) ([]marketodds.HistoryRecord, error) {
	rows, err := r.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (marketodds.HistoryRecord, error) {
		var h marketodds.HistoryRecord
		var hType *string
		var hHome, hAway *float64
		err := row.Scan(&h.EventID, &h.Bookmaker, &h.MarketID, &h.Line, &h.Name, &h.Outcomes, &h.Groups,
			&hType, &hHome, &hAway, &h.CapturedAt, &h.Unavailable)
		if hType != nil {
			h.Handicap = &marketodds.Handicap{Type: *hType}
			if hHome != nil {
				h.Handicap.Home = *hHome
			}
			if hAway != nil {
				h.Handicap.Away = *hAway
			}
		}
		h.CapturedAt = h.CapturedAt.UTC()
		return h, err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b marketodds.HistoryRecord) int {
		return cmp.Or(a.Key().Compare(b.Key()), a.CapturedAt.Compare(b.CapturedAt))
	})
	return out, nil
}

func (r *fallbackReader) MarketsAt(ctx context.Context, q Query, at time.Time) ([]MarketState, error) {
	args, err := q.args()
	if err != nil {
		return nil, err
	}
	recs, err := r.records(ctx, `SELECT DISTINCT ON (`+fbKey+`) `+fbColumns+` FROM `+r.history+`
WHERE `+fbWhere+` AND captured_at <= $4
ORDER BY `+fbKey+`, captured_at DESC`, append(args, at)...)
	if err != nil {
		return nil, fmt.Errorf("oddsboard: markets at %s: %w", at, err)
	}
	// Seen at: the current rows' last_confirmed_at, when not after at.
	confirmed := make(map[marketodds.Key]time.Time)
	for _, id := range q.EventIDs {
		cur, err := r.store.CurrentMarkets(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, c := range cur {
			confirmed[c.Key()] = c.LastConfirmedAt.UTC()
		}
	}
	// Otherwise: the latest change of the (event, bookmaker) up to at.
	type book struct {
		event int64
		slug  string
	}
	latest := make(map[book]time.Time)
	rows, err := r.db.Query(ctx, `SELECT event_id, bookmaker_slug, max(captured_at) FROM `+r.history+`
WHERE `+fbWhere+` AND captured_at <= $4 GROUP BY 1, 2`, append(args, at)...)
	if err != nil {
		return nil, fmt.Errorf("oddsboard: markets at %s: %w", at, err)
	}
	var b book
	var t time.Time
	if _, err := pgx.ForEachRow(rows, []any{&b.event, &b.slug, &t}, func() error {
		latest[b] = t.UTC()
		return nil
	}); err != nil {
		return nil, fmt.Errorf("oddsboard: markets at %s: %w", at, err)
	}

	out := make([]MarketState, len(recs))
	for i, h := range recs {
		s := MarketState{Market: h.Market, ChangedAt: h.CapturedAt, Unavailable: h.Unavailable}
		if c, ok := confirmed[h.Key()]; ok && !c.After(at) {
			s.SeenAt = c
		} else {
			s.SeenAt = h.CapturedAt
			if l := latest[book{h.EventID, h.Bookmaker}]; l.After(s.SeenAt) {
				s.SeenAt = l
			}
		}
		out[i] = s
	}
	return out, nil
}

func (r *fallbackReader) History(ctx context.Context, q Query, from, to time.Time) ([]marketodds.HistoryRecord, error) {
	args, err := q.args()
	if err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("oddsboard: history from %s to %s: an empty window", from, to)
	}
	// The record in force at from is the last at or before it; the changes
	// follow it, up to to.
	recs, err := r.records(ctx, `SELECT * FROM (SELECT DISTINCT ON (`+fbKey+`) `+fbColumns+` FROM `+r.history+`
    WHERE `+fbWhere+` AND captured_at <= $4
    ORDER BY `+fbKey+`, captured_at DESC) AS in_force
UNION ALL
SELECT `+fbColumns+` FROM `+r.history+` WHERE `+fbWhere+` AND captured_at > $4 AND captured_at < $5`,
		append(args, from, to)...)
	if err != nil {
		return nil, fmt.Errorf("oddsboard: history from %s to %s: %w", from, to, err)
	}
	return recs, nil
}

func (r *fallbackReader) OpeningClosing(ctx context.Context, q Query, closeAt time.Time) ([]OpenClose, error) {
	args, err := q.args()
	if err != nil {
		return nil, err
	}
	// One statement, so that both ends come from one snapshot.
	recs, err := r.records(ctx, `SELECT `+fbColumns+` FROM (
    SELECT `+fbColumns+`,
        row_number() OVER (PARTITION BY `+fbKey+` ORDER BY captured_at) AS nth,
        row_number() OVER (PARTITION BY `+fbKey+` ORDER BY captured_at DESC) AS nth_last
    FROM `+r.history+` WHERE `+fbWhere+` AND captured_at <= $4) AS h
WHERE nth = 1 OR nth_last = 1`, append(args, closeAt)...)
	if err != nil {
		return nil, fmt.Errorf("oddsboard: opening and closing odds at %s: %w", closeAt, err)
	}
	var out []OpenClose
	for i, h := range recs {
		// Sorted by key, then captured_at: a market's first record is its
		// opening, its last (the same one, when it has only one) its closing.
		if i == 0 || recs[i-1].Key() != h.Key() {
			out = append(out, OpenClose{Key: h.Key(), Opening: h})
		}
		out[len(out)-1].Closing = h
	}
	return out, nil
}

func (r *fallbackReader) Scrapes(ctx context.Context, eventIDs []int64) ([]Scrape, error) {
	if len(eventIDs) == 0 {
		return nil, errors.New("oddsboard: Scrapes: no event ids")
	}
	rows, err := r.db.Query(ctx, `SELECT event_id, bookmaker_slug, max(last_confirmed_at) FROM `+r.current+`
WHERE event_id = ANY($1) GROUP BY 1, 2`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("oddsboard: scrapes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Scrape, error) {
		var s Scrape
		err := row.Scan(&s.EventID, &s.Bookmaker, &s.LastScrapedAt)
		s.LastScrapedAt = s.LastScrapedAt.UTC()
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("oddsboard: scrapes: %w", err)
	}
	slices.SortFunc(out, func(a, b Scrape) int {
		return cmp.Or(cmp.Compare(a.EventID, b.EventID), strings.Compare(a.Bookmaker, b.Bookmaker))
	})
	return out, nil
}
