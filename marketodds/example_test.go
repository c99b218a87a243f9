package marketodds_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/marketodds"
)

// A write is validated before anything reaches the database.
func ExampleWrite_Validate() {
	w := marketodds.Write{
		Market: marketodds.Market{
			EventID: 1, Bookmaker: "betpawa", MarketID: "3743", Name: "1X2",
			Outcomes: []marketodds.Outcome{{Name: "1", Odds: 2.1}, {Name: "X", Odds: 0.9}},
		},
		CapturedAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
	}
	err := w.Validate()
	fmt.Println(err)
	// Output:
	// marketodds: invalid write for market {event 1, "betpawa", market "3743", line 0}: Outcomes[1].Odds: odds must be finite and > 1, got 0.9
}

// A nil line and a line of 0 are the same market.
func ExampleMarket_Key() {
	zero := 0.0
	a := marketodds.Market{EventID: 7, Bookmaker: "bet9ja", MarketID: "1X2"}
	b := marketodds.Market{EventID: 7, Bookmaker: "bet9ja", MarketID: "1X2", Line: &zero}
	fmt.Println(a.Key() == b.Key())
	// Output: true
}

// Wiring a store to the host's pool. (Needs a database, so it is compiled
// but not run.)
func ExampleStore_WriteMarketBatch() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost/odds")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := marketodds.NewStore(pool, &marketodds.Config{Schema: "odds"})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	res, err := store.WriteMarketBatch(ctx, marketodds.Batch{Writes: []marketodds.Write{{
		Market: marketodds.Market{EventID: 1, Bookmaker: "betpawa", MarketID: "3743", Name: "1X2",
			Outcomes: []marketodds.Outcome{{Name: "1", Odds: 2.1}, {Name: "X", Odds: 3.3}, {Name: "2", Odds: 3.6}}},
		CapturedAt: time.Now(),
		Changed:    true,
	}}})
	if err != nil {
		log.Printf("batch failed (retry: %v): %v", marketodds.IsTransient(err), err)
		return
	}
	for _, r := range res.Rejected {
		log.Printf("write %d rejected: %v", r.Index, r.Err)
	}
}
