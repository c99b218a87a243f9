package marketodds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// writeStatements are the statements of the write path.
type writeStatements struct {
	writeMarkets, repairCurrent statement
}

func newWriteStatements(schema string) writeStatements {
	return writeStatements{
		writeMarkets:  loadStatement("write_markets", schema, writeMarketsParams{}),
		repairCurrent: loadStatement("repair_current", schema, repairCurrentParams{}),
	}
}

// repairCurrentParams are the parameters of sql/repair_current.sql: the
// keys of the markets to recompute from history.
type repairCurrentParams struct {
	EventIDs   []int64   `sql:"event_ids"`
	Bookmakers []string  `sql:"bookmakers"`
	MarketIDs  []string  `sql:"market_ids"`
	LineKeys   []float64 `sql:"line_keys"`
}

// WriteMarketBatch writes a batch in one transaction of its own: every
// write upserts its market's current row, and every changed write appends a
// history row. It is WriteMarketBatchTx in a transaction the store opens and
// commits; see there for the rules.
//
// The returned error is nil when the batch committed, even if some writes
// were rejected (they are in Result.Rejected). Otherwise nothing was
// written and Result counts nothing (Rejected lists only the writes that
// failed validation); IsTransient tells whether retrying may help, and
// retrying a batch whose commit went through but whose answer was lost
// changes nothing.
func (s *Store) WriteMarketBatch(ctx context.Context, b Batch) (Result, error) {
	return s.writeBatch(ctx, s.db, b)
}

// WriteMarketBatchTx writes a batch inside the caller's transaction, so that
// odds commit together with the host's own rows. The caller commits or rolls
// back. The call works in a savepoint of its own: when it returns an error,
// nothing of the batch is left in tx, and tx is usable.
//
// The rules:
//   - Every write is validated first; an invalid one is rejected with a
//     *ValidationError in Result.Rejected and the rest still go in.
//   - Several writes for one key: the newest CapturedAt sets the current
//     row's confirmation, the newest changed write its data; every distinct
//     changed write is appended to history with its own data (a
//     disappearance, which carries none, with the data the market had just
//     before it: from the batch when the batch has it).
//   - A write whose CapturedAt is not newer than the row's
//     last_confirmed_at leaves the current row alone (Result.Stale); its
//     history row is still appended.
//   - last_confirmed_at always moves; data columns and last_updated_at move
//     only for changed writes; unavailable_at is set on disappearance (kept
//     at the first time) and cleared on reappearance.
//   - Markets that changed are upserted in full; the others are confirmed by
//     a plain UPDATE of two columns, from arrays of keys and scrapes (a
//     confirmation of a market the table lacks is then written in full).
//     Before any market, the batch's market_scrapes rows are locked (upserted)
//     in key order: writers that share markets take turns per event and
//     bookmaker for the rest of their transactions instead of deadlocking.
//   - A row that PostgreSQL itself refuses is isolated by splitting the
//     batch, rejected with a *RowError, and the rest is written.
//   - Partitions: the store learns from the catalog which exist. One that
//     is missing is created in a short transaction of its own on the
//     store's DB, never in tx (so no lock of it outlives the call), and the
//     write is tried again. A role that may not create it gets a
//     *PartitionError (ErrNoPartition, not transient) and nothing is written.
//   - The store's Config must agree with the schema (ErrSchemaMismatch).
//
// CapturedAt is stored with microsecond precision, as PostgreSQL keeps it.
func (s *Store) WriteMarketBatchTx(ctx context.Context, tx pgx.Tx, b Batch) (Result, error) {
	return s.writeBatch(ctx, tx, b)
}

// writeBatch is both write methods: db.Begin opens what the batch is written
// in, a transaction on the store's DB or a savepoint in the caller's.
func (s *Store) writeBatch(ctx context.Context, db DB, b Batch) (Result, error) {
	start := time.Now()
	p := s.prepare(&b)
	w, err := s.writePrepared(ctx, db, p)
	if err != nil {
		err = s.wrap(&b, err)
	}
	res := p.result(start, w)
	s.stats.record(&b, res, err)
	if err == nil {
		s.logResult(ctx, &b, res)
	}
	if s.cfg.OnBatch != nil {
		s.cfg.OnBatch(BatchEvent{Batch: &b, Result: res, Duration: res.Elapsed, Err: err})
	}
	return res, err
}

