package marketodds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// statements are the write path's SQL, with the table names filled in.
type statements struct {
	write string
}

// The change flag cannot travel through ON CONFLICT's excluded row (it holds
// only table columns), so it travels as change_count: the number of history
// rows the statement appended for the market, 0 for a confirmation (or for a
// change already stored, when a batch is retried). A data-less disappearance
// carries '[]' outcomes, which no available market can have.
const moveData = `(excluded.change_count > 0 AND excluded.outcomes <> '[]'::jsonb AND excluded.last_updated_at >= c.last_updated_at)`

// Nullable values travel as sentinels, because pgx encodes slices of
// pointers by reflection, at several times the cost: NaN for a missing line
// or handicap (validation keeps NaN out of real ones), ” for a history row
// without data (real ones have outcomes), year 1 for no unavailable_at
// (CapturedAt is validated to be >= 1970).
const nullSentinels = `NULLIF(x.line, 'NaN') AS line,
            CASE WHEN x.handicap_home <> 'NaN' THEN x.handicap_type END AS handicap_type,
            NULLIF(x.handicap_home, 'NaN') AS handicap_home, NULLIF(x.handicap_away, 'NaN') AS handicap_away`

func newStatements(current, history string) statements {
	dataCol := func(col string) string {
		return fmt.Sprintf("\n        %[1]s = CASE WHEN %[2]s THEN excluded.%[1]s ELSE c.%[1]s END,", col, moveData)
	}
	var data string
	for _, col := range []string{"line", "betpawa_market_name", "outcomes", "market_groups", "handicap_type", "handicap_home", "handicap_away"} {
		data += dataCol(col)
	}
	// One statement per batch for both tables: history first, so that the
	// current row learns how many changes were really new.
	//
	// History: a disappearance without data (outcomes NULL here) records the
	// market's last known data from the current row; ON CONFLICT DO NOTHING
	// makes a retried batch append nothing.
	//
	// Confirmations (markets without a change in the batch) take a cheaper
	// path: a plain UPDATE of last_confirmed_at and unavailable_at, from
	// arrays of keys and times only, which parses no JSON and takes no extra
	// row lock. A confirmation whose row does not exist comes back (the
	// ARRAY) and is written in full by a second statement.
	//
	// Current: rows go in key order (ORDER BY ord; Go sorted them), so
	// concurrent writers lock rows in one order and cannot deadlock. The
	// WHERE is the stale guard: a write not newer than the row changes
	// nothing, which also makes a retried batch a no-op. One exception: a
	// change newer than the row's last change lands even when a later
	// confirmation overtook it (batches retried out of order), or the row
	// would keep data older than what that confirmation confirmed. The CASEs
	// keep every column from moving backwards.
	return statements{write: `WITH h AS (
    INSERT INTO ` + history + ` (event_id, bookmaker_slug, betpawa_market_id, line,
        betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away,
        captured_at, unavailable)
    SELECT i.event_id, i.bookmaker_slug, i.market_id, i.line,
        CASE WHEN i.outcomes IS NULL THEN COALESCE(c.betpawa_market_name, '') ELSE i.name END,
        COALESCE(i.outcomes::jsonb, c.outcomes, '[]'::jsonb),
        CASE WHEN i.outcomes IS NULL THEN COALESCE(c.market_groups, '{}') ELSE i.groups::text[] END,
        CASE WHEN i.outcomes IS NULL THEN c.handicap_type ELSE i.handicap_type END,
        CASE WHEN i.outcomes IS NULL THEN c.handicap_home ELSE i.handicap_home END,
        CASE WHEN i.outcomes IS NULL THEN c.handicap_away ELSE i.handicap_away END,
        i.captured_at, i.unavailable
    FROM (SELECT x.event_id, x.bookmaker_slug, x.market_id, ` + nullSentinels + `, x.name,
            NULLIF(x.outcomes, '') AS outcomes, x.groups, x.captured_at, x.unavailable
        FROM unnest($14::bigint[], $15::text[], $16::text[], $17::float8[], $18::text[], $19::text[], $20::text[],
            $21::text[], $22::float8[], $23::float8[], $24::timestamptz[], $25::bool[])
            AS x(event_id, bookmaker_slug, market_id, line, name, outcomes, groups, handicap_type, handicap_home,
            handicap_away, captured_at, unavailable)) AS i
    LEFT JOIN LATERAL (
        SELECT c.betpawa_market_name, c.outcomes, c.market_groups, c.handicap_type, c.handicap_home, c.handicap_away
        FROM ` + current + ` c
        WHERE i.outcomes IS NULL AND c.event_id = i.event_id AND c.bookmaker_slug = i.bookmaker_slug
            AND c.betpawa_market_id = i.market_id AND COALESCE(c.line, 0) = COALESCE(i.line, 0)
        -- OFFSET 0 keeps the planner from flattening this into a hash join
        -- that reads the whole current table for every batch; as it is, it
        -- is an index lookup, and only for rows without data.
        OFFSET 0
    ) c ON true
    ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at) DO NOTHING
    RETURNING event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0) AS line_key
), hc AS (
    SELECT event_id, bookmaker_slug, betpawa_market_id, line_key, count(*)::int4 AS n
    FROM h GROUP BY event_id, bookmaker_slug, betpawa_market_id, line_key
), u AS (
    INSERT INTO ` + current + ` AS c (event_id, bookmaker_slug, betpawa_market_id, line,
        betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away,
        last_confirmed_at, last_updated_at, unavailable_at, change_count)
    SELECT i.event_id, i.bookmaker_slug, i.market_id, i.line, i.name, i.outcomes::jsonb, i.groups::text[],
        i.handicap_type, i.handicap_home, i.handicap_away, i.confirmed_at, i.updated_at, i.unavailable_at,
        COALESCE(hc.n, 0)
    FROM (SELECT x.event_id, x.bookmaker_slug, x.market_id, ` + nullSentinels + `, x.name, x.outcomes, x.groups,
            x.confirmed_at, x.updated_at, NULLIF(x.unavailable_at, '0001-01-01 00:00:00+00') AS unavailable_at, x.ord
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::float8[], $10::float8[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[])
            WITH ORDINALITY AS x(event_id, bookmaker_slug, market_id, line, name, outcomes, groups, handicap_type,
            handicap_home, handicap_away, confirmed_at, updated_at, unavailable_at, ord)) AS i
    LEFT JOIN hc ON hc.event_id = i.event_id AND hc.bookmaker_slug = i.bookmaker_slug
        AND hc.betpawa_market_id = i.market_id AND hc.line_key = COALESCE(i.line, 0)
    ORDER BY i.ord
    ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)) DO UPDATE SET` + data + `
        last_updated_at = CASE WHEN excluded.change_count > 0 AND excluded.last_updated_at > c.last_updated_at
            THEN excluded.last_updated_at ELSE c.last_updated_at END,
        -- The newest observation decides availability.
        unavailable_at = CASE WHEN excluded.last_confirmed_at <= c.last_confirmed_at THEN c.unavailable_at
            WHEN excluded.unavailable_at IS NULL THEN NULL
            ELSE COALESCE(c.unavailable_at, excluded.unavailable_at) END,
        change_count = c.change_count + excluded.change_count,
        last_confirmed_at = GREATEST(c.last_confirmed_at, excluded.last_confirmed_at)
    WHERE c.last_confirmed_at < excluded.last_confirmed_at
        OR (excluded.change_count > 0 AND excluded.last_updated_at > c.last_updated_at)
    RETURNING 1
), f AS MATERIALIZED (
    SELECT * FROM unnest($26::bigint[], $27::text[], $28::text[], $29::float8[], $30::timestamptz[], $31::timestamptz[])
        WITH ORDINALITY AS f(event_id, bookmaker_slug, market_id, line_key, confirmed_at, unavailable_at, ord)
), cu AS (
    UPDATE ` + current + ` AS c SET
        last_confirmed_at = f.confirmed_at,
        unavailable_at = CASE WHEN f.unavailable_at = '0001-01-01 00:00:00+00' THEN NULL
            ELSE COALESCE(c.unavailable_at, f.unavailable_at) END
    FROM f
    WHERE c.event_id = f.event_id AND c.bookmaker_slug = f.bookmaker_slug AND c.betpawa_market_id = f.market_id
        AND COALESCE(c.line, 0) = f.line_key AND c.last_confirmed_at < f.confirmed_at
    RETURNING f.ord
)
SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM h), (SELECT count(*) FROM cu),
    ARRAY(SELECT f.ord FROM f WHERE NOT EXISTS (SELECT FROM cu WHERE cu.ord = f.ord)
        AND NOT EXISTS (SELECT FROM ` + current + ` c WHERE c.event_id = f.event_id
            AND c.bookmaker_slug = f.bookmaker_slug AND c.betpawa_market_id = f.market_id
            AND COALESCE(c.line, 0) = f.line_key))`}
}

