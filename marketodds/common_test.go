package marketodds_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// testStore is a migrated store in a schema of the test's own.
type testStore struct {
	*marketodds.Store
	schema string
	t      testing.TB
}

func newTestStore(t testing.TB) *testStore {
	t.Helper()
	schema := pgtest.Schema(t)
	s, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &testStore{Store: s, schema: schema, t: t}
}

// exec runs SQL with the test schema first on the search path.
func (s *testStore) exec(sql string, args ...any) {
	s.t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pgtest.Pool(s.t), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sql, args...)
		return err
	})
	if err != nil {
		s.t.Fatalf("exec %q: %v", sql, err)
	}
}

// count returns an integer query's result, with the test schema on the search path.
func (s *testStore) count(sql string, args ...any) int {
	s.t.Helper()
	ctx := context.Background()
	var n int
	err := pgx.BeginFunc(ctx, pgtest.Pool(s.t), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
		return tx.QueryRow(ctx, sql, args...).Scan(&n)
	})
	if err != nil {
		s.t.Fatalf("query %q: %v", sql, err)
	}
	return n
}

func (s *testStore) write(ws ...marketodds.Write) marketodds.Result {
	s.t.Helper()
	res, err := s.WriteMarketBatch(context.Background(), marketodds.Batch{Writes: ws})
	if err != nil {
		s.t.Fatalf("WriteMarketBatch: %v", err)
	}
	return res
}

func (s *testStore) current(eventID int64) map[marketodds.Key]marketodds.CurrentMarket {
	s.t.Helper()
	ms, err := s.CurrentMarkets(context.Background(), eventID)
	if err != nil {
		s.t.Fatal(err)
	}
	out := make(map[marketodds.Key]marketodds.CurrentMarket, len(ms))
	for _, m := range ms {
		out[m.Key()] = m
	}
	return out
}

func (s *testStore) history(k marketodds.Key) []marketodds.HistoryRecord {
	s.t.Helper()
	hs, err := s.MarketHistory(context.Background(), k, time.Unix(0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		s.t.Fatal(err)
	}
	return hs
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

func ptr[T any](v T) *T { return &v }

// market1X2 is a full-time result market with the given odds.
func market1X2(event int64, bookmaker string, home, draw, away float64) marketodds.Market {
	return marketodds.Market{
		EventID: event, Bookmaker: bookmaker, MarketID: "3743", Name: "1X2 | Full Time",
		Outcomes: []marketodds.Outcome{{Name: "1", Odds: home}, {Name: "X", Odds: draw}, {Name: "2", Odds: away}},
		Groups:   []string{"popular", "main"},
	}
}

// overUnder is an over/under market at a line.
func overUnder(event int64, bookmaker string, line, over, under float64) marketodds.Market {
	return marketodds.Market{
		EventID: event, Bookmaker: bookmaker, MarketID: "5000", Line: &line, Name: "Over/Under | Full Time",
		Outcomes: []marketodds.Outcome{{Name: "Over", Odds: over}, {Name: "Under", Odds: under}},
		Groups:   []string{"goals"},
	}
}

func changed(m marketodds.Market, t time.Time) marketodds.Write {
	return marketodds.Write{Market: m, CapturedAt: t, Changed: true}
}

func confirmed(m marketodds.Market, t time.Time) marketodds.Write {
	return marketodds.Write{Market: m, CapturedAt: t}
}
