package main

import (
	"context"
	"time"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The read API the board uses: the one issue #13 adds to marketodds. Until
// marketodds has it, board_fallback.go (temporary) implements it from what
// the package has today. When it lands:
//   - delete board_fallback.go;
//   - point the aliases below at marketodds (marketodds.Query, ...);
//   - newReader returns the store itself, margin is marketodds.Market.Margin
//     and bestPrices the package's best-price function;
//   - the scrape list (Scrapes, Scrape) takes whatever name the package
//     gives it.
//
// Nothing else in the board names a fallback type or function.
type (
	// Query selects markets: EventIDs is required, Bookmakers and MarketIDs
	// narrow (nil: all).
	Query = fallbackQuery
	// MarketState is a market as it stood at some time.
	MarketState = fallbackMarketState
	// OpenClose is a market's opening record and the record in force at a
	// closing time.
	OpenClose = fallbackOpenClose
	// BestPrice is the highest odds of one outcome across bookmakers.
	BestPrice = fallbackBestPrice
	// Scrape is the last scrape of one (event, bookmaker).
	Scrape = fallbackScrape
)

// reader is what the board reads the store with.
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

// newReader returns the board's reader of the store, whose tables db
// reaches.
func newReader(store *marketodds.Store, db marketodds.DB) reader { return newFallbackReader(store, db) }

var (
	// margin is the bookmaker's margin on a market, in percent:
	// (sum of 1/odds - 1) * 100; NaN when the book is incomplete (fewer
	// than two outcomes, or one suspended).
	margin = fallbackMargin
	// bestPrices returns the best price of every outcome of every market
	// across bookmakers, ignoring unavailable markets and suspended
	// outcomes.
	bestPrices = fallbackBestPrices
)
