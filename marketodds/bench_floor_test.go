package marketodds_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oddsledger/oddsledger/internal/pgserver"
	"github.com/oddsledger/oddsledger/marketodds"
)

// BenchmarkWriteFloor bounds what a write path could reach in
// BenchmarkCycle's scenario (same workload, batches, server settings and
// CHECKPOINT before each phase; see there) if it kept none of the store's
// rules. On one server it writes the first load and the steady cycle
//
//   - lib: Store.WriteMarketBatch, ConfirmScrapes (and ConfirmMarkets);
//   - floor: the library's Go side (validation, sorting, the statement's
//     arrays, BenchWriteNamedArgs) and the least SQL that stores the same
//     rows from those arrays, one pgx.Batch per write batch in one
//     transaction: plain INSERTs of history, current, the scrape log and
//     market_scrapes for the first load; for a steady cycle plain INSERTs
//     of history and the scrape log and UPDATEs by key of the changed
//     current rows and of market_scrapes (ConfirmScrapes), plus an UPDATE
//     of the confirmed rows' last_confirmed_at (ConfirmMarkets). No stale
//     guard, no ordering, no repairs; a retried batch fails;
//   - idempotent floor: the same with ON CONFLICT on every unique index
//     (DO NOTHING for history and the log, DO UPDATE of the data for
//     current and market_scrapes): the least a write path that may be
//     retried needs;
//
// each as a ratio of rows/s to a raw CopyFrom of the same markets into an
// unindexed table, right before it (BenchmarkCycle's copy).
//
//	go test -run '^$' -bench WriteFloor -benchtime 1x -count 6 -timeout 60m ./marketodds
func BenchmarkWriteFloor(b *testing.B) {
	cfg := benchConfigFromEnv(b)
	for i := 0; b.Loop(); i++ {
		srv, err := pgserver.Start(context.Background(), benchServerOptions(benchConfig{settings: append(cfg.settings, "autovacuum=off")}))
		if err != nil {
			b.Fatal(err)
		}
		m := runFloorScenario(b, srv, cfg)
		if err := srv.Close(); err != nil {
			b.Fatal(err)
		}
		for name, v := range m {
			b.ReportMetric(v, name)
		}
	}
	b.ReportMetric(0, "ns/op")
}

