package marketodds

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnsurePartitions creates the history partitions that cover [from, to],
// those that do not exist yet. Hosts call it from a daily job (or rely on
// Migrate and the write path, which call it too); creating partitions ahead
// keeps DDL, and its lock on the history table, off the write path.
func (s *Store) EnsurePartitions(ctx context.Context, from, to time.Time) error {
	if to.Before(from) {
		return fmt.Errorf("marketodds: EnsurePartitions: to (%s) before from (%s)", to, from)
	}
	var starts []time.Time
	for st := partitionStart(from, s.cfg.PartitionSpan); !st.After(to); st = st.Add(s.cfg.PartitionSpan) {
		starts = append(starts, st)
	}
	return s.ensurePartitionStarts(ctx, s.db, starts)
}

// ensurePartitionStarts creates the partitions starting at starts that the
// store does not know to exist. An advisory lock serialises processes that
// create the same partition; IF NOT EXISTS makes the loser a no-op.
func (s *Store) ensurePartitionStarts(ctx context.Context, db DB, starts []time.Time) error {
	s.mu.Lock()
	var missing []time.Time
	for _, st := range starts {
		if !s.partitions[st.Unix()] {
			missing = append(missing, st)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	err := inTx(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('oddsledger.partitions.' || $1, 0))", s.cfg.Schema); err != nil {
			return err
		}
		for _, st := range missing {
			end := st.Add(s.cfg.PartitionSpan)
			// DDL takes no parameters; the bounds are our own formatted times.
			q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
				pgx.Identifier{s.cfg.Schema, s.partitionName(st)}.Sanitize(), s.history,
				st.Format(pgTimeLayout), end.Format(pgTimeLayout))
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("marketodds: create history partitions: %w", err)
	}
	s.mu.Lock()
	for _, st := range missing {
		s.partitions[st.Unix()] = true
	}
	s.mu.Unlock()
	for _, st := range missing {
		s.logger.DebugContext(ctx, "oddsledger: history partition ensured", "schema", s.cfg.Schema, "partition", s.partitionName(st))
	}
	return nil
}

const pgTimeLayout = "2006-01-02 15:04:05Z07:00"

// partitionName is market_odds_history_pYYYYMMDD for day-aligned spans,
// market_odds_history_pYYYYMMDD_HHMM otherwise.
func (s *Store) partitionName(start time.Time) string {
	start = start.UTC()
	if s.cfg.PartitionSpan%(24*time.Hour) == 0 {
		return "market_odds_history_p" + start.Format("20060102")
	}
	return "market_odds_history_p" + start.Format("20060102_1504")
}

func (s *Store) forgetPartitions() {
	s.mu.Lock()
	clear(s.partitions)
	s.mu.Unlock()
}

// Partition is one history partition.
type Partition struct {
	Name     string
	From, To time.Time
}

// Partitions lists the history partitions, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	// The bounds come back as text in the session's own DateStyle and
	// TimeZone, and are cast back to timestamptz in the same session.
	rows, err := s.db.Query(ctx, `
SELECT c.relname,
    (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
    (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
ORDER BY 2`, s.history)
	if err != nil {
		return nil, fmt.Errorf("marketodds: list partitions: %w", err)
	}
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partition, error) {
		var p Partition
		err := r.Scan(&p.Name, &p.From, &p.To)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("marketodds: list partitions: %w", err)
	}
	return parts, nil
}

// DropPartitionsBefore drops the history partitions that end at or before t
// and returns their names. This is retention: dropping a partition is
// instant and leaves no dead rows, where DELETE would rewrite and vacuum.
func (s *Store) DropPartitionsBefore(ctx context.Context, t time.Time) ([]string, error) {
	parts, err := s.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, p := range parts {
		if p.To.After(t) {
			continue
		}
		if _, err := s.db.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{s.cfg.Schema, p.Name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("marketodds: drop partition %s: %w", p.Name, err)
		}
		s.mu.Lock()
		delete(s.partitions, p.From.Unix())
		s.mu.Unlock()
		dropped = append(dropped, p.Name)
		s.logger.InfoContext(ctx, "oddsledger: history partition dropped", "schema", s.cfg.Schema, "partition", p.Name)
	}
	slices.Sort(dropped)
	return dropped, nil
}
