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

// currentStatements are the statements that read market_odds_current and
// a market's history.
type currentStatements struct {
	currentMarkets, scanCurrent, marketHistory statement
}

type currentMarketsParams struct {
	EventID int64 `sql:"event_id"`
}

type scanCurrentParams struct {
	Since time.Time `sql:"since"`
}

type marketHistoryParams struct {
	EventID   int64     `sql:"event_id"`
	Bookmaker string    `sql:"bookmaker"`
	MarketID  string    `sql:"market_id"`
	LineKey   float64   `sql:"line_key"`
	From      time.Time `sql:"from"`
	To        time.Time `sql:"to"`
}

func newCurrentStatements(schema string) currentStatements {
	return currentStatements{
		currentMarkets: loadStatement("current_markets", schema, currentMarketsParams{}),
		scanCurrent:    loadStatement("scan_current", schema, scanCurrentParams{}),
		marketHistory:  loadStatement("market_history", schema, marketHistoryParams{}),
	}
}

// CurrentMarkets returns the current rows of one event, every bookmaker,
// in key order.
func (s *Store) CurrentMarkets(ctx context.Context, eventID int64) ([]CurrentMarket, error) {
	var rows []currentRow
	err := pgxscan.Select(ctx, s.db, &rows, s.current.currentMarkets.sql, args(currentMarketsParams{EventID: eventID})...)
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
	rows, err := s.db.Query(ctx, s.current.scanCurrent.sql, args(scanCurrentParams{Since: since})...)
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
	err := pgxscan.Select(ctx, s.db, &rows, s.current.marketHistory.sql, args(marketHistoryParams{
		EventID: k.EventID, Bookmaker: k.Bookmaker, MarketID: k.MarketID, LineKey: k.Line, From: from, To: to})...)
	if err != nil {
		return nil, fmt.Errorf("marketodds: history of market %s: %w", k, err)
	}
	out := make([]HistoryRecord, len(rows))
	for i := range rows {
		out[i] = HistoryRecord{Market: rows[i].market(), CapturedAt: rows[i].CapturedAt, Unavailable: rows[i].Unavailable}
	}
	return out, nil
}
