package marketodds

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
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
// recorded in its oddsledger_migrations table, and creates the history
// partitions from now through PartitionsAhead. It is safe to call on every
// start, from several processes at once: a transaction-scoped advisory lock
// per schema serialises them, and a migration applies with its record in
// one transaction.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := AllMigrations()
	if err != nil {
		return err
	}
	err = inTx(ctx, s.db, func(tx pgx.Tx) error {
		schema := pgx.Identifier{s.cfg.Schema}.Sanitize()
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('oddsledger.migrate.' || $1, 0))", s.cfg.Schema); err != nil {
			return err
		}
		stmts := []string{
			"CREATE SCHEMA IF NOT EXISTS " + schema,
			"SET LOCAL search_path TO " + schema,
			`CREATE TABLE IF NOT EXISTS oddsledger_migrations (
				version    integer     PRIMARY KEY,
				name       text        NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now())`,
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, "SELECT version FROM oddsledger_migrations")
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
			if _, err := tx.Exec(ctx, "INSERT INTO oddsledger_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
				return err
			}
			s.logger.Info("oddsledger: applied migration", "schema", s.cfg.Schema, "version", m.Version, "name", m.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("marketodds: migrate schema %q: %w", s.cfg.Schema, err)
	}
	now := s.cfg.Now()
	return s.EnsurePartitions(ctx, now, now.Add(s.cfg.PartitionsAhead))
}
