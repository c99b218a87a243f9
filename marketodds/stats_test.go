package marketodds_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// The counters add up to what the database holds after a mixed workload:
// rejects, a retried batch, a bisection, a transient and a permanent
// failure; OnBatch sees every call once, with the same numbers.
func TestStatsAddUpToTheDatabase(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	var mu sync.Mutex
	var events []marketodds.BatchEvent
	st, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema, OnBatch: func(e marketodds.BatchEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := &testStore{Store: st, schema: schema, t: t}
	// A row the host's CHECK refuses (isolated by bisection), and writes
	// that fail the whole batch: transient (40001) or permanent (42501).
	s.exec(`ALTER TABLE market_odds_current ADD CONSTRAINT no_poison CHECK (betpawa_market_id <> 'poison')`)
	s.exec(`CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.betpawa_market_id = 'transient' THEN RAISE EXCEPTION 'try again' USING ERRCODE = '40001'; END IF;
			IF NEW.betpawa_market_id = 'permanent' THEN RAISE EXCEPTION 'never' USING ERRCODE = '42501'; END IF;
			RETURN NEW;
		END $$`)
	s.exec(`CREATE TRIGGER fail BEFORE INSERT ON market_odds_history FOR EACH ROW EXECUTE FUNCTION fail()`)

	var batches [][]marketodds.Write
	first := []marketodds.Write{
		changed(market1X2(1, "betpawa", 2, 3, 4), at(0)),
		changed(overUnder(1, "betpawa", 2.5, 1.8, 2), at(0)),
		changed(market1X2(2, "bet9ja", 2, 3, 4), at(0)),
	}
	batches = append(batches, first, first) // the second time: a retry, all duplicates
	poisoned := market1X2(3, "betpawa", 2, 3, 4)
	poisoned.MarketID = "poison"
	invalid := market1X2(3, "betpawa", 2, 3, 4)
	invalid.Outcomes = nil
	batches = append(batches, []marketodds.Write{
		confirmed(market1X2(1, "betpawa", 2, 3, 4), at(1)),
		confirmed(overUnder(1, "betpawa", 2.5, 1.8, 2), at(1)),
		changed(market1X2(2, "bet9ja", 2.1, 3, 4), at(1)),
		changed(poisoned, at(1)),
		changed(invalid, at(1)),
		changed(overUnder(3, "betpawa", 1.5, 1.5, 2.5), at(1)),
	})
	transient := market1X2(4, "betpawa", 2, 3, 4)
	transient.MarketID = "transient"
	permanent := market1X2(4, "betpawa", 2, 3, 4)
	permanent.MarketID = "permanent"
	batches = append(batches,
		[]marketodds.Write{changed(transient, at(2)), changed(market1X2(4, "sportybet", 2, 3, 4), at(2))},
		[]marketodds.Write{changed(permanent, at(2))})

	var results []marketodds.Result
	var errs []error
	writes := 0
	for _, b := range batches {
		writes += len(b)
		res, err := s.WriteMarketBatch(ctx, marketodds.Batch{Writes: b})
		results = append(results, res)
		errs = append(errs, err)
	}
	if errs[3] == nil || !marketodds.IsTransient(errs[3]) || errs[4] == nil || marketodds.IsTransient(errs[4]) {
		t.Fatalf("errors %v, want batch 3 transient and batch 4 permanent", errs)
	}
	for i, err := range errs[:3] {
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}

	got := s.Stats()
	parts, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := marketodds.Stats{
		Batches: 5, Succeeded: 3, Failed: 2, Writes: int64(writes),
		Invalid: 1, RowsIsolated: 1,
		Upserted:          int64(s.count("SELECT count(*) FROM market_odds_current")) + 3, // batch 2 moved 3 rows that batch 0 made (2 confirmed, 1 changed)
		HistoryAdded:      int64(s.count("SELECT count(*) FROM market_odds_history")),
		HistoryDuplicate:  3,
		Scrapes:           int64(s.count("SELECT count(*) FROM market_scrape_log")),
		Stale:             3, // the retried batch
		PartitionsCreated: int64(len(parts)),
		TransientErrors:   1, PermanentErrors: 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	// The counts the database holds, independently: 5 markets (3 of batch
	// 0, 1 more in batch 2; the poisoned and invalid ones not), 5 history
	// rows, and the scrapes of the successful batches: (1, betpawa, 0),
	// (2, bet9ja, 0), and at 1: events 1, 2, 3.
	if n := s.count("SELECT count(*) FROM market_odds_current"); n != 4 {
		t.Errorf("%d current rows, want 4", n)
	}
	if n := s.count("SELECT count(*) FROM market_odds_history"); n != 5 {
		t.Errorf("%d history rows, want 5", n)
	}
	if n := s.count("SELECT count(*) FROM market_scrape_log"); n != 5 {
		t.Errorf("%d scrapes logged, want 5", n)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(events) != len(batches) {
		t.Fatalf("OnBatch called %d times, want %d", len(events), len(batches))
	}
	for i, e := range events {
		if len(e.Batch.Writes) != len(batches[i]) || !errors.Is(e.Err, errs[i]) && e.Err != errs[i] ||
			e.Duration != results[i].Elapsed || e.Result.HistoryAdded != results[i].HistoryAdded {
			t.Errorf("event %d: %+v, want the call's batch, result and error (%+v, %v)", i, e, results[i], errs[i])
		}
	}
}
