// Package pgtest gives tests a real PostgreSQL server and an isolated schema
// each, so that database tests run in parallel against one server.
//
// The server is, in order of preference:
//   - ODDSLEDGER_TEST_DATABASE_URL, when set;
//   - DATABASE_URL, when set;
//   - a throwaway cluster started from the local PostgreSQL binaries
//     (internal/pgserver), shared by the tests of one package and removed by
//     Main when they end.
//
// With ODDSLEDGER_TEST_PGBOUNCER set to exec, describe or simple, the shared
// pool and URL go through a throwaway PgBouncer (internal/pgbouncer:
// transaction pooling, four server connections) in front of that server,
// with pgx's default_query_exec_mode set to exec, cache_describe or
// simple_protocol: the ways pgx works behind a transaction pooler that
// keeps no prepared statements. DirectURL bypasses it.
//
// When no server can be had, database tests are skipped with a message that
// says what to install or set, except under CI=true, where they fail: a
// skipped database test must never pass for a green CI run.
package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgbouncer"
	"github.com/oddsledger/oddsledger/internal/pgserver"
)

// PgBouncerEnv names the environment variable that puts a PgBouncer between
// the tests and the server: its value is a key of execModes.
const PgBouncerEnv = "ODDSLEDGER_TEST_PGBOUNCER"

// execModes maps the values of PgBouncerEnv to pgx's default_query_exec_mode.
// pgx's default, cache_statement, is not among them: it prepares named
// statements per connection, which PgBouncer before 1.21 cannot keep in
// transaction pooling.
var execModes = map[string]string{
	"exec":     "exec",
	"describe": "cache_describe",
	"simple":   "simple_protocol",
}

// The server and pool are shared by all tests of one test binary: starting a
// cluster takes about a second, a schema a millisecond.
var shared struct {
	once      sync.Once
	server    *pgserver.Server
	bouncer   *pgbouncer.Bouncer // when PgBouncerEnv is set
	directURL string             // the server's
	url       string             // the tests': through bouncer, if any
	pool      *pgxpool.Pool
	err       error
	fatal     bool // err is a mistake to report, not a missing server to skip for
}

// Main runs the tests and then stops the throwaway server, if one was
// started. Call it from TestMain: `func TestMain(m *testing.M) { pgtest.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown closes the shared pool and stops the throwaway PgBouncer and
// server. Main calls it; a TestMain that does more can call it itself.
func Shutdown() {
	if shared.pool != nil {
		shared.pool.Close()
	}
	if shared.bouncer != nil {
		if err := shared.bouncer.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	if shared.server != nil {
		if err := shared.server.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
}

// selectedExecMode returns the default_query_exec_mode PgBouncerEnv selects,
// "" when it is not set.
func selectedExecMode() (string, error) {
	mode := os.Getenv(PgBouncerEnv)
	execMode, ok := execModes[mode]
	if mode != "" && !ok {
		return "", fmt.Errorf("pgtest: %s=%q: want exec, describe or simple", PgBouncerEnv, mode)
	}
	return execMode, nil
}

func setup() {
	execMode, err := selectedExecMode()
	if err != nil {
		shared.err, shared.fatal = err, true
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if url := cmp.Or(os.Getenv("ODDSLEDGER_TEST_DATABASE_URL"), os.Getenv("DATABASE_URL")); url != "" {
		shared.directURL = url
	} else {
		srv, err := pgserver.Start(ctx, pgserver.Options{})
		if err != nil {
			shared.err = err
			return
		}
		shared.server, shared.directURL = srv, srv.URL()
	}
	shared.url = shared.directURL
	if execMode != "" {
		b, err := pgbouncer.Start(ctx, shared.directURL, pgbouncer.Options{})
		if err != nil {
			shared.err = fmt.Errorf("pgtest: %s=%s: %w", PgBouncerEnv, os.Getenv(PgBouncerEnv), err)
			return
		}
		shared.bouncer = b
		shared.url = b.URL() + "&default_query_exec_mode=" + execMode
	}
	cfg, err := pgxpool.ParseConfig(shared.url)
	if err != nil {
		shared.err = fmt.Errorf("pgtest: %w", err)
		return
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		shared.err = fmt.Errorf("pgtest: connect to %s: %w", redact(shared.url), err)
		return
	}
	shared.pool = pool
}

// redact hides a password in a URL for messages.
func redact(url string) string {
	if c, err := pgx.ParseConfig(url); err == nil && c.Password != "" {
		return strings.ReplaceAll(url, c.Password, "xxxxx")
	}
	return url
}

// unavailable skips the test, or fails it under CI=true.
func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("no PostgreSQL server for database tests: %v", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: database tests must run, not skip)")
	}
	t.Skip(msg)
}

func get(t testing.TB) {
	t.Helper()
	shared.once.Do(setup)
	if shared.fatal {
		t.Fatal(shared.err)
	}
	if shared.err != nil {
		unavailable(t, shared.err)
	}
}

// URL returns the connection string the tests connect with: the test
// server's, or, under ODDSLEDGER_TEST_PGBOUNCER, PgBouncer's, with pgx's
// default_query_exec_mode in it.
func URL(t testing.TB) string {
	t.Helper()
	get(t)
	return shared.url
}

// PgBouncerExecMode returns pgx's default_query_exec_mode that
// ODDSLEDGER_TEST_PGBOUNCER selects (exec, cache_describe or
// simple_protocol), or "" when it is not set; an unknown value fails the
// test. For tests that put a PgBouncer of their own between them and the
// server. It starts nothing.
func PgBouncerExecMode(t testing.TB) string {
	t.Helper()
	execMode, err := selectedExecMode()
	if err != nil {
		t.Fatal(err)
	}
	return execMode
}

// DirectURL returns the connection string of the test server itself, past
// the PgBouncer of ODDSLEDGER_TEST_PGBOUNCER if there is one: for tests
// that need a session of the server's own (its backend pid, LISTEN,
// session settings), which a transaction pooler does not give.
func DirectURL(t testing.TB) string {
	t.Helper()
	get(t)
	return shared.directURL
}

// Pool returns the pool shared by the tests of this package.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	get(t)
	return shared.pool
}

// Server returns the throwaway server, or skips (fails under CI=true) when
// the tests run against DATABASE_URL, which they must not stop.
func Server(t testing.TB) *pgserver.Server {
	t.Helper()
	get(t)
	if shared.server == nil {
		unavailable(t, fmt.Errorf("the test stops and starts its server; it needs the throwaway server, not DATABASE_URL"))
	}
	return shared.server
}

// Schema creates a new, empty schema for the test and drops it when the test
// ends. Each test writes to its own schema, so tests run in parallel.
func Schema(t testing.TB) string {
	t.Helper()
	pool := Pool(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		// A fresh context: the test's own may be cancelled by now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name
}
