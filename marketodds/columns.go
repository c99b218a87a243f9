package marketodds

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// writeMarketsParams are the parameters of sql/write_markets.sql, in the
// statement's order: one array per column, one element per row. Arrays
// rather than one parameter per value: a batch is one statement whatever its
// size, far below the 65,535-parameter limit. NULLs travel as sentinels
// (sentinels.go).
type writeMarketsParams struct {
	// The batch's scrapes, key order.
	ScrapeEventIDs   []int64     `sql:"scrape_event_ids"`
	ScrapeBookmakers []string    `sql:"scrape_bookmakers"`
	ScrapedAts       []time.Time `sql:"scraped_ats"`

	// The changes: one history row each.
	HistoryEventIDs      []int64     `sql:"history_event_ids"`
	HistoryBookmakers    []string    `sql:"history_bookmakers"`
	HistoryMarketIDs     []string    `sql:"history_market_ids"`
	HistoryLines         []float64   `sql:"history_lines"`
	HistoryNames         []string    `sql:"history_names"`
	HistoryOutcomes      []string    `sql:"history_outcomes"` // noHistoryData: take the current row's
	HistoryGroups        []string    `sql:"history_groups"`
	HistoryHandicapTypes []string    `sql:"history_handicap_types"`
	HistoryHandicapHomes []float64   `sql:"history_handicap_homes"`
	HistoryHandicapAways []float64   `sql:"history_handicap_aways"`
	HistoryCapturedAts   []time.Time `sql:"history_captured_ats"`
	HistoryUnavailables  []bool      `sql:"history_unavailables"`

	// The markets written in full, one current row each, in key order.
	CurrentEventIDs       []int64     `sql:"current_event_ids"`
	CurrentBookmakers     []string    `sql:"current_bookmakers"`
	CurrentMarketIDs      []string    `sql:"current_market_ids"`
	CurrentLines          []float64   `sql:"current_lines"`
	CurrentNames          []string    `sql:"current_names"`
	CurrentOutcomes       []string    `sql:"current_outcomes"` // noCurrentData: keep the row's
	CurrentGroups         []string    `sql:"current_groups"`
	CurrentHandicapTypes  []string    `sql:"current_handicap_types"`
	CurrentHandicapHomes  []float64   `sql:"current_handicap_homes"`
	CurrentHandicapAways  []float64   `sql:"current_handicap_aways"`
	CurrentConfirmedAts   []time.Time `sql:"current_confirmed_ats"`
	CurrentUpdatedAts     []time.Time `sql:"current_updated_ats"`
	CurrentUnavailableAts []time.Time `sql:"current_unavailable_ats"`

	// The markets confirmed without a change, key order. A confirmation's
	// time is its scrape's: ConfirmScrapes holds the scrape's position
	// (1-based) in the Scrape* arrays, which costs less to send than a
	// time per market. ConfirmUnavailableAts is empty when no confirmation
	// reports a disappearance (unnest pads it with NULL, which the
	// statement reads as available).
	ConfirmEventIDs       []int64     `sql:"confirm_event_ids"`
	ConfirmScrapes        []int32     `sql:"confirm_scrapes"`
	ConfirmBookmakers     []string    `sql:"confirm_bookmakers"`
	ConfirmMarketIDs      []string    `sql:"confirm_market_ids"`
	ConfirmLineKeys       []float64   `sql:"confirm_line_keys"`
	ConfirmUnavailableAts []time.Time `sql:"confirm_unavailable_ats"`

	// Not parameters.
	confirmRuns       []keyRun // the market of each confirmation, to map the missing ones back
	historyDupInBatch int      // changed writes that repeat another's key and time
	confirmedByScrape int      // unchanged markets left to their scrape (ConfirmScrapes)
	scrapes           []scrape // what the Scrape* arrays hold
	scrapeCursor      int      // addConfirm's position in scrapes
	anyUnavailable    bool     // a confirmation reports a disappearance
}

