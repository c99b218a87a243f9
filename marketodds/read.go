package marketodds

import (
	"context"
	"fmt"
	"time"

	"github.com/georgysavva/scany/v2/pgxscan"
)

// CurrentMarket is a row of market_odds_current.
type CurrentMarket struct {
	Market
	// LastConfirmedAt is the last scrape that saw the market.
	LastConfirmedAt time.Time
	// LastUpdatedAt is the last scrape in which the market changed.
	LastUpdatedAt time.Time
	// UnavailableAt is when the market disappeared, nil while offered.
	UnavailableAt *time.Time
	// ChangeCount is the number of changes applied to the row (a change that
	// arrived after a newer one is in history only).
	ChangeCount int
}

// HistoryRecord is a row of market_odds_history: the market as it was after
// one change.
type HistoryRecord struct {
	Market
	CapturedAt time.Time
	// Unavailable reports that the change was the market's disappearance.
	Unavailable bool
}

// marketRow is the columns both tables share, as scany scans them.
type marketRow struct {
	EventID      int64     `db:"event_id"`
	Bookmaker    string    `db:"bookmaker_slug"`
	MarketID     string    `db:"betpawa_market_id"`
	Line         *float64  `db:"line"`
	Name         string    `db:"betpawa_market_name"`
	Outcomes     []Outcome `db:"outcomes"`
	Groups       []string  `db:"market_groups"`
	HandicapType *string   `db:"handicap_type"`
	HandicapHome *float64  `db:"handicap_home"`
	HandicapAway *float64  `db:"handicap_away"`
}

func (r *marketRow) market() Market {
	m := Market{EventID: r.EventID, Bookmaker: r.Bookmaker, MarketID: r.MarketID, Line: r.Line,
		Name: r.Name, Outcomes: r.Outcomes, Groups: r.Groups}
	if r.HandicapType != nil {
		m.Handicap = &Handicap{Type: *r.HandicapType}
		if r.HandicapHome != nil {
			m.Handicap.Home = *r.HandicapHome
		}
		if r.HandicapAway != nil {
			m.Handicap.Away = *r.HandicapAway
		}
	}
	return m
}

type currentRow struct {
	marketRow
	LastConfirmedAt time.Time  `db:"last_confirmed_at"`
	LastUpdatedAt   time.Time  `db:"last_updated_at"`
	UnavailableAt   *time.Time `db:"unavailable_at"`
	ChangeCount     int        `db:"change_count"`
}

func (r *currentRow) current() CurrentMarket {
	return CurrentMarket{Market: r.market(), LastConfirmedAt: r.LastConfirmedAt, LastUpdatedAt: r.LastUpdatedAt,
		UnavailableAt: r.UnavailableAt, ChangeCount: r.ChangeCount}
}

type historyRow struct {
	marketRow
	CapturedAt  time.Time `db:"captured_at"`
	Unavailable bool      `db:"unavailable"`
}

const marketColumns = `event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name, outcomes,
    market_groups, handicap_type, handicap_home, handicap_away`

const currentColumnList = marketColumns + `, last_confirmed_at, last_updated_at, unavailable_at, change_count`

const keyOrder = `event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)`

// CurrentMarkets returns the current rows of one event, every bookmaker,
// in key order.
func (s *Store) CurrentMarkets(ctx context.Context, eventID int64) ([]CurrentMarket, error) {
	var rows []currentRow
	err := pgxscan.Select(ctx, s.db, &rows, `SELECT `+currentColumnList+` FROM `+s.current+
		` WHERE event_id = $1 ORDER BY `+keyOrder, eventID)
	if err != nil {
		return nil, fmt.Errorf("marketodds: current markets of event %d: %w", eventID, err)
	}
	out := make([]CurrentMarket, len(rows))
	for i := range rows {
		out[i] = rows[i].current()
	}
	return out, nil
}

// ScanCurrent calls fn for every current row confirmed at or after since, in
// key order, without holding them all in memory (it streams). An error from
// fn stops the scan and is returned.
func (s *Store) ScanCurrent(ctx context.Context, since time.Time, fn func(CurrentMarket) error) error {
	rows, err := s.db.Query(ctx, `SELECT `+currentColumnList+` FROM `+s.current+
		` WHERE last_confirmed_at >= $1 ORDER BY `+keyOrder, since)
	if err != nil {
		return fmt.Errorf("marketodds: scan current: %w", err)
	}
	defer rows.Close()
	rs := pgxscan.NewRowScanner(rows)
	for rows.Next() {
		var r currentRow
		if err := rs.Scan(&r); err != nil {
			return fmt.Errorf("marketodds: scan current: %w", err)
		}
		if err := fn(r.current()); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("marketodds: scan current: %w", err)
	}
	return nil
}

// MarketHistory returns the changes of one market captured in [from, to),
// oldest first.
func (s *Store) MarketHistory(ctx context.Context, k Key, from, to time.Time) ([]HistoryRecord, error) {
	var rows []historyRow
	err := pgxscan.Select(ctx, s.db, &rows, `SELECT `+marketColumns+`, captured_at, unavailable FROM `+s.history+`
WHERE event_id = $1 AND bookmaker_slug = $2 AND betpawa_market_id = $3 AND COALESCE(line, 0) = $4
    AND captured_at >= $5 AND captured_at < $6
ORDER BY captured_at`, k.EventID, k.Bookmaker, k.MarketID, k.Line, from, to)
	if err != nil {
		return nil, fmt.Errorf("marketodds: history of market %s: %w", k, err)
	}
	out := make([]HistoryRecord, len(rows))
	for i := range rows {
		out[i] = HistoryRecord{Market: rows[i].market(), CapturedAt: rows[i].CapturedAt, Unavailable: rows[i].Unavailable}
	}
	return out, nil
}
