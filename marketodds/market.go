package marketodds

import (
	"cmp"
	"math"
	"strings"
	"time"
)

// Outcome is one selectable result of a market, priced in decimal odds.
type Outcome struct {
	Name      string  `json:"name"`
	Odds      float64 `json:"odds"`
	Suspended bool    `json:"suspended"`
}

// Handicap describes the handicap of a market that has one (Asian or
// European handicap), as the bookmaker states it.
type Handicap struct {
	Type string
	Home float64
	Away float64
}

// Market is one market of one event at one bookmaker, as scraped.
type Market struct {
	// EventID is the host's event id. It may be negative.
	EventID int64
	// Bookmaker is the bookmaker slug: "betpawa", "sportybet", "bet9ja", ...
	Bookmaker string
	// MarketID is the canonical (BetPawa) market id.
	MarketID string
	// Line is the market's line (over/under 2.5, handicap -1.5, ...), nil for
	// a market without one. Identity treats a nil line as 0: a nil line and a
	// line of 0 name the same market.
	Line *float64
	// Name is the market's display name.
	Name string
	// Outcomes are the market's selections. Their order carries no meaning.
	Outcomes []Outcome
	// Groups are the bookmaker's market groups ("popular", "goals", ...).
	Groups []string
	// Handicap is nil for a market without a handicap.
	Handicap *Handicap
}

// Key identifies a market: the identity of a row of market_odds_current.
// It is comparable and can be used as a map key.
type Key struct {
	EventID   int64
	Bookmaker string
	MarketID  string
	// Line is the market's line, 0 for a market without one.
	Line float64
}

// Key returns the market's identity, its line as LineKey gives it.
func (m Market) Key() Key {
	return Key{EventID: m.EventID, Bookmaker: m.Bookmaker, MarketID: m.MarketID, Line: LineKey(m.Line)}
}

// LineKey returns the line that identifies a market whose line is line.
// A NULL (nil) line and a line of 0 are one market: identity uses
// COALESCE(line, 0), as the unique indexes of both tables do. -0 becomes 0
// too, as PostgreSQL has -0 = 0, so that Go map keys agree with the indexes.
// Every other value, NaN included, is returned as it is.
func LineKey(line *float64) float64 {
	if line == nil || *line == 0 {
		return 0
	}
	return *line
}

// Less orders keys the way the write path applies them: event, bookmaker,
// market, line. Applying rows in one global order keeps concurrent writers
// from deadlocking each other.
func (k Key) Less(o Key) bool {
	if k.EventID != o.EventID {
		return k.EventID < o.EventID
	}
	if k.Bookmaker != o.Bookmaker {
		return k.Bookmaker < o.Bookmaker
	}
	if k.MarketID != o.MarketID {
		return k.MarketID < o.MarketID
	}
	return k.Line < o.Line
}

// Compare returns -1, 0 or +1 as k sorts before, with or after o (see Less).
// It compares each field once (the write path sorts every batch with it).
func (k Key) Compare(o Key) int {
	if c := cmp.Compare(k.EventID, o.EventID); c != 0 {
		return c
	}
	if c := strings.Compare(k.Bookmaker, o.Bookmaker); c != 0 {
		return c
	}
	if c := strings.Compare(k.MarketID, o.MarketID); c != 0 {
		return c
	}
	return compareLines(k.Line, o.Line)
}

// compareLines orders line keys as Less does: by <, so that NaN (which no
// valid write has) compares equal to everything rather than first, as
// cmp.Compare would put it.
func compareLines(a, b float64) int {
	switch {
	case a < b:
		return -1
	case b < a:
		return 1
	}
	return 0
}

// Write is one market as seen by one scrape, with the classifier's verdict.
type Write struct {
	Market
	// CapturedAt is when the market was scraped. Required: it orders writes
	// and makes retries idempotent (history is unique on key + CapturedAt).
	CapturedAt time.Time
	// Changed reports that the market differs from the last stored state:
	// a history row is appended and the data columns of the current row move.
	// An unchanged write only moves last_confirmed_at.
	Changed bool
	// Unavailable reports that the bookmaker no longer offers the market, as
	// of CapturedAt. The current row gets unavailable_at (kept at the first
	// time); an available write clears it.
	Unavailable bool
}

// Batch is the unit of work of the write path: written in one transaction.
type Batch struct {
	Writes []Write
	// RunID and Index identify the batch for the host's logs (scrape run and
	// batch number within it). The store only logs them.
	RunID int64
	Index int
}

// Result reports what WriteMarketBatch did.
type Result struct {
	// Upserted counts the current rows inserted or updated.
	Upserted int
	// Stale counts the markets whose current row the batch left alone: the
	// row had already seen a newer scrape (or this one: a retried batch) and
	// a newer change. Their changes, if new, are still appended to history.
	Stale int
	// HistoryAdded counts history rows appended.
	HistoryAdded int
	// HistoryDuplicate counts changed writes whose history row was already
	// there (a retried batch, or the same change sent twice).
	HistoryDuplicate int
	// Scrapes counts the scrapes the batch recorded in market_scrape_log: its
	// distinct (EventID, Bookmaker, CapturedAt), less those already recorded
	// (a retried batch, or another batch of the same scrape).
	Scrapes int
	// ConfirmedByScrape counts the unchanged markets that ConfirmScrapes
	// left to their scrape's row instead of writing them.
	ConfirmedByScrape int
	// Rejected lists the writes that were not written, with the reason.
	Rejected []Rejection
	// Elapsed is the time the write took, retries of isolated rows included.
	Elapsed time.Duration
}

// Rejection is a write that was not written.
type Rejection struct {
	// Index is the write's position in Batch.Writes.
	Index int
	Key   Key
	// Err says why: a *ValidationError for input the validation caught, a
	// *RowError for a row that PostgreSQL refused.
	Err error
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
