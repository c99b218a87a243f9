package main

import (
	"context"
	"time"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The board reads the store through marketodds' read API only; these
// names keep the handlers short.
type (
	// Query selects markets: EventIDs is required, Bookmakers and MarketIDs
	// narrow (nil: all).
	Query = marketodds.Query
	// MarketState is a market as it stood at some time.
	MarketState = marketodds.MarketState
	// OpenClose is a market's opening record and the record in force at a
	// closing time.
	OpenClose = marketodds.OpenClose
	// BestPrice is the highest odds of one outcome across bookmakers.
	BestPrice = marketodds.BestPrice
	// Scrape is the last scrape of one (event, bookmaker).
	Scrape = marketodds.Scrape
)

// reader is what the board reads the store with: *marketodds.Store, or a
// stand-in in tests.
type reader interface {
	// MarketsAt returns one state per market changed at or before at, in key
	// order.
	MarketsAt(ctx context.Context, q Query, at time.Time) ([]MarketState, error)
	// History returns, per market, the record in force at from, then every
	// change in [from, to), by key, then captured_at.
	History(ctx context.Context, q Query, from, to time.Time) ([]marketodds.HistoryRecord, error)
	// OpeningClosing returns per market its first record and the record in
	// force at closeAt, for the markets with a record at or before closeAt.
	OpeningClosing(ctx context.Context, q Query, closeAt time.Time) ([]OpenClose, error)
	// Scrapes lists the last scrape of every (event, bookmaker) of the
	// events (at least one), by event, then bookmaker.
	Scrapes(ctx context.Context, eventIDs []int64) ([]Scrape, error)
}

var _ reader = (*marketodds.Store)(nil)

// newReader returns the board's reader of the store.
func newReader(store *marketodds.Store, _ marketodds.DB) reader { return store }

var (
	// margin is the bookmaker's margin on a market, in percent:
	// (sum of 1/odds - 1) * 100; NaN when the book is incomplete.
	margin = marketodds.Market.Margin
	// bestPrices returns the best price of every outcome of every market
	// across bookmakers, ignoring unavailable markets and suspended
	// outcomes.
	bestPrices = marketodds.BestPrices
)
