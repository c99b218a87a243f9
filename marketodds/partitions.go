package marketodds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The partitioned tables. Both are partitioned by range on their time
// column, with the same span and bounds.
const (
	historyTable   = "market_odds_history"
	scrapeLogTable = "market_scrape_log"
)

var partitionedTables = []string{historyTable, scrapeLogTable}

// Partition is one partition of market_odds_history or market_scrape_log.
type Partition struct {
	// Table is the partitioned table: "market_odds_history" or
	// "market_scrape_log".
	Table string
	// Name is the partition's own table name. The store names its partitions
	// TABLE_pYYYYMMDD (TABLE_pYYYYMMDD_HHMM for spans shorter than a day);
	// partitions made by other tools keep their names.
	Name string
	// From and To are the partition's bounds: it holds [From, To).
	From, To time.Time
}

func (p Partition) holds(t time.Time) bool { return !t.Before(p.From) && t.Before(p.To) }

// partitionNeed is a partition a write needs: the one of table that holds at.
type partitionNeed struct {
	table string
	at    time.Time
}

// partitionStatements are the statements of partition maintenance.
type partitionStatements struct {
	setLocalUTC, list, lock statement
}

func newPartitionStatements(schema string) partitionStatements {
	return partitionStatements{
		setLocalUTC: loadStatement("set_local_utc", schema, nil),
		list:        loadStatement("partitions_list", schema, schemaParams{}),
		lock:        loadStatement("lock_partitions", schema, schemaParams{}),
	}
}

// EnsurePartitions creates the partitions of market_odds_history and
// market_scrape_log that cover [from, to] and do not exist yet. Run it as
// the role that owns the schema, from a daily job (Migrate runs it too, for
// Config.PartitionsAhead): with partitions created ahead, writes never need
// DDL, and a writer needs no right to run it.
func (s *Store) EnsurePartitions(ctx context.Context, from, to time.Time) error {
	if to.Before(from) {
		return fmt.Errorf("marketodds: EnsurePartitions: to (%s) before from (%s)", to, from)
	}
	var needs []partitionNeed
	for st := partitionStart(from, s.cfg.PartitionSpan); !st.After(to); st = st.Add(s.cfg.PartitionSpan) {
		for _, table := range partitionedTables {
			needs = append(needs, partitionNeed{table, st})
		}
	}
	if err := s.createPartitions(ctx, needs); err != nil {
		return fmt.Errorf("marketodds: EnsurePartitions: %w", err)
	}
	return nil
}

// ensurePartitions makes sure the partitions that needs fall into exist. It
// asks the catalog only when the store does not know them, and creates only
// those the catalog does not have: a writer without DDL rights never runs
// DDL for partitions that exist. Creation runs in a transaction of its own
// on the store's DB, never in the caller's transaction, so that no lock it
// takes outlives it.
func (s *Store) ensurePartitions(ctx context.Context, needs []partitionNeed) error {
	if len(s.missingPartitions(needs)) == 0 {
		return nil
	}
	if err := s.refreshPartitions(ctx); err != nil {
		return err
	}
	if len(s.missingPartitions(needs)) == 0 {
		return nil
	}
	return s.createPartitions(ctx, needs)
}

// missingPartitions returns the needs that no partition the store knows of
// holds.
func (s *Store) missingPartitions(needs []partitionNeed) []partitionNeed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []partitionNeed
	for _, n := range needs {
		if !slices.ContainsFunc(s.partitions[n.table], func(p Partition) bool { return p.holds(n.at) }) {
			missing = append(missing, n)
		}
	}
	return missing
}

// refreshPartitions replaces what the store knows of partitions with what
// the catalog says.
func (s *Store) refreshPartitions(ctx context.Context) error {
	parts, err := s.listPartitions(ctx, s.db)
	if err != nil {
		return err
	}
	s.setKnownPartitions(parts)
	return nil
}

func (s *Store) setKnownPartitions(parts []Partition) {
	known := make(map[string][]Partition, len(partitionedTables))
	for _, p := range parts {
		known[p.Table] = append(known[p.Table], p)
	}
	s.mu.Lock()
	s.partitions = known
	s.mu.Unlock()
}

// forgetPartitions makes the store ask the catalog again at the next write
// (a partition it knew may have been dropped behind its back).
func (s *Store) forgetPartitions() {
	s.mu.Lock()
	s.partitions = nil
	s.mu.Unlock()
}