// addScrapes appends the batch's scrapes (sorted, distinct). It comes
// before any addConfirm.
func (p *writeMarketsParams) addScrapes(scrapes []scrape) {
	p.scrapes = scrapes
	for _, sc := range scrapes {
		p.ScrapeEventIDs = append(p.ScrapeEventIDs, sc.eventID)
		p.ScrapeBookmakers = append(p.ScrapeBookmakers, sc.bookmaker)
		p.ScrapedAts = append(p.ScrapedAts, sc.at)
	}
}

// addHistory appends the history row of the change w captured at at, with
// the data of data (w itself, or for a disappearance the write before it).
func (p *writeMarketsParams) addHistory(w *Write, at time.Time, data *Write) {
	p.HistoryEventIDs = append(p.HistoryEventIDs, w.EventID)
	p.HistoryBookmakers = append(p.HistoryBookmakers, w.Bookmaker)
	p.HistoryMarketIDs = append(p.HistoryMarketIDs, w.MarketID)
	p.HistoryLines = append(p.HistoryLines, lineOrNull(w.Line))
	p.HistoryNames = append(p.HistoryNames, data.Name)
	if len(data.Outcomes) == 0 {
		p.HistoryOutcomes = append(p.HistoryOutcomes, noHistoryData)
	} else {
		p.HistoryOutcomes = append(p.HistoryOutcomes, encodeOutcomes(data.Outcomes))
	}
	p.HistoryGroups = append(p.HistoryGroups, encodeTextArray(data.Groups))
	t, h, a := handicapColumns(data.Handicap)
	p.HistoryHandicapTypes = append(p.HistoryHandicapTypes, t)
	p.HistoryHandicapHomes = append(p.HistoryHandicapHomes, h)
	p.HistoryHandicapAways = append(p.HistoryHandicapAways, a)
	p.HistoryCapturedAts = append(p.HistoryCapturedAts, at)
	p.HistoryUnavailables = append(p.HistoryUnavailables, w.Unavailable)
}

func (p *writeMarketsParams) historyRows() int { return len(p.HistoryEventIDs) }

// addCurrent appends one market written in full: identity from newest,
// confirmed at confirmedAt, data from data (nil when no write of the market
// carried any).
func (p *writeMarketsParams) addCurrent(newest *Write, confirmedAt time.Time, data *Write, updatedAt time.Time, unavailableAt *time.Time) {
	p.CurrentEventIDs = append(p.CurrentEventIDs, newest.EventID)
	p.CurrentBookmakers = append(p.CurrentBookmakers, newest.Bookmaker)
	p.CurrentMarketIDs = append(p.CurrentMarketIDs, newest.MarketID)
	p.CurrentConfirmedAts = append(p.CurrentConfirmedAts, confirmedAt)
	p.CurrentUpdatedAts = append(p.CurrentUpdatedAts, updatedAt)
	p.CurrentUnavailableAts = append(p.CurrentUnavailableAts, timeOrNull(unavailableAt))
	if data == nil {
		p.CurrentLines = append(p.CurrentLines, lineOrNull(newest.Line))
		p.CurrentNames = append(p.CurrentNames, newest.Name)
		p.CurrentOutcomes = append(p.CurrentOutcomes, noCurrentData)
		p.CurrentGroups = append(p.CurrentGroups, "{}")
		p.CurrentHandicapTypes = append(p.CurrentHandicapTypes, "")
		p.CurrentHandicapHomes = append(p.CurrentHandicapHomes, nullFloat)
		p.CurrentHandicapAways = append(p.CurrentHandicapAways, nullFloat)
		return
	}
	p.CurrentLines = append(p.CurrentLines, lineOrNull(data.Line))
	p.CurrentNames = append(p.CurrentNames, data.Name)
	p.CurrentOutcomes = append(p.CurrentOutcomes, encodeOutcomes(data.Outcomes))
	p.CurrentGroups = append(p.CurrentGroups, encodeTextArray(data.Groups))
	t, h, a := handicapColumns(data.Handicap)
	p.CurrentHandicapTypes = append(p.CurrentHandicapTypes, t)
	p.CurrentHandicapHomes = append(p.CurrentHandicapHomes, h)
	p.CurrentHandicapAways = append(p.CurrentHandicapAways, a)
}

