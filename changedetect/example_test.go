package changedetect_test

import (
	"fmt"
	"time"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/marketodds"
)

// Three scrapes of one event at one bookmaker: everything is new at first;
// then the over/under odds move and the double chance market disappears;
// then a write fails and its key is forgotten, so the change is sent again.
func Example() {
	c := changedetect.New(nil)
	const eventID, bookmaker = 42, "betpawa"
	t := time.Date(2025, 3, 1, 15, 0, 0, 0, time.UTC)

	line := 2.5
	oneXTwo := marketodds.Market{MarketID: "1X2", Name: "1X2", Outcomes: []marketodds.Outcome{
		{Name: "1", Odds: 2.10}, {Name: "X", Odds: 3.30}, {Name: "2", Odds: 3.60}}}
	overUnder := marketodds.Market{MarketID: "OU", Line: &line, Name: "Total goals", Outcomes: []marketodds.Outcome{
		{Name: "Over", Odds: 1.85}, {Name: "Under", Odds: 1.95}}}
	doubleChance := marketodds.Market{MarketID: "DC", Name: "Double chance", Outcomes: []marketodds.Outcome{
		{Name: "1X", Odds: 1.30}, {Name: "X2", Odds: 1.75}, {Name: "12", Odds: 1.35}}}

	show := func(writes []marketodds.Write) {
		for _, w := range writes {
			fmt.Printf("  %-3s changed=%-5v unavailable=%v\n", w.MarketID, w.Changed, w.Unavailable)
		}
	}

	fmt.Println("first scrape:")
	show(c.Classify(eventID, bookmaker, []marketodds.Market{oneXTwo, overUnder, doubleChance}, t))

	fmt.Println("second scrape:")
	overUnder.Outcomes = []marketodds.Outcome{{Name: "Under", Odds: 2.00}, {Name: "Over", Odds: 1.80}}
	writes := c.Classify(eventID, bookmaker, []marketodds.Market{oneXTwo, overUnder}, t.Add(5*time.Minute))
	show(writes)

	// Say the batch holding these writes could not be written: forget its
	// keys, and the next scrape sends the change again.
	for _, w := range writes {
		if w.Changed {
			c.Forget(w.Key())
		}
	}
	fmt.Println("third scrape, after a failed write:")
	show(c.Classify(eventID, bookmaker, []marketodds.Market{oneXTwo, overUnder}, t.Add(10*time.Minute)))

	// Output:
	// first scrape:
	//   1X2 changed=true  unavailable=false
	//   OU  changed=true  unavailable=false
	//   DC  changed=true  unavailable=false
	// second scrape:
	//   1X2 changed=false unavailable=false
	//   OU  changed=true  unavailable=false
	//   DC  changed=true  unavailable=true
	// third scrape, after a failed write:
	//   1X2 changed=false unavailable=false
	//   OU  changed=true  unavailable=false
	//   DC  changed=true  unavailable=true
}