const (
	floorHistory = `INSERT INTO %[1]s.market_odds_history (event_id, bookmaker_slug, betpawa_market_id, line,
    betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away, captured_at, unavailable)
SELECT e, b, m, NULLIF(l, 'NaN'), n, o::jsonb, g::text[], CASE WHEN hh <> 'NaN' THEN ht END, NULLIF(hh, 'NaN'),
    NULLIF(ha, 'NaN'), t, u
FROM unnest(@history_event_ids::bigint[], @history_bookmakers::text[], @history_market_ids::text[],
    @history_lines::float8[], @history_names::text[], @history_outcomes::text[], @history_groups::text[],
    @history_handicap_types::text[], @history_handicap_homes::float8[], @history_handicap_aways::float8[],
    @history_captured_ats::timestamptz[], @history_unavailables::bool[]) AS r(e, b, m, l, n, o, g, ht, hh, ha, t, u)`
	floorHistoryIdempotent = floorHistory + `
ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at) DO NOTHING`

	floorCurrentInsert = `INSERT INTO %[1]s.market_odds_current AS c (event_id, bookmaker_slug, betpawa_market_id, line,
    betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away,
    last_confirmed_at, last_updated_at, unavailable_at, change_count)
SELECT e, b, m, NULLIF(l, 'NaN'), n, o::jsonb, g::text[], CASE WHEN hh <> 'NaN' THEN ht END, NULLIF(hh, 'NaN'),
    NULLIF(ha, 'NaN'), ca, ua, NULLIF(un, '0001-01-01 00:00:00+00'), 1
FROM unnest(@current_event_ids::bigint[], @current_bookmakers::text[], @current_market_ids::text[],
    @current_lines::float8[], @current_names::text[], @current_outcomes::text[], @current_groups::text[],
    @current_handicap_types::text[], @current_handicap_homes::float8[], @current_handicap_aways::float8[],
    @current_confirmed_ats::timestamptz[], @current_updated_ats::timestamptz[], @current_unavailable_ats::timestamptz[])
    AS r(e, b, m, l, n, o, g, ht, hh, ha, ca, ua, un)`
	floorCurrentUpsert = floorCurrentInsert + `
ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)) DO UPDATE SET
    betpawa_market_name = excluded.betpawa_market_name, outcomes = excluded.outcomes,
    market_groups = excluded.market_groups, last_confirmed_at = excluded.last_confirmed_at,
    last_updated_at = excluded.last_updated_at, change_count = c.change_count + 1
WHERE c.last_confirmed_at < excluded.last_confirmed_at`
	floorCurrentUpdate = `UPDATE %[1]s.market_odds_current c SET betpawa_market_name = r.n, outcomes = r.o::jsonb,
    market_groups = r.g::text[], last_confirmed_at = r.ca, last_updated_at = r.ua, change_count = c.change_count + 1
FROM unnest(@current_event_ids::bigint[], @current_bookmakers::text[], @current_market_ids::text[],
    @current_lines::float8[], @current_names::text[], @current_outcomes::text[], @current_groups::text[],
    @current_confirmed_ats::timestamptz[], @current_updated_ats::timestamptz[]) AS r(e, b, m, l, n, o, g, ca, ua)
WHERE c.event_id = r.e AND c.bookmaker_slug = r.b AND c.betpawa_market_id = r.m
    AND COALESCE(c.line, 0) = COALESCE(NULLIF(r.l, 'NaN'), 0)`
	floorConfirm = `UPDATE %[1]s.market_odds_current c SET last_confirmed_at = (@scraped_ats::timestamptz[])[f.s]
FROM unnest((SELECT @confirm_event_ids::bigint[]), (SELECT @confirm_scrapes::int4[]), (SELECT @confirm_bookmakers::text[]),
    (SELECT @confirm_market_ids::text[]), (SELECT @confirm_line_keys::float8[])) AS f(e, s, b, m, l)
WHERE c.event_id = f.e AND c.bookmaker_slug = f.b AND c.betpawa_market_id = f.m AND COALESCE(c.line, 0) = f.l`

	floorScrapeLog = `INSERT INTO %[1]s.market_scrape_log (event_id, bookmaker_slug, scraped_at)
SELECT * FROM unnest(@scrape_event_ids::bigint[], @scrape_bookmakers::text[], @scraped_ats::timestamptz[])`
	floorScrapeLogIdempotent = floorScrapeLog + `
ON CONFLICT (event_id, bookmaker_slug, scraped_at) DO NOTHING`
	floorScrapesInsert = `INSERT INTO %[1]s.market_scrapes AS s (event_id, bookmaker_slug, last_scraped_at)
SELECT e, b, max(t) FROM unnest(@scrape_event_ids::bigint[], @scrape_bookmakers::text[], @scraped_ats::timestamptz[])
    AS r(e, b, t) GROUP BY e, b`
	floorScrapesUpsert = floorScrapesInsert + `
ON CONFLICT (event_id, bookmaker_slug) DO UPDATE SET last_scraped_at = excluded.last_scraped_at
WHERE s.last_scraped_at < excluded.last_scraped_at`
	floorScrapesUpdate = `UPDATE %[1]s.market_scrapes s SET last_scraped_at = r.t
FROM (SELECT e, b, max(t) AS t FROM unnest(@scrape_event_ids::bigint[], @scrape_bookmakers::text[],
    @scraped_ats::timestamptz[]) AS r(e, b, t) GROUP BY e, b) r
WHERE s.event_id = r.e AND s.bookmaker_slug = r.b`
)