// WriteMarketBatch writes a batch in one transaction of its own: every
// write upserts its market's current row, and every changed write appends a
// history row. See WriteMarketBatchTx for the rules.
//
// The returned error is nil when the batch committed, even if some writes
// were rejected (they are in Result.Rejected). Otherwise nothing was
// written; IsTransient tells whether retrying may help, and retrying a batch
// whose commit went through but whose answer was lost changes nothing.
func (s *Store) WriteMarketBatch(ctx context.Context, b Batch) (Result, error) {
	start := time.Now()
	p := s.prepare(&b)
	// Partition DDL goes in its own short transaction, before the write
	// transaction: it locks the history table, and should not hold that lock
	// for as long as the batch takes.
	if err := s.ensurePartitionStarts(ctx, s.db, p.partitionStarts()); err != nil {
		return p.result(start), s.wrap(&b, err)
	}
	if len(p.units) == 0 { // nothing valid: no transaction to open
		res := p.result(start)
		s.logResult(ctx, &b, res)
		return res, nil
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return p.result(start), s.wrap(&b, err)
	}
	if err := s.apply(ctx, tx, p, p.units, true, false); err != nil {
		// The transaction is lost either way; the rollback's own error says
		// nothing new.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return p.result(start), s.wrap(&b, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return p.result(start), s.wrap(&b, err)
	}
	res := p.result(start)
	s.logResult(ctx, &b, res)
	return res, nil
}

