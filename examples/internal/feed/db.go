package feed

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgserver"
	"github.com/oddsledger/oddsledger/marketodds"
)

// Database is the examples' PostgreSQL: the host's own server, or a
// throwaway one started from the local server binaries.
type Database struct {
	Pool *pgxpool.Pool
	// Version is the server's version, Where says which server it is.
	Version, Where string
	srv            *pgserver.Server
	logger         *slog.Logger
}

// OpenDatabase connects to the server of url, or, when url is empty,
// starts a throwaway server (with opts) and connects to it. maxConns sizes
// the pool. Close closes the pool and removes the throwaway server.
func OpenDatabase(ctx context.Context, url string, maxConns int, opts pgserver.Options, logger *slog.Logger) (*Database, error) {
	d := &Database{Where: "server from -db / DATABASE_URL", logger: logger}
	if url == "" {
		logger.Info("no DATABASE_URL: starting a throwaway PostgreSQL from the local binaries")
		srv, err := pgserver.Start(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("start a throwaway PostgreSQL: %w", err)
		}
		d.srv, url, d.Where = srv, srv.URL(), "throwaway server, removed on exit"
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("database URL: %w", err)
	}
	pcfg.MaxConns = int32(maxConns)
	if d.Pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		d.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := d.Pool.QueryRow(ctx, "SHOW server_version").Scan(&d.Version); err != nil {
		d.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return d, nil
}

// Close closes the pool and stops and removes the throwaway server, if any.
func (d *Database) Close() {
	if d.Pool != nil {
		d.Pool.Close()
	}
	if d.srv != nil {
		if err := d.srv.Close(); err != nil {
			d.logger.Error("stop the throwaway PostgreSQL", "err", err)
		}
	}
}

// ResetSchema drops and recreates the schema, after checking that it holds
// nothing but oddsledger's tables and own (the example's): a mistyped
// -schema must not drop someone's data. oddsledger's tables are read from
// marketodds.Migrations, so that a migration that adds one does not make
// the examples refuse their own schema.
func ResetSchema(ctx context.Context, db marketodds.DB, schema string, own ...string) error {
	known, err := libraryRelations()
	if err != nil {
		return err
	}
	known = append(known, own...)
	rows, err := db.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND NOT c.relispartition
    AND c.relname <> ALL ($2::text[])
ORDER BY 1`, schema, known)
	if err != nil {
		return fmt.Errorf("inspect schema %q: %w", schema, err)
	}
	foreign, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("inspect schema %q: %w", schema, err)
	}
	if len(foreign) > 0 {
		return fmt.Errorf("schema %q holds tables this program did not make (%s): not dropping it; choose another -schema",
			schema, strings.Join(foreign, ", "))
	}
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := db.Exec(ctx, "DROP SCHEMA IF EXISTS "+id+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %q: %w", schema, err)
	}
	if _, err := db.Exec(ctx, "CREATE SCHEMA "+id); err != nil {
		return fmt.Errorf("create schema %q: %w", schema, err)
	}
	return nil
}

var createRelation = regexp.MustCompile(`(?i)\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?` +
	`(?:TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE)\s+(?:IF\s+NOT\s+EXISTS\s+)?"?([A-Za-z_][A-Za-z0-9_$]*)`)

// libraryRelations are the tables, views and sequences oddsledger's
// migrations create, and its migrations table.
func libraryRelations() ([]string, error) {
	names := []string{"oddsledger_migrations"}
	err := fs.WalkDir(marketodds.Migrations(), ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".sql") {
			return err
		}
		b, err := fs.ReadFile(marketodds.Migrations(), path)
		if err != nil {
			return err
		}
		for _, m := range createRelation.FindAllStringSubmatch(string(b), -1) {
			if n := strings.ToLower(m[1]); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read oddsledger's migrations: %w", err)
	}
	return names, nil
}
