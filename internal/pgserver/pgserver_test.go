package pgserver_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/internal/pgserver"
)

// The server starts, answers, survives Stop and Restart on the same port
// with its data, and is gone after Close.
func TestServerLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	if errors.Is(err, pgserver.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			srv.Close()
		}
	}()
	query := func(sql string) (n int, err error) {
		conn, err := pgx.Connect(ctx, srv.URL())
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		err = conn.QueryRow(ctx, sql).Scan(&n)
		return n, err
	}
	if _, err := query("CREATE TABLE kept AS SELECT 42 AS v"); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	port := srv.Port()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := query("SELECT 1"); err == nil {
		t.Error("a stopped server answered")
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Port() != port {
		t.Errorf("port %d after restart, want %d", srv.Port(), port)
	}
	if v, err := query("SELECT v FROM kept"); err != nil || v != 42 {
		t.Errorf("after restart: %d, %v; want the data kept", v, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := query("SELECT 1"); err == nil {
		t.Error("a closed server answered")
	}
}