// WriteMarketBatchTx writes a batch inside the caller's transaction, so that
// odds commit together with the host's own rows. The caller commits or rolls
// back. It works in a savepoint, so a failed call leaves tx usable.
//
// The rules (DESIGN.md, "Write semantics"):
//   - Every write is validated first; an invalid one is rejected with a
//     *ValidationError in Result.Rejected and the rest still go in.
//   - Several writes for one key: the newest CapturedAt sets the current
//     row's confirmation, the newest changed write its data; every distinct
//     changed write is appended to history.
//   - A write whose CapturedAt is not newer than the row's
//     last_confirmed_at leaves the current row alone (Result.Stale); its
//     history row is still appended.
//   - last_confirmed_at always moves; data columns and last_updated_at move
//     only for changed writes; unavailable_at is set on disappearance (kept
//     at the first time) and cleared on reappearance.
//   - Markets that changed are upserted in full; the others are confirmed by
//     a plain UPDATE of two columns, from arrays of keys and times (a
//     confirmation of a market the table lacks is then written in full).
//     Each pass applies rows in key order, so concurrent writers wait for
//     each other instead of deadlocking. (Two writers that share markets
//     and disagree on which of them changed can still deadlock across the
//     two passes; PostgreSQL breaks it with 40P01, which IsTransient
//     reports, and the retry goes through.)
//   - A row that PostgreSQL itself refuses is isolated by splitting the
//     batch, rejected with a *RowError, and the rest is written.
//   - A missing history partition is created and the write tried again.
//
// CapturedAt is stored with microsecond precision, as PostgreSQL keeps it.
func (s *Store) WriteMarketBatchTx(ctx context.Context, tx pgx.Tx, b Batch) (Result, error) {
	start := time.Now()
	p := s.prepare(&b)
	if err := s.ensurePartitionStarts(ctx, tx, p.partitionStarts()); err != nil {
		return p.result(start), s.wrap(&b, err)
	}
	if err := s.apply(ctx, tx, p, p.units, true, false); err != nil {
		return p.result(start), s.wrap(&b, err)
	}
	res := p.result(start)
	s.logResult(ctx, &b, res)
	return res, nil
}