// addConfirm appends one market confirmed without a change at confirmedAt.
// Confirmations come in key order, so the search for their scrape only
// moves forward.
func (p *writeMarketsParams) addConfirm(run keyRun, newest *Write, confirmedAt time.Time, unavailableAt *time.Time) {
	sc := scrape{newest.EventID, newest.Bookmaker, confirmedAt}
	for p.scrapeCursor < len(p.scrapes) && compareScrapes(p.scrapes[p.scrapeCursor], scrape{sc.eventID, sc.bookmaker, time.Time{}}) < 0 {
		p.scrapeCursor++ // the scrapes of earlier events and bookmakers
	}
	i := p.scrapeCursor
	for i < len(p.scrapes) && compareScrapes(p.scrapes[i], sc) < 0 {
		i++ // an earlier scrape of the same event and bookmaker
	}
	if i == len(p.scrapes) || compareScrapes(p.scrapes[i], sc) != 0 {
		// Every valid write belongs to one of the batch's scrapes.
		panic(fmt.Sprintf("marketodds: no scrape (%d, %q, %v) for a confirmation", sc.eventID, sc.bookmaker, sc.at))
	}
	p.confirmRuns = append(p.confirmRuns, run)
	p.ConfirmEventIDs = append(p.ConfirmEventIDs, newest.EventID)
	p.ConfirmScrapes = append(p.ConfirmScrapes, int32(i+1))
	p.ConfirmBookmakers = append(p.ConfirmBookmakers, newest.Bookmaker)
	p.ConfirmMarketIDs = append(p.ConfirmMarketIDs, newest.MarketID)
	p.ConfirmLineKeys = append(p.ConfirmLineKeys, LineKey(newest.Line))
	p.ConfirmUnavailableAts = append(p.ConfirmUnavailableAts, timeOrNull(unavailableAt))
	p.anyUnavailable = p.anyUnavailable || unavailableAt != nil
}

// finish drops what need not be sent.
func (p *writeMarketsParams) finish() {
	if !p.anyUnavailable {
		p.ConfirmUnavailableAts = p.ConfirmUnavailableAts[:0]
	}
}

// lineOrNil is lineOrNull's inverse.
func lineOrNil(l float64) *float64 {
	if math.IsNaN(l) {
		return nil
	}
	return &l
}

func lineOrNull(l *float64) float64 {
	if l == nil {
		return nullFloat
	}
	return *l
}

func timeOrNull(t *time.Time) time.Time {
	if t == nil {
		return nullTime
	}
	return *t
}

func handicapColumns(h *Handicap) (string, float64, float64) {
	if h == nil {
		return "", nullFloat, nullFloat
	}
	return h.Type, h.Home, h.Away
}

// encodeOutcomes writes outcomes as the jsonb array text
// [{"name":...,"odds":...,"suspended":...}]. It is encoding/json's output
// for []Outcome, without reflection; floats use the shortest form that
// parses back to the same float64, so odds survive the round trip exactly.
func encodeOutcomes(os []Outcome) string {
	b := make([]byte, 0, 48*len(os)+2)
	b = append(b, '[')
	for i, o := range os {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, o.Name)
		b = append(b, `,"odds":`...)
		b = strconv.AppendFloat(b, o.Odds, 'g', -1, 64)
		b = append(b, `,"suspended":`...)
		b = strconv.AppendBool(b, o.Suspended)
		b = append(b, '}')
	}
	b = append(b, ']')
	return string(b)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. s is valid UTF-8 without NUL
// (validated), so only quotes, backslashes and control characters need
// escaping.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf || (c >= 0x20 && c != '"' && c != '\\') {
			b = append(b, c)
			i++
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(b, '"')
}

// encodeTextArray writes ss as a PostgreSQL text[] literal. pgx cannot send
// a ragged [][]string, so each row's groups travel as one literal.
func encodeTextArray(ss []string) string {
	if len(ss) == 0 {
		return "{}"
	}
	b := make([]byte, 0, 16*len(ss))
	b = append(b, '{')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	b = append(b, '}')
	return string(b)
}
