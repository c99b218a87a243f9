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
// When no server can be had, database tests are skipped with a message that
// says what to install or set, except under CI=true, where they fail: a
// skipped database test must never pass for a green CI run.
package pgtest

import (
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

	"github.com/oddsledger/oddsledger/internal/pgserver"
)

// The server and pool are shared by all tests of one test binary: starting a
// cluster takes about a second, a schema a millisecond.
var shared struct {
	once   sync.Once
	server *pgserver.Server
	url    string
	pool   *pgxpool.Pool
	err    error
}

// Main runs the tests and then stops the throwaway server, if one was
// started. Call it from TestMain: `func TestMain(m *testing.M) { pgtest.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown closes the shared pool and stops the throwaway server. Main calls
// it; a TestMain that does more can call it itself.
func Shutdown() {
	if shared.pool != nil {
		shared.pool.Close()
	}
	if shared.server != nil {
		if err := shared.server.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
}

func setup() {
	if url := cmpOr(os.Getenv("ODDSLEDGER_TEST_DATABASE_URL"), os.Getenv("DATABASE_URL")); url != "" {
		shared.url = url
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv, err := pgserver.Start(ctx, pgserver.Options{})
		if err != nil {
			shared.err = err
			return
		}
		shared.server, shared.url = srv, srv.URL()
	}
	cfg, err := pgxpool.ParseConfig(shared.url)
	if err != nil {
		shared.err = fmt.Errorf("pgtest: %w", err)
		return
	}
	cfg.MaxConns = 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
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
	if shared.err != nil {
		unavailable(t, shared.err)
	}
}

// URL returns the connection string of the test server.
func URL(t testing.TB) string {
	t.Helper()
	get(t)
	return shared.url
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
