package pgbouncer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"github.com/oddsledger/oddsledger/internal/pgbouncer"
	"github.com/oddsledger/oddsledger/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// start starts a PgBouncer in front of the test server (internal/pgtest's),
// closed by the test's cleanup, and returns the server's own URL too.
// Without the binary it skips, or fails under CI=true.
func start(t *testing.T, opts pgbouncer.Options) (direct string, b *pgbouncer.Bouncer) {
	t.Helper()
	if _, err := pgbouncer.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: database tests must run, not skip)", err)
		}
		t.Skip(err)
	}
	direct = pgtest.DirectURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := pgbouncer.Start(ctx, direct, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("stop PgBouncer: %v", err)
		}
	})
	return direct, b
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// PgBouncer pools by transaction in front of the server: with one server
// connection, two client connections, both open, get the same backend one
// transaction after the other (session pooling would make the second wait
// for the first to disconnect). The admin console answers. After Close
// nothing listens, and Close again is harmless.
func TestTransactionPooling(t *testing.T) {
	direct, b := start(t, pgbouncer.Options{DefaultPoolSize: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := b.URL() + "&default_query_exec_mode=exec"
	a, c := connect(t, url), connect(t, url)
	var pidA, pidC int
	if err := a.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pidA); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pidC); err != nil {
		t.Fatal(err)
	}
	if pidA != pidC {
		t.Errorf("backend pids %d and %d: want one server connection shared by both clients", pidA, pidC)
	}
	// The backend is the server's, not one PgBouncer made up.
	var found bool
	if err := connect(t, direct).QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pidA).Scan(&found); err != nil || !found {
		t.Errorf("backend %d in the server's pg_stat_activity: %v, %v; want true", pidA, found, err)
	}
	// The admin console lists that server connection with its backend pid.
	admin := connect(t, b.AdminURL())
	rows, err := admin.Query(ctx, "SHOW SERVERS")
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		m, err := pgx.RowToMap(row)
		if err != nil {
			return "", err
		}
		return fmt.Sprint(m["remote_pid"]), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != strconv.Itoa(pidA) {
		t.Errorf("SHOW SERVERS remote_pid %v, want [%d]", pids, pidA)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := pgx.Connect(ctx, url); err == nil {
		t.Error("connected through a closed PgBouncer")
	}
}

// pgx's default query exec mode (cache_statement) prepares a named
// statement per SQL text on each client connection and executes it by name
// later. Behind PgBouncer 1.18 in transaction pooling the statement stays
// on the server connection it was prepared on, which the next transaction
// may not get: a second client finds its name taken (42P05), and a client
// moved to another server connection finds it missing (26000).
func TestStatementCacheBreaksInTransactionPooling(t *testing.T) {
	_, b := start(t, pgbouncer.Options{DefaultPoolSize: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, c := connect(t, b.URL()), connect(t, b.URL()) // pgx's default mode
	const sql = "SELECT $1::int"
	var n int
	if err := a.QueryRow(ctx, sql, 1).Scan(&n); err != nil {
		t.Fatalf("first client: %v", err)
	}
	code := func(err error) string {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return pgErr.Code
		}
		return ""
	}
	// The one server connection has the first client's statement.
	err := c.QueryRow(ctx, sql, 1).Scan(&n)
	if code(err) != "42P05" {
		t.Errorf("second client: %v, want SQLSTATE 42P05 (prepared statement already exists)", err)
	}
	t.Logf("second client: %v", err)
	// RECONNECT closes the server connection once released: the next
	// transaction gets a new one, without the statement.
	if _, err := connect(t, b.AdminURL()).Exec(ctx, "RECONNECT"); err != nil {
		t.Fatal(err)
	}
	err = a.QueryRow(ctx, sql, 1).Scan(&n)
	if code(err) != "26000" {
		t.Errorf("first client on a new server connection: %v, want SQLSTATE 26000 (prepared statement does not exist)", err)
	}
	t.Logf("first client on a new server connection: %v", err)
	// The exec mode prepares nothing by name: both work.
	for _, conn := range []*pgx.Conn{a, c} {
		if err := conn.QueryRow(ctx, sql, pgx.QueryExecModeExec, 1).Scan(&n); err != nil {
			t.Errorf("exec mode: %v", err)
		}
	}
}

// A missing binary is ErrNoBinary, which says what to install.
func TestNoBinary(t *testing.T) {
	t.Setenv("PGBOUNCER", "/nonexistent/pgbouncer")
	_, err := pgbouncer.Start(context.Background(), "postgres://postgres@127.0.0.1:1/postgres", pgbouncer.Options{})
	if !errors.Is(err, pgbouncer.ErrNoBinary) {
		t.Errorf("Start: %v, want ErrNoBinary", err)
	}
}
