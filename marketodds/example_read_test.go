package marketodds_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/marketodds"
)

// exampleStore connects to the host's database. The examples that need one
// are compiled but not run.
func exampleStore(ctx context.Context) *marketodds.Store {
	pool, err := pgxpool.New(ctx, "postgres://localhost/odds")
	if err != nil {
		log.Fatal(err)
	}
	store, err := marketodds.NewStore(pool, &marketodds.Config{Schema: "odds"})
	if err != nil {
		log.Fatal(err)
	}
	return store
}

// Every bookmaker's odds of one event as they stood an hour ago, with the
// margin of each book and the best price of each outcome. (Needs a
// database, so it is compiled but not run.)
func ExampleStore_MarketsAt() {
	ctx := context.Background()
	store := exampleStore(ctx)
	at := time.Now().Add(-time.Hour)
	states, err := store.MarketsAt(ctx, marketodds.Query{EventIDs: []int64{4711}}, at)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range states {
		if s.Unavailable {
			fmt.Printf("%s %s: not offered since %s\n", s.Bookmaker, s.Name, s.ChangedAt.Format(time.TimeOnly))
			continue
		}
		fmt.Printf("%s %s: %v, margin %.1f%%, unchanged since %s, last seen %s\n", s.Bookmaker, s.Name, s.Outcomes,
			s.Margin(), s.ChangedAt.Format(time.TimeOnly), s.SeenAt.Format(time.TimeOnly))
	}
	for _, p := range marketodds.BestPrices(states) {
		fmt.Printf("best %s %s: %.2f at %v\n", p.MarketID, p.Outcome, p.Odds, p.Bookmakers)
	}
}

// The records to chart one day of two bookmakers' 1X2 odds for an event:
// each market's record in force at the start, then its changes. (Needs a
// database, so it is compiled but not run.)
func ExampleStore_History() {
	ctx := context.Background()
	store := exampleStore(ctx)
	to := time.Now()
	q := marketodds.Query{EventIDs: []int64{4711}, Bookmakers: []string{"betpawa", "sportybet"}, MarketIDs: []string{"3743"}}
	records, err := store.History(ctx, q, to.Add(-24*time.Hour), to)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range records { // by market, then time: one line series per market and outcome
		fmt.Println(r.Bookmaker, r.CapturedAt.Format(time.DateTime), r.Outcomes, r.Unavailable)
	}
}

// A month of every market of many events, one record at a time, without
// holding them all. (Needs a database, so it is compiled but not run.)
func ExampleStore_ScanHistory() {
	ctx := context.Background()
	store := exampleStore(ctx)
	to := time.Now()
	changes := make(map[marketodds.Key]int)
	err := store.ScanHistory(ctx, marketodds.Query{EventIDs: []int64{4711, 4712, 4713}}, to.AddDate(0, -1, 0), to,
		func(r marketodds.HistoryRecord) error {
			changes[r.Key()]++
			return nil
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(changes), "markets")
}

// Opening against closing odds at kickoff, and how far each moved. (Needs a
// database, so it is compiled but not run.)
func ExampleStore_OpeningClosing() {
	ctx := context.Background()
	store := exampleStore(ctx)
	kickoff := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	ocs, err := store.OpeningClosing(ctx, marketodds.Query{EventIDs: []int64{4711}, MarketIDs: []string{"3743"}}, kickoff)
	if err != nil {
		log.Fatal(err)
	}
	for _, oc := range ocs {
		fmt.Printf("%s opened %s at %v, closed at %v (margin %.1f%% -> %.1f%%)\n", oc.Key.Bookmaker,
			oc.Opening.CapturedAt.Format(time.DateTime), oc.Opening.Outcomes, oc.Closing.Outcomes,
			oc.Opening.Margin(), oc.Closing.Margin())
	}
}

// A bookmaker's margin on a market, in percent; NaN when the book is
// incomplete.
func ExampleMarket_Margin() {
	m := marketodds.Market{Outcomes: []marketodds.Outcome{{Name: "1", Odds: 2.10}, {Name: "X", Odds: 3.30}, {Name: "2", Odds: 3.60}}}
	fmt.Printf("%.2f%%\n", m.Margin())

	m.Outcomes[1].Suspended = true
	fmt.Println(math.IsNaN(m.Margin()))
	// Output:
	// 5.70%
	// true
}

// The best price of each outcome across bookmakers: ties list every
// bookmaker; unavailable markets and suspended outcomes do not count.
func ExampleBestPrices() {
	oneX2 := func(book string, home, draw, away float64) marketodds.Market {
		return marketodds.Market{EventID: 4711, Bookmaker: book, MarketID: "3743", Name: "1X2",
			Outcomes: []marketodds.Outcome{{Name: "1", Odds: home}, {Name: "X", Odds: draw}, {Name: "2", Odds: away}}}
	}
	suspended := oneX2("bet9ja", 2.30, 3.25, 3.50)
	suspended.Outcomes[0].Suspended = true
	states := []marketodds.MarketState{
		{Market: suspended},
		{Market: oneX2("betpawa", 2.15, 3.30, 3.60)},
		{Market: oneX2("sportybet", 2.10, 3.30, 3.55)},
		{Market: oneX2("betking", 2.50, 3.50, 3.80), Unavailable: true},
	}
	for _, p := range marketodds.BestPrices(states) {
		fmt.Printf("%s %s: %.2f %v\n", p.MarketID, p.Outcome, p.Odds, p.Bookmakers)
	}
	// Output:
	// 3743 1: 2.15 [betpawa]
	// 3743 X: 3.30 [betpawa sportybet]
	// 3743 2: 3.60 [betpawa]
}
