package marketodds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrInvalidQuery is matched (errors.Is) by the error of a read whose
// arguments cannot be answered: a Query without EventIDs, a zero time, a
// window whose from is not before its to. The error says which; nothing is
// sent to the database.
var ErrInvalidQuery = errors.New("marketodds: invalid query")

// Query selects markets: EventIDs is required; empty Bookmakers / MarketIDs
// mean all. The markets are those of market_odds_current: a market the
// current table does not have is not read, whatever history holds of it
// (the write path never leaves one there without the other).
type Query struct {
	EventIDs   []int64
	Bookmakers []string
	MarketIDs  []string
}

// MarketState is a market as it stood at a time T.
type MarketState struct {
	// Market is the data in force at T (the last change at or before T). For
	// a disappearance it is the market's last data before it went.
	Market
	// ChangedAt is the captured_at of that change.
	ChangedAt time.Time
	// SeenAt is the newest scrape of the market's event at its bookmaker at
	// or before T (>= ChangedAt): the state was still the one in force then.
	// Scrapes come from market_scrape_log and market_scrapes; a schema
	// upgraded from before the scrape log has none for older times, and then
	// SeenAt is ChangedAt.
	SeenAt time.Time
	// Unavailable reports that the change in force was a disappearance: the
	// bookmaker did not offer the market at T.
	Unavailable bool
}

// OpenClose is a market's opening and closing odds.
type OpenClose struct {
	Key Key
	// Opening is the market's earliest retained record.
	Opening HistoryRecord
	// Closing is the record in force at the closing time.
	Closing HistoryRecord
}

// Scrape is the newest scrape of one event at one bookmaker.
type Scrape struct {
	EventID       int64
	Bookmaker     string
	LastScrapedAt time.Time
}

type readStatements struct {
	settings, marketsAt, history, openingClosing, scrapes statement
}

// The parameter structs follow their statements' parameters in order of
// first appearance (loadStatement checks it).
type marketsAtParams struct {
	At         time.Time `sql:"at"`
	EventIDs   []int64   `sql:"event_ids"`
	Bookmakers []string  `sql:"bookmakers"`
	MarketIDs  []string  `sql:"market_ids"`
}

type historyParams struct {
	From       time.Time `sql:"from"`
	To         time.Time `sql:"to"`
	EventIDs   []int64   `sql:"event_ids"`
	Bookmakers []string  `sql:"bookmakers"`
	MarketIDs  []string  `sql:"market_ids"`
}

type openingClosingParams struct {
	CloseAt    time.Time `sql:"close_at"`
	EventIDs   []int64   `sql:"event_ids"`
	Bookmakers []string  `sql:"bookmakers"`
	MarketIDs  []string  `sql:"market_ids"`
}

type scrapesParams struct {
	EventIDs []int64 `sql:"event_ids"`
}

func newReadStatements(schema string) readStatements {
	return readStatements{
		settings:       loadStatement("read_settings", schema, nil),
		marketsAt:      loadStatement("read_markets_at", schema, marketsAtParams{}),
		history:        loadStatement("read_history", schema, historyParams{}),
		openingClosing: loadStatement("read_opening_closing", schema, openingClosingParams{}),
		scrapes:        loadStatement("read_scrapes", schema, scrapesParams{}),
	}
}

// read runs fn in a transaction of its own (a savepoint inside a host's
// pgx.Tx) that read_settings has set up for the read statements: a generic
// plan, made once per connection, and no JIT. It rolls the transaction back
// afterwards, which ends the settings: a read writes nothing. That costs
// three round trips more than the bare statement (begin, settings,
// rollback: well under a millisecond on a local network), against a few
// milliseconds of planning per call, or hundreds of JIT compilation, saved.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return err
	}
	// Rolling back a read: its own error (a lost connection) adds nothing.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, s.reads.settings.sql); err != nil {
		return err
	}
	return fn(tx)
}

func invalidQuery(op, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidQuery, op, fmt.Sprintf(format, args...))
}

// filter checks the query and returns its three array parameters, never
// nil (a NULL array would match nothing).
func (q *Query) filter(op string) (eventIDs []int64, bookmakers, marketIDs []string, err error) {
	if len(q.EventIDs) == 0 {
		return nil, nil, nil, invalidQuery(op, "Query.EventIDs is empty (it is required)")
	}
	orEmpty := func(ss []string) []string {
		if ss == nil {
			return []string{}
		}
		return ss
	}
	return q.EventIDs, orEmpty(q.Bookmakers), orEmpty(q.MarketIDs), nil
}