// writePrepared writes what is valid of the batch; nil written and an error
// when nothing was.
func (s *Store) writePrepared(ctx context.Context, db DB, p *prepared) (*written, error) {
	if len(p.units) == 0 { // nothing valid: nothing to send
		return &written{}, nil
	}
	if err := s.agreeWithSchema(ctx); err != nil {
		return nil, err
	}
	needs := p.partitionNeeds()
	for attempt := 1; ; attempt++ {
		if err := s.ensurePartitions(ctx, needs); err != nil {
			return nil, err
		}
		w, err := s.writeOnce(ctx, db, p)
		if err == nil {
			return w, nil
		}
		if attempt == 1 && classify(err) == classNoPartition {
			// A partition the store knew of is gone (dropped behind its
			// back): ask the catalog again, create it, write again.
			s.forgetPartitions()
			continue
		}
		if classify(err) == classNoPartition {
			err = fmt.Errorf("%w: %w", ErrNoPartition, err)
		}
		return nil, err
	}
}

// writeOnce writes the prepared batch in one transaction (or savepoint)
// opened on db. The whole batch goes as one statement without a savepoint
// of its own; only when PostgreSQL refuses a row does it start over and
// isolate the row, each half of the batch in a savepoint.
func (s *Store) writeOnce(ctx context.Context, db DB, p *prepared) (*written, error) {
	w := &written{}
	err := inTx(ctx, db, func(tx pgx.Tx) error {
		return s.apply(ctx, tx, p, w, p.units, confirmByUpdate)
	})
	if c := classify(err); len(p.units) > 1 && (c == classRow || c == classTooBig) {
		w = &written{}
		err = inTx(ctx, db, func(tx pgx.Tx) error {
			return s.isolateHalves(ctx, tx, p, w, p.units)
		})
	}
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (s *Store) wrap(b *Batch, err error) error {
	return fmt.Errorf("marketodds: write batch %d of run %d (%d writes): %w", b.Index, b.RunID, len(b.Writes), poolerHint(err))
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

// keyRun is a run [lo, hi) of prepared.sorted: the writes of one market.
// changed tells whether any of them is a change.
type keyRun struct {
	lo, hi  int
	changed bool
}

// prepared is a validated batch, sorted by key and time, grouped by key.
type prepared struct {
	writes        []Write     // the batch's writes, as the caller gave them (read only)
	at            []time.Time // each write's CapturedAt truncated to microseconds
	sorted        []int       // indexes of the valid writes, by key, CapturedAt, index
	units         []keyRun    // one per market
	partitionSpan time.Duration
	confirm       ConfirmMode
	scrapes       []scrape    // the distinct scrapes of the valid writes, key order
	invalid       []Rejection // writes that failed validation
}

// scrape is one read of one event at one bookmaker: the writes of a batch
// that share EventID, Bookmaker and CapturedAt.
type scrape struct {
	eventID   int64
	bookmaker string
	at        time.Time
}

func compareScrapes(a, b scrape) int {
	if c := cmp.Compare(a.eventID, b.eventID); c != 0 {
		return c
	}
	if c := strings.Compare(a.bookmaker, b.bookmaker); c != 0 {
		return c
	}
	return a.at.Compare(b.at)
}

// written counts what one attempt at the batch wrote. It becomes the
// Result only if the attempt committed.
type written struct {
	upserted, stale, historyAdded, historyDuplicate int
	scrapesLogged, confirmedByScrape                int
	rejected                                        []Rejection // rows PostgreSQL refused
}

func (w *written) add(o *written) {
	w.scrapesLogged += o.scrapesLogged
	w.confirmedByScrape += o.confirmedByScrape
	w.upserted += o.upserted
	w.stale += o.stale
	w.historyAdded += o.historyAdded
	w.historyDuplicate += o.historyDuplicate
	w.rejected = append(w.rejected, o.rejected...)
}

// sortEntry is a valid write as prepare sorts it: its key and time inline,
// so that comparisons read one slice instead of following indexes into the
// batch (sorting is most of the client's work on a batch).
type sortEntry struct {
	eventID   int64
	bookmaker string
	marketID  string
	// The strings' first 8 bytes: most comparisons end on these.
	bookmakerPrefix, marketIDPrefix uint64
	line                            float64 // LineKey
	at                              int64   // CapturedAt, microseconds since 1970 (validated: 1970-9999)
	index                           int     // in the batch
	changed                         bool
}

func (e *sortEntry) sameKey(o *sortEntry) bool {
	return e.eventID == o.eventID && e.bookmaker == o.bookmaker && e.marketID == o.marketID && e.line == o.line
}

func compareEntries(a, b *sortEntry) int {
	if a.eventID != b.eventID {
		return cmp.Compare(a.eventID, b.eventID)
	}
	if c := comparePrefixed(a.bookmaker, b.bookmaker, a.bookmakerPrefix, b.bookmakerPrefix); c != 0 {
		return c
	}
	if c := comparePrefixed(a.marketID, b.marketID, a.marketIDPrefix, b.marketIDPrefix); c != 0 {
		return c
	}
	if c := compareLines(a.line, b.line); c != 0 {
		return c
	}
	if a.at != b.at {
		return cmp.Compare(a.at, b.at)
	}
	return a.index - b.index
}

// prefix8 returns s's first 8 bytes as a big-endian number, zero-padded.
// For strings without NUL bytes (validated) it orders as those bytes do, and
// two strings of at most 8 bytes with one prefix are equal.
func prefix8(s string) uint64 {
	var x uint64
	for i := range 8 {
		x <<= 8
		if i < len(s) {
			x |= uint64(s[i])
		}
	}
	return x
}

// comparePrefixed is strings.Compare(a, b), given their prefix8.
func comparePrefixed(a, b string, pa, pb uint64) int {
	if pa != pb {
		return cmp.Compare(pa, pb)
	}
	if len(a) <= 8 && len(b) <= 8 {
		return 0
	}
	return strings.Compare(a, b)
}

func (s *Store) prepare(b *Batch) *prepared {
	p := &prepared{writes: b.Writes, at: make([]time.Time, len(b.Writes)), partitionSpan: s.cfg.PartitionSpan, confirm: s.cfg.Confirm}
	entries := make([]sortEntry, 0, len(b.Writes))
	for i := range b.Writes {
		w := &b.Writes[i]
		// PostgreSQL keeps microseconds; comparing nanoseconds in Go with
		// microseconds in the table would make a retry look newer.
		p.at[i] = w.CapturedAt.Truncate(time.Microsecond)
		if err := w.Validate(); err != nil {
			p.invalid = append(p.invalid, Rejection{Index: i, Key: w.Key(), Err: err})
			continue
		}
		entries = append(entries, sortEntry{eventID: w.EventID, bookmaker: w.Bookmaker, marketID: w.MarketID,
			bookmakerPrefix: prefix8(w.Bookmaker), marketIDPrefix: prefix8(w.MarketID),
			line: LineKey(w.Line), at: p.at[i].UnixMicro(), index: i, changed: w.Changed})
	}
	// Sort positions, not the entries: moving structs that hold strings
	// costs write barriers while the GC runs.
	order := make([]int32, len(entries))
	for k := range order {
		order[k] = int32(k)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareEntries(&entries[a], &entries[b]) })
	p.sorted = make([]int, len(entries))
	p.units = make([]keyRun, 0, len(entries))
	for lo := 0; lo < len(order); {
		first := &entries[order[lo]]
		u := keyRun{lo: lo, hi: lo + 1, changed: first.changed}
		for u.hi < len(order) && entries[order[u.hi]].sameKey(first) {
			u.changed = u.changed || entries[order[u.hi]].changed
			u.hi++
		}
		p.units = append(p.units, u)
		lo = u.hi
	}
	for k, o := range order {
		e := &entries[o]
		p.sorted[k] = e.index
		sc := scrape{e.eventID, e.bookmaker, p.at[e.index]}
		// The writes of one scrape are adjacent in key order unless one
		// market has several writes: keep one of each run, so that a few
		// scrapes are sorted, not every write.
		if n := len(p.scrapes); n > 0 && compareScrapes(p.scrapes[n-1], sc) == 0 { // as slices.CompactFunc below
			continue
		}
		p.scrapes = append(p.scrapes, sc)
	}
	slices.SortFunc(p.scrapes, compareScrapes)
	p.scrapes = slices.CompactFunc(p.scrapes, func(a, b scrape) bool { return compareScrapes(a, b) == 0 })
	return p
}

// result is the batch's Result: w's counts when an attempt committed (nil
// when none did), and the rejected writes.
func (p *prepared) result(start time.Time, w *written) Result {
	r := Result{Rejected: slices.Clone(p.invalid)}
	if w != nil {
		r.Upserted, r.Stale, r.HistoryAdded, r.HistoryDuplicate = w.upserted, w.stale, w.historyAdded, w.historyDuplicate
		r.Scrapes, r.ConfirmedByScrape = w.scrapesLogged, w.confirmedByScrape
		r.Rejected = append(r.Rejected, w.rejected...)
	}
	slices.SortFunc(r.Rejected, func(a, b Rejection) int { return a.Index - b.Index })
	r.Elapsed = time.Since(start)
	return r
}

// partitionNeeds lists the partitions the batch writes to: history for its
// changes, the scrape log for every scrape.
func (p *prepared) partitionNeeds() []partitionNeed {
	var needs []partitionNeed
	add := func(table string, t time.Time) {
		n := partitionNeed{table, partitionStart(t, p.partitionSpan)}
		if !slices.Contains(needs, n) {
			needs = append(needs, n)
		}
	}
	for _, sc := range p.scrapes {
		add(scrapeLogTable, sc.at)
	}
	for _, u := range p.units {
		if !u.changed {
			continue
		}
		for _, i := range p.sorted[u.lo:u.hi] {
			if p.writes[i].Changed {
				add(historyTable, p.at[i])
			}
		}
	}
	return needs
}

// confirmPath says how apply sends markets that did not change.
type confirmPath int

const (
	confirmByUpdate confirmPath = iota // keys and scrapes only, a plain UPDATE
	confirmInFull                      // with their data, through the upsert (their row was missing)
)

// isolate writes units in a savepoint. When PostgreSQL refuses a row (the
// error names no row) it splits the units in two and tries each half, down
// to the single market, which is then rejected; the rest is written.
func (s *Store) isolate(ctx context.Context, tx pgx.Tx, p *prepared, w *written, units []keyRun) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	part := &written{}
	err = s.apply(ctx, sp, p, part, units, confirmByUpdate)
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return err
		}
		w.add(part)
		return nil
	}
	if rbErr := sp.Rollback(ctx); rbErr != nil {
		return errors.Join(err, rbErr)
	}
	switch class := classify(err); class {
	case classRow, classTooBig:
		// A statement timeout may pass for a smaller batch; for a single
		// market it is the answer.
		if len(units) == 1 {
			if class == classTooBig {
				return err
			}
			w.rejected = append(w.rejected, p.rejections(units[0], err)...)
			s.logger.WarnContext(ctx, "oddsledger: row isolated", "market", p.writes[p.sorted[units[0].lo]].Key().String(), "err", err)
			return nil
		}
		return s.isolateHalves(ctx, tx, p, w, units)
	}
	return err
}

