package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// ODDSLEDGER_TEST_PGBOUNCER's values map to pgx's exec modes that work
// behind a transaction pooler; anything else is a mistake.
func TestSelectedExecMode(t *testing.T) {
	for env, want := range map[string]string{"": "", "exec": "exec", "describe": "cache_describe", "simple": "simple_protocol"} {
		t.Setenv(PgBouncerEnv, env)
		if got, err := selectedExecMode(); got != want || err != nil {
			t.Errorf("%s=%q: %q, %v; want %q", PgBouncerEnv, env, got, err, want)
		}
	}
	for _, env := range []string{"cache_statement", "EXEC", "session"} {
		t.Setenv(PgBouncerEnv, env)
		if got, err := selectedExecMode(); err == nil {
			t.Errorf("%s=%q: %q, want an error", PgBouncerEnv, env, got)
		}
	}
}

// The shared pool uses the exec mode selected, and goes through PgBouncer
// exactly when one is: then URL and DirectURL differ, and DirectURL reaches
// the server the pool's transactions run on.
func TestPoolAndURLs(t *testing.T) {
	ctx := context.Background()
	pool := Pool(t)
	mode, err := selectedExecMode()
	if err != nil {
		t.Fatal(err)
	}
	wantMode := pgx.QueryExecModeCacheStatement
	if mode != "" {
		c, err := pgx.ParseConfig("postgres://x@localhost/x?default_query_exec_mode=" + mode)
		if err != nil {
			t.Fatal(err)
		}
		wantMode = c.DefaultQueryExecMode
	}
	if got := pool.Config().ConnConfig.DefaultQueryExecMode; got != wantMode {
		t.Errorf("pool exec mode %v, want %v", got, wantMode)
	}
	if pooled := URL(t) != DirectURL(t); pooled != (mode != "") {
		t.Errorf("URL %s, DirectURL %s: pooled %v, want %v", URL(t), DirectURL(t), pooled, mode != "")
	}
	var pid int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	direct, err := pgx.Connect(ctx, DirectURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	var found bool
	if err := direct.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&found); err != nil || !found {
		t.Errorf("the pool's backend %d in DirectURL's pg_stat_activity: %v, %v; want true", pid, found, err)
	}
}
