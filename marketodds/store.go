package marketodds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is what the store needs of a database handle. *pgxpool.Pool,
// *pgx.Conn, pgx.Tx and pgxmock's pool and conn mocks all satisfy it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var _ DB = (pgx.Tx)(nil)
var _ DB = (*pgx.Conn)(nil)

// Config configures a Store. A nil *Config means all defaults.
type Config struct {
	// Schema holds the tables. It is created by Migrate when missing.
	// Defaults to "public".
	Schema string
	// PartitionSpan is the time range of one partition of history and of the
	// scrape log. It must be a whole number of minutes; partitions are
	// aligned to the Unix epoch in UTC (a day span starts at midnight UTC).
	// It belongs to the schema: Migrate records it when it creates the
	// schema, and a store whose span differs is refused (ErrSchemaMismatch).
	// Defaults to 24h.
	PartitionSpan time.Duration
	// PartitionsAhead is how far past now Migrate creates partitions. With
	// partitions ahead, writes never need DDL; a write that finds its
	// partition missing creates it (in a transaction of its own) if the
	// store's role may. Defaults to 72h (three days).
	PartitionsAhead time.Duration
	// Confirm is how markets that did not change are confirmed: per market
	// (ConfirmMarkets, the default) or per scrape (ConfirmScrapes, which
	// requires whole scrapes). Like PartitionSpan it belongs to the schema:
	// Migrate records it for a new schema; a store that disagrees is refused
	// (ErrSchemaMismatch); SwitchConfirmMode changes it.
	Confirm ConfirmMode
	// Logger receives the store's logs: migrations and partitions at Info,
	// rejected rows at Warn, batches at Debug. Defaults to a logger that
	// discards everything.
	Logger *slog.Logger
	// Now is the clock, for tests. Defaults to time.Now.
	Now func() time.Time
	// OnBatch, when set, is called after every write call (both forms),
	// with the batch, its Result, the time it took and its error, from the
	// goroutine that made the call: for histograms and tracing (see
	// BatchEvent). It must be quick and must not write through the store.
	// Defaults to nil.
	OnBatch func(BatchEvent)
}

// WithDefaults returns a copy of the config with the defaults filled in.
func (c *Config) WithDefaults() *Config {
	if c == nil {
		c = &Config{}
	}
	out := *c
	out.Schema = cmp.Or(c.Schema, "public")
	out.PartitionSpan = cmp.Or(c.PartitionSpan, 24*time.Hour)
	out.PartitionsAhead = cmp.Or(c.PartitionsAhead, 72*time.Hour)
	if out.Logger == nil {
		out.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return &out
}

func (c *Config) validate() error {
	switch {
	case c.PartitionSpan < time.Minute || c.PartitionSpan%time.Minute != 0:
		return fmt.Errorf("marketodds: PartitionSpan must be a whole number of minutes, at least one, got %s", c.PartitionSpan)
	case c.PartitionsAhead < 0:
		return fmt.Errorf("marketodds: PartitionsAhead must not be negative, got %s", c.PartitionsAhead)
	case c.Confirm != ConfirmMarkets && c.Confirm != ConfirmScrapes:
		return fmt.Errorf("marketodds: Confirm must be ConfirmMarkets or ConfirmScrapes, got %d", int(c.Confirm))
	case len(c.Schema) > 63:
		return fmt.Errorf("marketodds: Schema %q is longer than PostgreSQL's 63-byte identifiers", c.Schema)
	}
	return nil
}

// Store writes and reads market odds. It is safe for concurrent use.
type Store struct {
	db     DB
	cfg    *Config
	logger *slog.Logger

	current    currentStatements
	write      writeStatements
	reads      readStatements
	parts      partitionStatements
	settings   settingsStatements
	migrations migrateStatements

	mu sync.Mutex
	// partitions are the partitions known to exist, by table, as the catalog
	// last listed them (nil: ask the catalog).
	partitions map[string][]Partition
	// settingsChecked: the Config was found to agree with the schema.
	settingsChecked bool
	// describeWrites: send the write statement in pgx's cache_describe
	// mode (see writeExecMode).
	describeWrites bool

	stats storeStats
}

// NewStore returns a store that works through db. It does not touch the
// database: call Migrate (or apply Migrations with your own tool) first.
func NewStore(db DB, cfg *Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("marketodds: NewStore: nil DB")
	}
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	s := &Store{
		db:     db,
		cfg:    c,
		logger: c.Logger,
	}
	s.describeWrites = writeExecMode(db) == pgx.QueryExecModeExec
	s.write = newWriteStatements(c.Schema)
	s.current = newCurrentStatements(c.Schema)
	s.reads = newReadStatements(c.Schema)
	s.parts = newPartitionStatements(c.Schema)
	s.settings = newSettingsStatements(c.Schema)
	s.migrations = newMigrateStatements(c.Schema)
	return s, nil
}

// Config returns the store's configuration, defaults filled in.
func (s *Store) Config() Config { return *s.cfg }

// inTx runs fn in a transaction (a savepoint when db is a pgx.Tx). Unlike
// pgx.BeginFunc it rolls back only when fn or the commit fails, so that
// every statement it sends is one a mock can expect.
func inTx(ctx context.Context, db DB, fn func(pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		// Rolling back a failed transaction; its own error adds nothing.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return tx.Commit(ctx)
}

// writeExecMode is the default exec mode of db's connections, when db is a
// pgx pool or connection (0 otherwise). When it is pgx's exec mode (what
// PgBouncer before 1.21 needs in transaction pooling) the store sends its
// write statement in cache_describe mode instead: exec sends every
// parameter as text, which for a batch's dozens of arrays (thousands of
// timestamps, floats and quoted JSON strings) costs a text encoding in Go
// and a parse on the server; cache_describe asks the server for the
// parameter types once per connection, then sends them in binary through
// the unnamed statement, in one round trip, like exec, and as safely behind
// a transaction pooler (describe and execute both run inside the write's
// transaction). Other modes are left alone (simple_protocol: a proxy that
// speaks only the simple protocol).
func writeExecMode(db DB) pgx.QueryExecMode {
	switch d := db.(type) {
	case *pgxpool.Pool:
		if d != nil {
			return d.Config().ConnConfig.DefaultQueryExecMode
		}
	case *pgx.Conn:
		if d != nil {
			return d.Config().DefaultQueryExecMode
		}
	}
	return 0
}
