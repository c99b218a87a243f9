package marketodds

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgtest"
)

// A plan made for one call's values (an unnamed statement, as in pgx's
// exec and cache_describe modes) must still confirm markets by probing the
// key index in key order: with the arrays' sizes in sight the planner
// hashed the whole current table when a batch was large against it.
func TestWritePlanProbesTheKeyIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.DirectURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe // custom plans
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := NewStore(pool, &Config{Schema: pgtest.Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	batch := func(at time.Time, changed bool) Batch {
		var ws []Write
		for e := range 40 {
			for _, book := range []string{"betpawa", "bet9ja", "sportybet"} {
				for m := range 50 {
					ws = append(ws, Write{Market: Market{EventID: int64(e), Bookmaker: book, MarketID: strconv.Itoa(m),
						Name: "1X2", Outcomes: []Outcome{{Name: "1", Odds: 2}, {Name: "2", Odds: 2}}},
						CapturedAt: at, Changed: changed})
				}
			}
		}
		return Batch{Writes: ws}
	}
	if _, err := s.WriteMarketBatch(ctx, batch(base, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE "+pgx.Identifier{s.cfg.Schema, "market_odds_current"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// The whole table confirmed at once: the case that tempted the planner
	// most (the stale path too, which looks markets up).
	b := batch(base.Add(time.Minute), false)
	p := s.prepare(&b)
	params := p.params(p.units, confirmByUpdate)
	if len(params.ConfirmMarketIDs) != len(b.Writes) {
		t.Fatalf("%d confirmations, want %d", len(params.ConfirmMarketIDs), len(b.Writes))
	}
	rows, err := pool.Query(ctx, "EXPLAIN "+s.write.writeMarkets.sql, args(params)...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if strings.Contains(plan, "Seq Scan on market_odds_current") {
		t.Errorf("the write statement reads the whole current table:\n%s", plan)
	}
	if n := strings.Count(plan, "Index Scan using market_odds_current_key on market_odds_current"); n < 2 {
		t.Errorf("%d index scans of the key (want the confirmations' and the missing markets' lookups):\n%s", n, plan)
	}
}