// createPartitions creates, under the schema's partition lock, the
// partitions of needs that the catalog does not have.
func (s *Store) createPartitions(ctx context.Context, needs []partitionNeed) error {
	var created []Partition
	err := inTx(ctx, s.db, func(tx pgx.Tx) error {
		// Another process may have just created what we came for.
		parts, err := s.lockAndListPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, n := range needs {
			if slices.ContainsFunc(parts, func(p Partition) bool { return p.Table == n.table && p.holds(n.at) }) {
				continue
			}
			st := partitionStart(n.at, s.cfg.PartitionSpan)
			p := Partition{Table: n.table, Name: s.partitionName(n.table, st), From: st, To: st.Add(s.cfg.PartitionSpan)}
			// DDL takes no parameters; the bounds are our own formatted
			// times, with an explicit UTC offset.
			q := fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
				pgx.Identifier{s.cfg.Schema, p.Name}.Sanitize(), pgx.Identifier{s.cfg.Schema, p.Table}.Sanitize(),
				p.From.Format(pgTimeLayout), p.To.Format(pgTimeLayout))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create partition %s: %w", p.Name, err)
			}
			parts = append(parts, p)
			created = append(created, p)
		}
		s.setKnownPartitions(parts)
		return nil
	})
	if err != nil {
		s.forgetPartitions()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return &PartitionError{Missing: describeNeeds(needs, s.cfg.PartitionSpan), Err: err}
		}
		return err
	}
	s.stats.partitionsCreated.Add(int64(len(created)))
	for _, p := range created {
		s.logger.InfoContext(ctx, "oddsledger: partition created", "schema", s.cfg.Schema, "partition", p.Name)
	}
	return nil
}

func describeNeeds(needs []partitionNeed, span time.Duration) []Partition {
	var out []Partition
	for _, n := range needs {
		st := partitionStart(n.at, span)
		p := Partition{Table: n.table, From: st, To: st.Add(span)}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

const pgTimeLayout = "2006-01-02 15:04:05Z07:00"

// partitionName is TABLE_pYYYYMMDD for day-aligned spans,
// TABLE_pYYYYMMDD_HHMM otherwise.
func (s *Store) partitionName(table string, start time.Time) string {
	start = start.UTC()
	if s.cfg.PartitionSpan%(24*time.Hour) == 0 {
		return table + "_p" + start.Format("20060102")
	}
	return table + "_p" + start.Format("20060102_1504")
}

// Partitions lists the partitions of market_odds_history and
// market_scrape_log, oldest first (by From, then table). It reads the
// catalog, so it sees partitions made by other tools too; the answer does
// not depend on the session's DateStyle or TimeZone.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	parts, err := s.listPartitions(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("marketodds: list partitions: %w", err)
	}
	return parts, nil
}

// lockAndListPartitions takes the schema's partition lock in tx, then lists
// the partitions: what it lists stays true until tx ends, as far as stores
// (which all take the lock) go.
func (s *Store) lockAndListPartitions(ctx context.Context, tx pgx.Tx) ([]Partition, error) {
	if _, err := tx.Exec(ctx, s.parts.lock.sql, args(schemaParams{Schema: s.cfg.Schema})...); err != nil {
		return nil, err
	}
	return s.listPartitions(ctx, tx)
}

// listPartitions reads the partitions from the catalog in a transaction (a
// savepoint when db is one) that it always rolls back: its SET LOCAL must not
// outlive it, not even in the caller's transaction.
func (s *Store) listPartitions(ctx context.Context, db DB) ([]Partition, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	// Read-only; rolling back loses nothing and undoes the SET LOCAL.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, s.parts.setLocalUTC.sql); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, s.parts.list.sql, args(schemaParams{Schema: s.cfg.Schema})...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partition, error) {
		var p Partition
		err := r.Scan(&p.Table, &p.Name, &p.From, &p.To)
		p.From, p.To = p.From.UTC(), p.To.UTC()
		return p, err
	})
}

// DropPartitionsBefore drops the partitions of market_odds_history and
// market_scrape_log that end at or before t, and returns their names. This
// is retention: dropping a partition is instant and leaves no dead rows,
// where DELETE would rewrite and vacuum. Run it as the role that owns the
// schema. Concurrent calls are serialised (each partition is reported by
// the call that dropped it), and partitions made by other tools are dropped
// too when they end at or before t.
func (s *Store) DropPartitionsBefore(ctx context.Context, t time.Time) ([]string, error) {
	var dropped []string
	err := inTx(ctx, s.db, func(tx pgx.Tx) error {
		dropped = dropped[:0]
		parts, err := s.lockAndListPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if p.To.After(t) {
				continue
			}
			if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{s.cfg.Schema, p.Name}.Sanitize()); err != nil {
				return fmt.Errorf("drop partition %s: %w", p.Name, err)
			}
			dropped = append(dropped, p.Name)
		}
		return nil
	})
	s.forgetPartitions()
	if err != nil {
		return nil, fmt.Errorf("marketodds: drop partitions before %s: %w", t.Format(time.RFC3339), err)
	}
	s.stats.partitionsDropped.Add(int64(len(dropped)))
	for _, name := range dropped {
		s.logger.InfoContext(ctx, "oddsledger: partition dropped", "schema", s.cfg.Schema, "partition", name)
	}
	slices.Sort(dropped)
	return dropped, nil
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
