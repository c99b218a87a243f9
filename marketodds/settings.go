package marketodds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

var (
	// ErrSchemaMismatch is matched by the error of a store whose Config
	// disagrees with what its schema records (oddsledger_settings): a
	// PartitionSpan other than the schema's, say. Such a store refuses to
	// migrate or write, so that it cannot break the writers that agree.
	ErrSchemaMismatch = errors.New("marketodds: config disagrees with the schema")
	// ErrSchemaNotMigrated is matched when the schema lacks the tables of
	// this version of the package: run Migrate (or apply Migrations).
	ErrSchemaNotMigrated = errors.New("marketodds: schema not migrated")
)

// PartitionError reports writes that need partitions that do not exist and
// that the store may not create: its role lacks the right (SQLSTATE 42501).
// Nothing of the batch was written. It matches ErrNoPartition and is not
// transient: the partitions must be created by the schema's owner first.
type PartitionError struct {
	// Missing are the partitions the writes needed.
	Missing []Partition
	// Err is PostgreSQL's refusal.
	Err error
}

func (e *PartitionError) Error() string {
	var b strings.Builder
	b.WriteString("marketodds: missing partitions")
	for i, p := range e.Missing {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s [%s, %s)", p.Table, p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, ", and this role may not create them (%v): run Store.EnsurePartitions as the schema's owner ahead of the writes (Migrate does for Config.PartitionsAhead; a daily job keeps them ahead)", e.Err)
	return b.String()
}

func (e *PartitionError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNoPartition) true.
func (e *PartitionError) Is(target error) bool { return target == ErrNoPartition }

// schemaSettings is what the schema records about itself: what every store
// writing to it must agree on.
type schemaSettings struct {
	partitionSpan time.Duration
	confirmMode   string
}

type settingsStatements struct {
	get, switchMode statement
}

func newSettingsStatements(schema string) settingsStatements {
	return settingsStatements{
		get:        loadStatement("settings_get", schema, nil),
		switchMode: loadStatement("settings_switch_mode", schema, switchModeParams{}),
	}
}

// readSettings reads the schema's settings row through db.
func (s *Store) readSettings(ctx context.Context, db DB) (schemaSettings, error) {
	var span pgtype.Interval
	var st schemaSettings
	if err := db.QueryRow(ctx, s.settings.get.sql).Scan(&span, &st.confirmMode); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return st, fmt.Errorf("%w: %q has no oddsledger_settings (run Migrate): %w", ErrSchemaNotMigrated, s.cfg.Schema, err)
		}
		return st, err
	}
	st.partitionSpan = time.Duration(span.Microseconds)*time.Microsecond + time.Duration(span.Days)*24*time.Hour
	if span.Months != 0 {
		st.partitionSpan = -1 // no store has a span in months
	}
	return st, nil
}

// checkSettings compares the store's Config with the schema's settings.
func (s *Store) checkSettings(st schemaSettings) error {
	if st.partitionSpan != s.cfg.PartitionSpan {
		return fmt.Errorf("%w: schema %q has partitions of %s, Config.PartitionSpan is %s",
			ErrSchemaMismatch, s.cfg.Schema, st.partitionSpan, s.cfg.PartitionSpan)
	}
	if st.confirmMode != s.cfg.Confirm.String() {
		return fmt.Errorf("%w: schema %q confirms per %s, Config.Confirm is %s (see SwitchConfirmMode)",
			ErrSchemaMismatch, s.cfg.Schema, strings.TrimSuffix(st.confirmMode, "s"), s.cfg.Confirm)
	}
	return nil
}

// agreeWithSchema checks once per store, at its first write, that its
// Config agrees with the schema. A disagreement is checked again at every
// write (until someone fixes it), never cached as fine.
func (s *Store) agreeWithSchema(ctx context.Context) error {
	s.mu.Lock()
	ok := s.settingsChecked
	s.mu.Unlock()
	if ok {
		return nil
	}
	st, err := s.readSettings(ctx, s.db)
	if err != nil {
		return err
	}
	if err := s.checkSettings(st); err != nil {
		return err
	}
	s.mu.Lock()
	s.settingsChecked = true
	s.mu.Unlock()
	return nil
}