// isolateHalves isolates each half of units, which failed together.
func (s *Store) isolateHalves(ctx context.Context, tx pgx.Tx, p *prepared, w *written, units []keyRun) error {
	mid := len(units) / 2
	if err := s.isolate(ctx, tx, p, w, units[:mid]); err != nil {
		return err
	}
	return s.isolate(ctx, tx, p, w, units[mid:])
}

// apply sends units as one statement in tx, then writes in full the
// confirmations whose row turned out to be missing.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, p *prepared, w *written, units []keyRun, path confirmPath) error {
	if len(units) == 0 {
		return nil
	}
	params := p.params(units, path)
	var upserted, scrapesLogged, histAdded, confirmed int
	var schemaMode string
	var missing, late []int64
	a := args(params)
	if s.describeWrites {
		a = append([]any{pgx.QueryExecModeCacheDescribe}, a...)
	}
	err := tx.QueryRow(ctx, s.write.writeMarkets.sql, a...).Scan(&upserted, &scrapesLogged, &schemaMode,
		&histAdded, &confirmed, &missing, &late)
	if err != nil {
		return err
	}
	if schemaMode != s.cfg.Confirm.String() {
		// The schema switched modes under a running writer: undo, refuse.
		s.mu.Lock()
		s.settingsChecked = false
		s.mu.Unlock()
		return fmt.Errorf("%w: schema %q confirms per %s now, Config.Confirm is %s (see SwitchConfirmMode)",
			ErrSchemaMismatch, s.cfg.Schema, strings.TrimSuffix(schemaMode, "s"), s.cfg.Confirm)
	}
	w.scrapesLogged += scrapesLogged
	w.confirmedByScrape += params.confirmedByScrape
	w.upserted += upserted + confirmed
	w.stale += len(units) - upserted - confirmed - len(missing) - params.confirmedByScrape
	w.historyAdded += histAdded
	w.historyDuplicate += params.historyRows() - histAdded + params.historyDupInBatch
	if len(late) > 0 {
		var repair repairCurrentParams
		for _, ord := range late {
			i := ord - 1 // 1-based, in the current rows
			repair.EventIDs = append(repair.EventIDs, params.CurrentEventIDs[i])
			repair.Bookmakers = append(repair.Bookmakers, params.CurrentBookmakers[i])
			repair.MarketIDs = append(repair.MarketIDs, params.CurrentMarketIDs[i])
			repair.LineKeys = append(repair.LineKeys, LineKey(lineOrNil(params.CurrentLines[i])))
		}
		if _, err := tx.Exec(ctx, s.write.repairCurrent.sql, args(repair)...); err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// Confirmations of markets the table does not have (a classifier that
	// knew them from elsewhere): write them in full.
	again := make([]keyRun, len(missing))
	for i, ord := range missing {
		again[i] = params.confirmRuns[ord-1]
	}
	return s.apply(ctx, tx, p, w, again, confirmInFull)
}

