package changedetect

import (
	"context"
	"fmt"
	"time"

	"github.com/oddsledger/oddsledger/marketodds"
)

// Warm loads the state of every market of market_odds_current confirmed at
// or after since, so that after a restart the first scrape of an unchanged
// market reports it unchanged instead of writing all of them to history
// again. It returns the number of markets it added.
//
// Warm keys and fingerprints the rows exactly as Classify keys and
// fingerprints scraped markets (the replaced system keyed its warm-up by
// bookmaker id and its scrapes by slug, and never hit its cache). A market
// whose row has unavailable_at set is known as gone: its absence from the
// next scrape sends nothing, its return is a change. A market warmed as
// available and absent from the next scrape of its (event, bookmaker) is
// reported gone.
//
// Run Warm before the first Classify. Keys the classifier already knows are
// left alone, since what it saw itself is at least as new as the database.
// The rows are streamed, not held in memory. On error, the markets loaded
// so far stay loaded and their number is returned with the error.
func (c *Classifier) Warm(ctx context.Context, store *marketodds.Store, since time.Time) (int, error) {
	n := 0
	err := store.ScanCurrent(ctx, since, func(m marketodds.CurrentMarket) error {
		if c.warmMarket(&m.Market, m.UnavailableAt != nil) {
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("changedetect: warm: %w", err)
	}
	return n, nil
}
