package marketodds_test

import (
	"context"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// Migrate is re-runnable and safe when several processes call it at once.
func TestMigrateConcurrentAndRerunnable(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t) + "_app" // a schema that does not exist yet: Migrate creates it
	t.Cleanup(func() {
		_, _ = pgtest.Pool(t).Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema})
			if err == nil {
				err = s.Migrate(ctx)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	s, _ := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	ms, err := marketodds.AllMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pgtest.Pool(t).QueryRow(ctx, `SELECT count(*) FROM "`+schema+`".oddsledger_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Errorf("%d recorded migrations, want %d", n, len(ms))
	}
}

// The exported SQL is what Migrate applies, and applies on its own.
func TestMigrationsFSAppliesOnItsOwn(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	ctx := context.Background()
	names, err := fs.Glob(marketodds.Migrations(), "*.up.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("Migrations() lists %v (%v)", names, err)
	}
	conn, err := pgtest.Pool(t).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO "`+schema+`"`); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		sql, err := fs.ReadFile(marketodds.Migrations(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// A host's tool applied the SQL; the store writes through the host's tx.
	s, err := marketodds.NewStore(tx, &marketodds.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteMarketBatchTx(ctx, tx, marketodds.Batch{Writes: []marketodds.Write{changed(market1X2(1, "betpawa", 2, 3, 4), at(0))}})
	if err != nil || res.HistoryAdded != 1 {
		t.Fatalf("write after external migration: %+v %v", res, err)
	}
}

func TestPartitions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	schema := pgtest.Schema(t)
	s, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema, Now: func() time.Time { return now }, PartitionsAhead: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// names lists the history partitions, and checks that the scrape log
	// has the same ones.
	names := func() []string {
		parts, err := s.Partitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byTable := map[string][]marketodds.Partition{}
		for _, p := range parts {
			byTable[p.Table] = append(byTable[p.Table], p)
		}
		var out []string
		hist, log := byTable["market_odds_history"], byTable["market_scrape_log"]
		for i, p := range hist {
			out = append(out, p.Name)
			if p.To.Sub(p.From) != 24*time.Hour || (i > 0 && !p.From.Equal(hist[i-1].To)) {
				t.Errorf("partition %+v: not one contiguous day", p)
			}
			if i >= len(log) || !log[i].From.Equal(p.From) || !log[i].To.Equal(p.To) || log[i].Name != strings.Replace(p.Name, "market_odds_history", "market_scrape_log", 1) {
				t.Errorf("history partition %+v has no scrape log partition like it (log: %+v)", p, log)
			}
		}
		if len(log) != len(hist) || len(parts) != len(hist)+len(log) {
			t.Errorf("partitions %+v: want history and scrape log alike", parts)
		}
		return out
	}
	// Migrate: today and two days ahead.
	want := []string{"market_odds_history_p20261130", "market_odds_history_p20261201", "market_odds_history_p20261202"}
	if diff := cmp.Diff(want, names()); diff != "" {
		t.Fatalf("after Migrate (-want +got):\n%s", diff)
	}
	if err := s.EnsurePartitions(ctx, now.AddDate(0, 0, -3), now); err != nil {
		t.Fatal(err)
	}
	if got := len(names()); got != 6 {
		t.Fatalf("%d partitions after EnsurePartitions of three past days, want 6", got)
	}
	// Retention: drop what ends at or before Nov 29 00:00.
	dropped, err := s.DropPartitionsBefore(ctx, time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"market_odds_history_p20261127", "market_odds_history_p20261128",
		"market_scrape_log_p20261127", "market_scrape_log_p20261128"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if got := names(); len(got) != 4 || got[0] != "market_odds_history_p20261129" {
		t.Errorf("after retention: %v", got)
	}
	// A write into a dropped day creates its partition again.
	ts := &testStore{Store: s, schema: schema, t: t}
	if res := ts.write(changed(market1X2(1, "betpawa", 2, 3, 4), time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))); res.HistoryAdded != 1 {
		t.Errorf("write into a dropped day: %+v", res)
	}
}

// A span shorter than a day names partitions by hour and minute.
func TestPartitionsHourly(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	s, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema, PartitionSpan: 6 * time.Hour,
		PartitionsAhead: time.Hour, Now: func() time.Time { return time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	parts, err := s.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != "market_odds_history_p20261130_1200" || parts[1].Name != "market_scrape_log_p20261130_1200" {
		t.Errorf("partitions %+v, want market_odds_history_p20261130_1200 and market_scrape_log_p20261130_1200", parts)
	}
}
