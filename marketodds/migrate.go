package marketodds

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema migrations as SQL files named
// NNNN_name.up.sql, to be applied in name order, for hosts that run their
// own migration tool. The SQL uses unqualified names: apply it with
// search_path set to the target schema. Migrate applies the same files.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is known to exist
	}
	return sub
}

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// AllMigrations returns the embedded migrations in the order they apply.
func AllMigrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".up.sql") {
			return nil, fmt.Errorf("marketodds: bad migration file name %q", name)
		}
		sql, err := fs.ReadFile(migrationFiles, path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(rest, ".up.sql"), SQL: string(sql)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Migrate creates the schema (if missing), applies the migrations not yet
// recorded in its oddsledger_migrations table, checks that the Config agrees
// with what the schema records (ErrSchemaMismatch otherwise), and creates
// the partitions from now through PartitionsAhead. It is safe to call on
// every start, from any number of processes at once: a transaction-scoped
// advisory lock per schema serialises them, a migration applies with its
// record in one transaction, and a process that lost a race to create an
// object tries again in a new transaction.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := AllMigrations()
	if err != nil {
		return err
	}
	if err := s.createSchema(ctx); err != nil {
		return fmt.Errorf("marketodds: migrate schema %q: %w", s.cfg.Schema, err)
	}
	for attempt := 1; ; attempt++ {
		err = inTx(ctx, s.db, func(tx pgx.Tx) error { return s.migrate(ctx, tx, ms) })
		// A backend caches what its catalog lookups found, and an advisory
		// lock does not refresh that cache: a process that looked for an
		// object before another created it may try to create it again and
		// hit a duplicate. A new transaction sees it.
		if attempt < 3 && isDuplicateObject(err) {
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("marketodds: migrate schema %q: %w", s.cfg.Schema, err)
	}
	s.mu.Lock()
	s.settingsChecked = true
	s.mu.Unlock()
	now := s.cfg.Now()
	return s.EnsurePartitions(ctx, now, now.Add(s.cfg.PartitionsAhead))
}

// createSchema creates the schema in a transaction of its own, before the
// migration lock: a concurrent creator's duplicate is success.
func (s *Store) createSchema(ctx context.Context) error {
	var exists bool
	if err := s.db.QueryRow(ctx, s.migrations.schemaExists.sql, args(schemaParams{Schema: s.cfg.Schema})...).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	err := inTx(ctx, s.db, func(tx pgx.Tx) error {
		// DDL takes no parameters: the name is quoted here.
		_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.cfg.Schema}.Sanitize())
		return err
	})
	if isDuplicateObject(err) {
		return nil
	}
	return err
}

func isDuplicateObject(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23505", "42P06", "42P07", "42710": // unique_violation (in the catalog), duplicate schema, table, object
		return true
	}
	return false
}

func (s *Store) migrate(ctx context.Context, tx pgx.Tx, ms []Migration) error {
	if _, err := tx.Exec(ctx, s.migrations.lock.sql, args(schemaParams{Schema: s.cfg.Schema})...); err != nil {
		return err
	}
	searchPath := args(searchPathParams{SearchPath: pgx.Identifier{s.cfg.Schema}.Sanitize()})
	if _, err := tx.Exec(ctx, s.migrations.setSearchPath.sql, searchPath...); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, s.migrations.createTable.sql); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, s.migrations.applied.sql)
	if err != nil {
		return err
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return err
	}
	done := make(map[int]bool, len(applied))
	for _, v := range applied {
		done[v] = true
	}
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, s.migrations.record.sql, args(migrationRecordParams{Version: m.Version, Name: m.Name})...); err != nil {
			return err
		}
		if m.Version == settingsMigration {
			if err := s.recordSettings(ctx, tx); err != nil {
				return err
			}
		}
		s.logger.InfoContext(ctx, "oddsledger: applied migration", "schema", s.cfg.Schema, "version", m.Version, "name", m.Name)
	}
	st, err := s.readSettings(ctx, tx)
	if err != nil {
		return err
	}
	return s.checkSettings(st)
}

// settingsMigration is the migration that creates oddsledger_settings.
const settingsMigration = 2

// recordSettings fills in the settings row that migration 0002 has just
// created: the span of the partitions the schema already has, or, for a
// schema without any (a new one), the Config's span and confirmation mode.
// A schema written before 0002 confirmed per market.
func (s *Store) recordSettings(ctx context.Context, tx pgx.Tx) error {
	parts, err := s.listPartitions(ctx, tx)
	if err != nil {
		return err
	}
	span, mode := s.cfg.PartitionSpan, s.cfg.Confirm
	if len(parts) > 0 {
		span, mode = parts[len(parts)-1].To.Sub(parts[len(parts)-1].From), ConfirmMarkets
	}
	_, err = tx.Exec(ctx, s.migrations.setSettings.sql, args(setSettingsParams{SpanSeconds: span.Seconds(), ConfirmMode: mode.String()})...)
	return err
}

// migrateStatements are the statements of Migrate.
type migrateStatements struct {
	schemaExists, lock, setSearchPath, createTable, applied, record, setSettings statement
}

type schemaParams struct {
	Schema string `sql:"schema"`
}

type searchPathParams struct {
	SearchPath string `sql:"search_path"`
}

type migrationRecordParams struct {
	Version int    `sql:"version"`
	Name    string `sql:"name"`
}

type setSettingsParams struct {
	SpanSeconds float64 `sql:"span_seconds"`
	ConfirmMode string  `sql:"confirm_mode"`
}

func newMigrateStatements(schema string) migrateStatements {
	return migrateStatements{
		schemaExists:  loadStatement("schema_exists", schema, schemaParams{}),
		lock:          loadStatement("lock_migrate", schema, schemaParams{}),
		setSearchPath: loadStatement("set_local_search_path", schema, searchPathParams{}),
		createTable:   loadStatement("migrations_table", schema, nil),
		applied:       loadStatement("migrations_applied", schema, nil),
		record:        loadStatement("migration_record", schema, migrationRecordParams{}),
		setSettings:   loadStatement("settings_set", schema, setSettingsParams{}),
	}
}