func (p *prepared) rejections(u keyRun, err error) []Rejection {
	var out []Rejection
	for _, i := range p.sorted[u.lo:u.hi] {
		k := p.writes[i].Key()
		out = append(out, Rejection{Index: i, Key: k, Err: &RowError{Key: k, Err: err}})
	}
	return out
}

// params builds the parameters of the write statement for units: the
// history rows, the markets written in full, and the confirmations (unless
// path sends them in full).
func (p *prepared) params(units []keyRun, path confirmPath) *writeMarketsParams {
	params := &writeMarketsParams{}
	if path == confirmByUpdate {
		// Every attempt at (part of) the batch records all its scrapes:
		// recording one twice is a no-op, and a scrape happened even when
		// one of its markets is rejected.
		params.addScrapes(p.scrapes)
	}
	for _, u := range units {
		if !u.changed && path == confirmByUpdate && p.confirm == ConfirmScrapes {
			params.confirmedByScrape++ // the scrape row confirms it
			continue
		}
		ws := p.sorted[u.lo:u.hi]
		last := ws[len(ws)-1]
		newest, newestAt := &p.writes[last], p.at[last]
		var data, changed *Write // newest write with data; newest changed write
		var before *Write        // the latest write with data so far, in time order
		var updatedAt, unavailableSince, prevChanged time.Time
		for _, i := range ws {
			w, at := &p.writes[i], p.at[i]
			if len(w.Outcomes) > 0 && (data == nil || w.Changed || !data.Changed) {
				data = w
			}
			if w.Unavailable {
				if unavailableSince.IsZero() {
					unavailableSince = at
				}
			} else {
				unavailableSince = time.Time{}
			}
			if w.Changed {
				changed, updatedAt = w, at
				// Writes are sorted by time: equal times are one change sent twice.
				if !prevChanged.IsZero() && prevChanged.Equal(at) {
					params.historyDupInBatch++
				} else {
					prevChanged = at
					// A disappearance carries no data: it records what the
					// market had just before it, which the batch knows when
					// it holds an earlier write of the market (else the
					// statement takes it from the current row).
					recorded := w
					if len(w.Outcomes) == 0 && before != nil {
						recorded = before
					}
					params.addHistory(w, at, recorded)
				}
			}
			if len(w.Outcomes) > 0 {
				before = w
			}
		}
		if changed == nil {
			updatedAt = newestAt
		}
		var unavailableAt *time.Time
		if newest.Unavailable {
			t := unavailableSince
			unavailableAt = &t
		}
		if changed == nil && path == confirmByUpdate {
			params.addConfirm(u, newest, newestAt, unavailableAt)
			continue
		}
		params.addCurrent(newest, newestAt, data, updatedAt, unavailableAt)
	}
	params.finish()
	return params
}