// runFloorScenario returns the ratios of one run.
func runFloorScenario(b *testing.B, srv *pgserver.Server, cfg benchConfig) map[string]float64 {
	ctx := context.Background()
	pool := newBenchPool(b, srv.URL(), 1, func(*pgxpool.Config) {})
	defer pool.Close()
	exec := func(sql string) {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	store := func(schema string, mode marketodds.ConfirmMode) *marketodds.Store {
		s, err := marketodds.NewStore(pool, &marketodds.Config{Schema: schema, Confirm: mode, Now: func() time.Time { return benchBase }})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		return s
	}
	lib, floor, idem := store("lib", marketodds.ConfirmScrapes), store("floor", marketodds.ConfirmScrapes), store("idem", marketodds.ConfirmScrapes)
	mlib, mfloor := store("mlib", marketodds.ConfirmMarkets), store("mfloor", marketodds.ConfirmMarkets)
	wl := newBenchWorkload(cfg.events, cfg.change)
	first, steady := wl.next(), wl.next()

	timed := func(write func(batch []marketodds.Write)) func(ws []marketodds.Write) float64 {
		return func(ws []marketodds.Write) float64 {
			exec("CHECKPOINT")
			start := time.Now()
			for _, batch := range benchBatches(ws, cfg.batch) {
				write(batch)
			}
			return float64(len(ws)) / time.Since(start).Seconds()
		}
	}
	copyRows := timed(func(batch []marketodds.Write) {
		buf := make([]byte, 0, 512)
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(batch) {
				return nil, nil
			}
			i++
			return copyCurrentRow.row(&batch[i-1], buf[:0]), nil
		})
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"public", "floor_copy"}, copyCurrentRow.cols, src); err != nil {
			b.Fatal(err)
		}
	})
	copyInto := func(ws []marketodds.Write) float64 {
		exec("DROP TABLE IF EXISTS public.floor_copy")
		exec("CREATE TABLE public.floor_copy (LIKE lib.market_odds_current)")
		return copyRows(ws)
	}
	withStore := func(s *marketodds.Store) func(ws []marketodds.Write) float64 {
		return timed(func(batch []marketodds.Write) {
			if _, err := s.WriteMarketBatch(ctx, marketodds.Batch{Writes: batch}); err != nil {
				b.Fatal(err)
			}
		})
	}
	withSQL := func(s *marketodds.Store, schema string, statements ...string) func(ws []marketodds.Write) float64 {
		return timed(func(batch []marketodds.Write) {
			args := marketodds.BenchWriteNamedArgs(s, marketodds.Batch{Writes: batch})
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				q := &pgx.Batch{}
				for _, st := range statements {
					q.Queue(fmt.Sprintf(st, pgx.Identifier{schema}.Sanitize()), args)
				}
				return tx.SendBatch(ctx, q).Close()
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}

	m := map[string]float64{}
	copyFirst := copyInto(first)
	m["first-floor/copy"] = withSQL(floor, "floor", floorHistory, floorCurrentInsert, floorScrapesInsert, floorScrapeLog)(first) / copyFirst
	m["first-idem/copy"] = withSQL(idem, "idem", floorHistoryIdempotent, floorCurrentUpsert, floorScrapesUpsert, floorScrapeLogIdempotent)(first) / copyFirst
	m["first-lib/copy"] = withStore(lib)(first) / copyFirst
	withStore(mlib)(first)
	withStore(mfloor)(first)
	exec("VACUUM ANALYZE")

	copySteady := copyInto(steady)
	m["scrapes-floor/copy"] = withSQL(floor, "floor", floorHistory, floorCurrentUpdate, floorScrapesUpdate, floorScrapeLog)(steady) / copySteady
	m["scrapes-idem/copy"] = withSQL(idem, "idem", floorHistoryIdempotent, floorCurrentUpsert, floorScrapesUpsert, floorScrapeLogIdempotent)(steady) / copySteady
	m["scrapes-lib/copy"] = withStore(lib)(steady) / copySteady
	m["markets-floor/copy"] = withSQL(mfloor, "mfloor", floorHistory, floorCurrentUpdate, floorConfirm, floorScrapesUpdate, floorScrapeLog)(steady) / copySteady
	m["markets-lib/copy"] = withStore(mlib)(steady) / copySteady
	var summary []string
	for _, k := range []string{"first-floor/copy", "first-idem/copy", "first-lib/copy", "scrapes-floor/copy", "scrapes-idem/copy", "scrapes-lib/copy", "markets-floor/copy", "markets-lib/copy"} {
		summary = append(summary, fmt.Sprintf("%s %.3f", k, m[k]))
	}
	b.Log(strings.Join(summary, ", "))
	return m
}