// checkTime returns an error for a zero time. Stored times have
// PostgreSQL's microsecond precision, so a bound between two microseconds
// is moved to one that selects the same records: "at or before t" rounds
// t down (floor), "at or after t" and "before t" round it up (ceil).
func checkTime(op, name string, t time.Time, ceil bool) (time.Time, error) {
	if t.IsZero() {
		return t, invalidQuery(op, "%s is the zero time", name)
	}
	r := t.Truncate(time.Microsecond)
	if ceil && r.Before(t) {
		r = r.Add(time.Microsecond)
	}
	return r, nil
}

// MarketsAt returns every market of the query as it stood at at: one state
// per market that had a change at or before at, in key order (Key.Less),
// unavailable ones included (flagged). Markets whose first change is after
// at are left out.
//
// It is one statement, driven by the query's rows of market_odds_current
// (an index probe). A market whose last change is at or before at is
// answered from its current row; the others by one backward probe of
// history's unique index per market, which reads no partition after at and
// stops at the newest partition holding a change of the market, however far
// back. SeenAt takes one probe of the scrape log per event and bookmaker,
// or none when market_scrapes' newest scrape is at or before at. So for at
// at or after the newest data, only the current table and market_scrapes
// are read. Reads are the same in both confirmation modes. Like every read
// of several markets, it runs in a short transaction of its own that asks
// PostgreSQL for the statement's generic plan and no JIT (see read).
//
// Retention: DropPartitionsBefore drops history, not the current table.
// Each market's newest change stays readable (its current row), and each
// event and bookmaker's newest scrape (market_scrapes); a state in force at
// at that only a dropped partition held is gone, and its market is left out.
//
// The result holds one state per market the query names; to read very many
// events, split EventIDs.
func (s *Store) MarketsAt(ctx context.Context, q Query, at time.Time) ([]MarketState, error) {
	const op = "MarketsAt"
	events, books, markets, err := q.filter(op)
	if err != nil {
		return nil, err
	}
	if at, err = checkTime(op, "at", at, false); err != nil {
		return nil, err
	}
	var out []MarketState
	err = s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, s.reads.marketsAt.sql, args(marketsAtParams{
			At: at, EventIDs: events, Bookmakers: books, MarketIDs: markets})...)
		if err != nil {
			return err
		}
		return forEachRow(rows, func(rows pgx.Rows) error {
			var r marketRow
			var st MarketState
			if err := rows.Scan(append(r.dest(), &st.ChangedAt, &st.SeenAt, &st.Unavailable)...); err != nil {
				return err
			}
			st.Market = r.market()
			st.ChangedAt, st.SeenAt = st.ChangedAt.UTC(), st.SeenAt.UTC()
			out = append(out, st)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("marketodds: markets at %s: %w", at.Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// History returns the records needed to draw [from, to) for every market of
// the query, in one call: per market, the record in force at from (if the
// market changed before from), then every change captured in [from, to);
// ordered by key (Key.Less), then CapturedAt. A market without a record
// before to is left out.
//
// It holds the whole result: about (1 + changes in the window) records per
// market, some 350 bytes each. ScanHistory streams the same records.
func (s *Store) History(ctx context.Context, q Query, from, to time.Time) ([]HistoryRecord, error) {
	var out []HistoryRecord
	err := s.ScanHistory(ctx, q, from, to, func(h HistoryRecord) error {
		out = append(out, h)
		return nil
	})
	return out, err
}

// ScanHistory calls fn for each record History would return, in the same
// order, as they arrive (the statement streams: the database sorts one
// market at a time). An error from fn stops the scan and is returned as it
// is.
//
// The statement is driven by the query's rows of market_odds_current. A
// market whose last change is before from is answered from its current row
// alone; for the others, history's unique index is probed once backwards
// (the record in force) and range-scanned over [from, to), in the
// partitions of that range only. A market's last change, when inside the
// window, comes from its current row. Retention as for MarketsAt: records
// only a dropped partition held are not returned.
func (s *Store) ScanHistory(ctx context.Context, q Query, from, to time.Time, fn func(HistoryRecord) error) error {
	const op = "History"
	events, books, markets, err := q.filter(op)
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return invalidQuery(op, "from (%s) is not before to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	if from, err = checkTime(op, "from", from, true); err != nil {
		return err
	}
	if to, err = checkTime(op, "to", to, true); err != nil {
		return err
	}
	var fnErr error
	err = s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, s.reads.history.sql, args(historyParams{
			From: from, To: to, EventIDs: events, Bookmakers: books, MarketIDs: markets})...)
		if err != nil {
			return err
		}
		return forEachRow(rows, func(rows pgx.Rows) error {
			var r marketRow
			var h HistoryRecord
			if err := rows.Scan(append(r.dest(), &h.CapturedAt, &h.Unavailable)...); err != nil {
				return err
			}
			h.Market = r.market()
			h.CapturedAt = h.CapturedAt.UTC()
			if err := fn(h); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("marketodds: history from %s to %s: %w", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), err)
	}
	return nil
}

// OpeningClosing returns, per market of the query, its earliest retained
// record (the opening odds) and the record in force at closeAt (the closing
// odds: pass the kickoff), in key order (Key.Less). Markets with no record
// at or before closeAt are left out. A market with one record has it as
// both.
//
// Closing is read as MarketsAt reads a state. Opening is one forward probe
// of history's unique index per market, oldest partition first: it stops
// at the first partition holding a change of the market, and each older
// partition costs one index probe that finds nothing. After retention the
// opening is the earliest record retention kept (the closing itself when it
// kept none but the current row). The result holds one entry per market
// the query names.
func (s *Store) OpeningClosing(ctx context.Context, q Query, closeAt time.Time) ([]OpenClose, error) {
	const op = "OpeningClosing"
	events, books, markets, err := q.filter(op)
	if err != nil {
		return nil, err
	}
	if closeAt, err = checkTime(op, "closeAt", closeAt, false); err != nil {
		return nil, err
	}
	var out []OpenClose
	err = s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, s.reads.openingClosing.sql, args(openingClosingParams{
			CloseAt: closeAt, EventIDs: events, Bookmakers: books, MarketIDs: markets})...)
		if err != nil {
			return err
		}
		return forEachRow(rows, func(rows pgx.Rows) error {
			var cl, opn marketRow
			var oc OpenClose
			dest := []any{&cl.EventID, &cl.Bookmaker, &cl.MarketID}
			dest = append(dest, cl.dataDest()...)
			dest = append(dest, &oc.Closing.CapturedAt, &oc.Closing.Unavailable)
			dest = append(dest, opn.dataDest()...)
			dest = append(dest, &oc.Opening.CapturedAt, &oc.Opening.Unavailable)
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			opn.EventID, opn.Bookmaker, opn.MarketID = cl.EventID, cl.Bookmaker, cl.MarketID
			oc.Closing.Market, oc.Opening.Market = cl.market(), opn.market()
			oc.Closing.CapturedAt, oc.Opening.CapturedAt = oc.Closing.CapturedAt.UTC(), oc.Opening.CapturedAt.UTC()
			oc.Key = oc.Closing.Key()
			out = append(out, oc)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("marketodds: opening and closing at %s: %w", closeAt.Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// Scrapes returns the newest scrape of every (event, bookmaker) of the
// events that market_scrapes records, by event, then bookmaker (bytewise).
// An event and bookmaker not scraped since the schema got its scrape log
// has none.
func (s *Store) Scrapes(ctx context.Context, eventIDs []int64) ([]Scrape, error) {
	if len(eventIDs) == 0 {
		return nil, invalidQuery("Scrapes", "no event ids")
	}
	rows, err := s.db.Query(ctx, s.reads.scrapes.sql, args(scrapesParams{EventIDs: eventIDs})...)
	if err != nil {
		return nil, fmt.Errorf("marketodds: scrapes: %w", err)
	}
	var out []Scrape
	err = forEachRow(rows, func(rows pgx.Rows) error {
		var sc Scrape
		if err := rows.Scan(&sc.EventID, &sc.Bookmaker, &sc.LastScrapedAt); err != nil {
			return err
		}
		sc.LastScrapedAt = sc.LastScrapedAt.UTC()
		out = append(out, sc)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("marketodds: scrapes: %w", err)
	}
	return out, nil
}

// forEachRow calls fn for every row, closes rows and returns the first
// error: fn's, or the query's.
func forEachRow(rows pgx.Rows, fn func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// dest is where a row of the market columns (event_id through
// handicap_away) scans to. Each row needs a fresh marketRow: decoding into
// a used one could share its slices with the previous row's.
func (r *marketRow) dest() []any {
	return append([]any{&r.EventID, &r.Bookmaker, &r.MarketID}, r.dataDest()...)
}

// dataDest is where the data columns (line through handicap_away) scan to.
func (r *marketRow) dataDest() []any {
	return []any{&r.Line, &r.Name, &r.Outcomes, &r.Groups, &r.HandicapType, &r.HandicapHome, &r.HandicapAway}
}

// Margin returns the bookmaker's margin on the market (its overround), in
// percent: (sum of 1/odds over the outcomes - 1) x 100. A fair book is 0; a
// 1X2 at 2.10 / 3.30 / 3.60 is 5.7. It is negative when backing every
// outcome at these odds would win (an arbitrage across one book).
//
// It is NaN when no margin can be read off the market: fewer than two
// outcomes, any outcome suspended (the book is incomplete, and the rest
// alone would understate it), or any odds that are not a finite number
// above 1 (which the store never holds). Test it with math.IsNaN.
func (m Market) Margin() float64 {
	if len(m.Outcomes) < 2 {
		return math.NaN()
	}
	sum := 0.0
	for _, o := range m.Outcomes {
		if o.Suspended || !finite(o.Odds) || !(o.Odds > 1) {
			return math.NaN()
		}
		sum += 1 / o.Odds
	}
	return (sum - 1) * 100
}

// BestPrice is the best odds of one outcome of one market across
// bookmakers.
type BestPrice struct {
	EventID  int64
	MarketID string
	// Line is the market's line as in Key: 0 for a market without one.
	// Markets of different bookmakers are the same market when their event,
	// MarketID and Line agree.
	Line    float64
	Outcome string
	Odds    float64
	// Bookmakers offer Odds: sorted, more than one on a tie.
	Bookmakers []string
}

// BestPrices returns the best price of every outcome of every market in
// states, across bookmakers: typically MarketsAt's answer for one event, so
// that all prices stand at one time. Unavailable markets and suspended
// outcomes are left out, as are odds that are not a finite number above 1.
// Outcomes are matched by name; ties (equal odds) list every bookmaker. The
// result is ordered by event, market id (bytewise) and line, and within a
// market by outcome, in the order the states first list them (suspended
// ones included: a 1X2 stays 1, X, 2). It is pure: no database.
func BestPrices(states []MarketState) []BestPrice {
	type market struct {
		event  int64
		id     string
		line   float64
		prices []BestPrice // one per outcome name, in order of first listing; Odds 0: no price yet
	}
	var order []*market
	byKey := make(map[Key]*market)
	for i := range states {
		st := &states[i]
		if st.Unavailable {
			continue
		}
		k := st.Key()
		k.Bookmaker = ""
		m := byKey[k]
		if m == nil {
			m = &market{event: k.EventID, id: k.MarketID, line: k.Line}
			byKey[k] = m
			order = append(order, m)
		}
		for _, o := range st.Outcomes {
			j := slices.IndexFunc(m.prices, func(p BestPrice) bool { return p.Outcome == o.Name })
			if j < 0 {
				m.prices = append(m.prices, BestPrice{EventID: k.EventID, MarketID: k.MarketID, Line: k.Line, Outcome: o.Name})
				j = len(m.prices) - 1
			}
			p := &m.prices[j]
			switch {
			case o.Suspended || !finite(o.Odds) || !(o.Odds > 1):
			case o.Odds > p.Odds:
				p.Odds, p.Bookmakers = o.Odds, []string{st.Bookmaker}
			case o.Odds == p.Odds && !slices.Contains(p.Bookmakers, st.Bookmaker):
				p.Bookmakers = append(p.Bookmakers, st.Bookmaker)
			}
		}
	}
	slices.SortFunc(order, func(a, b *market) int {
		return cmp.Or(cmp.Compare(a.event, b.event), strings.Compare(a.id, b.id), cmp.Compare(a.line, b.line))
	})
	var out []BestPrice
	for _, m := range order {
		for _, p := range m.prices {
			if p.Bookmakers != nil {
				slices.Sort(p.Bookmakers)
				out = append(out, p)
			}
		}
	}
	return out
}