func (s *Store) wrap(b *Batch, err error) error {
	return fmt.Errorf("marketodds: write batch %d of run %d (%d writes): %w", b.Index, b.RunID, len(b.Writes), err)
}

func (s *Store) logResult(ctx context.Context, b *Batch, res Result) {
	for _, r := range res.Rejected {
		s.logger.WarnContext(ctx, "oddsledger: write rejected", "run", b.RunID, "batch", b.Index,
			"index", r.Index, "market", r.Key.String(), "err", r.Err)
	}
	s.logger.DebugContext(ctx, "oddsledger: batch written", "run", b.RunID, "batch", b.Index,
		"writes", len(b.Writes), "upserted", res.Upserted, "stale", res.Stale,
		"history_added", res.HistoryAdded, "history_duplicate", res.HistoryDuplicate,
		"rejected", len(res.Rejected), "elapsed", res.Elapsed)
}

// span is a run [lo, hi) of prepared.sorted: the writes of one key.
type span struct{ lo, hi int }

// prepared is a validated batch, sorted by key and time, grouped by key.
type prepared struct {
	writes []Write // the batch's writes; CapturedAt truncated to microseconds
	sorted []int   // indexes of the valid writes, by key, CapturedAt, index
	units  []span
	span   time.Duration
	res    Result
}

func (s *Store) prepare(b *Batch) *prepared {
	p := &prepared{writes: make([]Write, len(b.Writes)), span: s.cfg.PartitionSpan}
	p.sorted = make([]int, 0, len(b.Writes))
	for i := range b.Writes {
		w := b.Writes[i]
		// PostgreSQL keeps microseconds; comparing nanoseconds in Go with
		// microseconds in the table would make a retry look newer.
		w.CapturedAt = w.CapturedAt.Truncate(time.Microsecond)
		p.writes[i] = w
		if err := w.Validate(); err != nil {
			p.res.Rejected = append(p.res.Rejected, Rejection{Index: i, Key: w.Key(), Err: err})
			continue
		}
		p.sorted = append(p.sorted, i)
	}
	keys := make([]Key, len(p.writes))
	for _, i := range p.sorted {
		keys[i] = p.writes[i].Key()
	}
	slices.SortFunc(p.sorted, func(a, b int) int {
		if c := keys[a].Compare(keys[b]); c != 0 {
			return c
		}
		if c := p.writes[a].CapturedAt.Compare(p.writes[b].CapturedAt); c != 0 {
			return c
		}
		return a - b
	})
	for lo := 0; lo < len(p.sorted); {
		hi := lo + 1
		for hi < len(p.sorted) && keys[p.sorted[hi]] == keys[p.sorted[lo]] {
			hi++
		}
		p.units = append(p.units, span{lo, hi})
		lo = hi
	}
	return p
}

func (p *prepared) result(start time.Time) Result {
	r := p.res
	slices.SortFunc(r.Rejected, func(a, b Rejection) int { return a.Index - b.Index })
	r.Elapsed = time.Since(start)
	return r
}

// partitionStarts lists the history partitions the batch writes to.
func (p *prepared) partitionStarts() []time.Time {
	var starts []time.Time
	for _, i := range p.sorted {
		if w := &p.writes[i]; w.Changed {
			st := partitionStart(w.CapturedAt, p.span)
			if len(starts) == 0 || !slices.ContainsFunc(starts, st.Equal) {
				starts = append(starts, st)
			}
		}
	}
	return starts
}

