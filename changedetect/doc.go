// Package changedetect decides, for every scraped market, whether it changed
// since the last scrape, so that only changes reach market_odds_history.
//
// A scraper re-reads every market of an event every few minutes, and the
// odds of a given market move in about 5% of those reads. A Classifier
// remembers the last state of every market and, per scrape of one
// (event, bookmaker), returns one marketodds.Write per market with Changed
// set when the market is new or differs:
//
//	c := changedetect.New(nil)
//	writes := c.Classify(eventID, "betpawa", markets, capturedAt)
//	err := queue.Enqueue(ctx, &marketodds.Batch{Writes: writes}) // handler for *marketodds.Batch
//
// Unchanged markets are returned as well: the store still confirms them
// (last_confirmed_at), it just appends no history.
//
// # Fingerprints, not copies
//
// The classifier keeps, per market, its key and a 64-bit fingerprint of its
// data (name, line, outcomes, groups, handicap; see internal/fingerprint),
// not a copy of the market: about 50 bytes per market, so a million markets
// fit in ~50 MB, none of which the garbage collector has to scan. Outcomes
// and groups compare as multisets: their order in the scrape does not
// matter. A nil line and a line of 0 are one key (as in the database's
// unique index) but different data: going from one to the other is a
// change. With Config.OddsTolerance > 0, odds that moved less than the
// tolerance count as unchanged; that needs the odds themselves, which the
// classifier then keeps too.
//
// # Compare and update in one step
//
// The system this package replaces updated its cache and then compared the
// scrape with it, so every market looked unchanged and some bookmakers got no
// history at all. Here the comparison and the update happen together, under
// one lock, for the whole scrape: of two concurrent scrapes bringing the
// same change, exactly one reports it.
//
// # Disappearance
//
// A market seen in the last scrape of its (event, bookmaker) and absent from
// this one is reported once, as a Write with Unavailable and Changed set,
// after the Writes of the scrape's markets. Absent again, nothing more is
// reported; back, it is a change (Unavailable false). Since the classifier
// keeps no copy of the data, a disappearance Write carries only the market's
// identity (EventID, Bookmaker, MarketID, Line as it was: nil or not) and no
// Name, Outcomes or Groups: the store keeps the data of the current row,
// sets its unavailable_at, and records the disappearance in history with
// that data. So pass Classify only complete scrapes: a failed or partial
// scrape would report the missing markets gone.
//
// # A dropped batch leaves no gap
//
// If the write of a batch fails for good (the write queue gives up on it),
// call Forget with its keys: the next scrape reports those markets changed
// again (or their disappearance again), so their change still reaches
// history. The replaced system kept its cache updated after a dropped batch,
// and that change was lost.
//
// # Warm after a restart
//
// A new classifier knows nothing, so its first scrape reports every market
// changed and appends a history row for each. Warm loads the state of
// market_odds_current first, keyed and fingerprinted exactly as scraped
// markets are, so that unchanged markets stay unchanged across a restart.
// Rows with unavailable_at set are loaded as gone.
//
// # Memory
//
// Call ForgetEvent when an event is over: the classifier keeps every market
// it has seen, available or gone, until then.
package changedetect
