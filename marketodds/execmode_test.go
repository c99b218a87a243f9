package marketodds_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// writeModeTracer records the exec mode option, if any, that each write
// statement was sent with (pgx passes query options to the tracer as the
// first arguments).
type writeModeTracer struct {
	mu    sync.Mutex
	modes []string
}

func (tr *writeModeTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(d.SQL, "market_scrape_log") || !strings.HasPrefix(d.SQL, "-- write_markets") {
		return ctx
	}
	mode := "(connection default)"
	if len(d.Args) > 0 {
		if m, ok := d.Args[0].(pgx.QueryExecMode); ok {
			mode = m.String()
		}
	}
	tr.mu.Lock()
	tr.modes = append(tr.modes, mode)
	tr.mu.Unlock()
	return ctx
}

func (tr *writeModeTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A store on a pool in pgx's exec mode sends its write statement in
// cache_describe (binary parameters, still the unnamed statement); every
// other mode is left as the host configured it. The writes land the same.
func TestWriteStatementExecMode(t *testing.T) {
	t.Parallel()
	type modeCase struct {
		poolMode pgx.QueryExecMode
		want     string
	}
	cases := []modeCase{
		{pgx.QueryExecModeExec, pgx.QueryExecModeCacheDescribe.String()},
		{pgx.QueryExecModeCacheDescribe, "(connection default)"},
		{pgx.QueryExecModeDescribeExec, "(connection default)"},
		{pgx.QueryExecModeSimpleProtocol, "(connection default)"},
	}
	if pgtest.PgBouncerExecMode(t) == "" {
		// Named statements do not survive the test PgBouncer's transaction
		// pooling (1.18): pgx's default mode runs directly only.
		cases = append(cases, modeCase{pgx.QueryExecModeCacheStatement, "(connection default)"})
	}
	for _, c := range cases {
		t.Run(c.poolMode.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnConfig.DefaultQueryExecMode = c.poolMode
			tracer := &writeModeTracer{}
			cfg.ConnConfig.Tracer = tracer
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()

			schema := pgtest.Schema(t)
			s, err := marketodds.NewStore(pool, &marketodds.Config{Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			m := market1X2(1, "b", 1.5, 3.5, 6)
			for i, w := range [][]marketodds.Write{
				{changed(m, at(0))},
				{confirmed(m, at(1))},
				{changed(market1X2(1, "b", 1.6, 3.4, 5.5), at(2))},
			} {
				if _, err := s.WriteMarketBatch(ctx, marketodds.Batch{Writes: w}); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
			ms, err := s.CurrentMarkets(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0].Outcomes[0].Odds != 1.6 || !ms[0].LastConfirmedAt.Equal(at(2)) || ms[0].ChangeCount != 2 {
				t.Errorf("current row: %+v", ms)
			}

			tracer.mu.Lock()
			defer tracer.mu.Unlock()
			if len(tracer.modes) != 3 {
				t.Fatalf("saw %d write statements, want 3", len(tracer.modes))
			}
			for i, got := range tracer.modes {
				if got != c.want {
					t.Errorf("write %d sent in %s, want %s", i, got, c.want)
				}
			}
		})
	}
}