// apply writes units in a savepoint. A row error splits the units in two and
// tries each half, down to the single market, which is then rejected.
//
// full sends every unit with its data (for confirmations whose row turned out
// to be missing); otherwise units without a change take the confirmation path.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, p *prepared, units []span, mayCreatePartitions, full bool) error {
	if len(units) == 0 {
		return nil
	}
	cur, hist, conf := p.columns(units, full)
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	var upserted, histAdded, confirmed int
	var missing []int64
	args := append(append(cur.args(), hist.args()...), conf.args()...)
	err = sp.QueryRow(ctx, s.sql.write, args...).Scan(&upserted, &histAdded, &confirmed, &missing)
	if err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		switch class := classify(err); class {
		case classRow, classTooBig:
			// A row error names no row: halve until the bad market is alone.
			// A statement timeout may pass for a smaller batch.
			if len(units) == 1 {
				if class == classTooBig {
					return err
				}
				p.reject(units[0], err)
				s.logger.WarnContext(ctx, "oddsledger: row isolated", "market", p.writes[p.sorted[units[0].lo]].Key().String(), "err", err)
				return nil
			}
			mid := len(units) / 2
			if err := s.apply(ctx, tx, p, units[:mid], mayCreatePartitions, full); err != nil {
				return err
			}
			return s.apply(ctx, tx, p, units[mid:], mayCreatePartitions, full)
		case classNoPartition:
			if !mayCreatePartitions {
				return fmt.Errorf("%w: %w", ErrNoPartition, err)
			}
			// Someone dropped a partition we thought was there: forget what
			// we knew, create what is missing, try once more.
			s.forgetPartitions()
			sub := &prepared{writes: p.writes, sorted: p.sorted, units: units, span: p.span}
			if err := s.ensurePartitionStarts(ctx, tx, sub.partitionStarts()); err != nil {
				return err
			}
			return s.apply(ctx, tx, p, units, false, full)
		}
		return err
	}
	if err := sp.Commit(ctx); err != nil {
		return err
	}
	p.res.Upserted += upserted + confirmed
	p.res.Stale += len(units) - upserted - confirmed - len(missing)
	p.res.HistoryAdded += histAdded
	p.res.HistoryDuplicate += hist.len() - histAdded + hist.dupInBatch
	if len(missing) == 0 {
		return nil
	}
	// Confirmations of markets the table does not have (a classifier that
	// knew them from elsewhere): write them in full.
	again := make([]span, len(missing))
	for i, ord := range missing {
		again[i] = conf.units[ord-1]
	}
	return s.apply(ctx, tx, p, again, mayCreatePartitions, true)
}

func (p *prepared) reject(u span, err error) {
	for _, i := range p.sorted[u.lo:u.hi] {
		k := p.writes[i].Key()
		p.res.Rejected = append(p.res.Rejected, Rejection{Index: i, Key: k, Err: &RowError{Key: k, Err: err}})
	}
}

// columns builds the array parameters of the write statement for units: the
// full current rows, the history rows, and the confirmations (unless full).
func (p *prepared) columns(units []span, full bool) (*currentColumns, *historyColumns, *confirmColumns) {
	cur := newCurrentColumns(0)
	hist := newHistoryColumns()
	conf := newConfirmColumns(len(units))
	for _, u := range units {
		ws := p.sorted[u.lo:u.hi]
		newest := &p.writes[ws[len(ws)-1]]
		var data, changed *Write // newest write with data; newest changed write
		var unavailableSince time.Time
		var prevChanged time.Time
		for _, i := range ws {
			w := &p.writes[i]
			if len(w.Outcomes) > 0 && (data == nil || w.Changed || !data.Changed) {
				data = w
			}
			if w.Unavailable {
				if unavailableSince.IsZero() {
					unavailableSince = w.CapturedAt
				}
			} else {
				unavailableSince = time.Time{}
			}
			if !w.Changed {
				continue
			}
			changed = w
			// Writes are sorted by time: equal times are one change sent twice.
			if !prevChanged.IsZero() && prevChanged.Equal(w.CapturedAt) {
				hist.dupInBatch++
				continue
			}
			prevChanged = w.CapturedAt
			hist.add(w)
		}
		updatedAt := newest.CapturedAt
		if changed != nil {
			updatedAt = changed.CapturedAt
		}
		var unavailableAt *time.Time
		if newest.Unavailable {
			t := unavailableSince
			unavailableAt = &t
		}
		if changed == nil && !full {
			conf.add(u, newest, unavailableAt)
			continue
		}
		cur.add(newest, data, updatedAt, unavailableAt)
	}
	return cur, hist, conf
}

// partitionStart is the start of the partition that holds t.
func partitionStart(t time.Time, span time.Duration) time.Time {
	sec := int64(span / time.Second)
	u := t.Unix()
	start := u - u%sec
	if u%sec < 0 {
		start -= sec
	}
	return time.Unix(start, 0).UTC()
}
