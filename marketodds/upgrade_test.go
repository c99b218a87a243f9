package marketodds_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// A schema as the release before the scrape log and the schema settings
// left it is upgraded by Migrate: the previous release applied migration
// 0001 only, recorded it as version 1, named its history partitions
// market_odds_history_pYYYYMMDD (pYYYYMMDD_HHMM below a day) and wrote with
// plain INSERTs into market_odds_current and market_odds_history.

// upDay is the day the upgrade runs on (midnight UTC); upNow, its noon, is
// the clock of the stores that upgrade.
var upDay = time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)

func upNow() time.Time { return upDay.Add(12 * time.Hour) }

// newOldSchema builds such a schema, with history partitions of span from
// from to to, made by hand. Its testStore has no Store yet.
func newOldSchema(t *testing.T, span time.Duration, from, to time.Time) *testStore {
	t.Helper()
	s := &testStore{schema: pgtest.Schema(t), t: t}
	ms, err := marketodds.AllMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Version != 1 {
		t.Fatalf("first migration is %d, want 1", ms[0].Version)
	}
	s.exec(ms[0].SQL)
	s.exec(`CREATE TABLE oddsledger_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`)
	s.exec(`INSERT INTO oddsledger_migrations (version, name) VALUES (1, $1)`, ms[0].Name)
	const bound = "2006-01-02 15:04:05-07"
	for st := from; st.Before(to); st = st.Add(span) {
		name := "market_odds_history_p" + st.Format("20060102")
		if span%(24*time.Hour) != 0 {
			name = "market_odds_history_p" + st.Format("20060102_1504")
		}
		s.exec(fmt.Sprintf("CREATE TABLE %s PARTITION OF market_odds_history FOR VALUES FROM ('%s') TO ('%s')",
			pgx.Identifier{name}.Sanitize(), st.Format(bound), st.Add(span).Format(bound)))
	}
	return s
}

// upOldRow is a market as the old write path left it.
type upOldRow struct {
	cur     marketodds.CurrentMarket
	changes []marketodds.HistoryRecord
}

// insertAsOldRelease writes rows the way the old write path did: plain INSERTs.
func (s *testStore) insertAsOldRelease(rows ...upOldRow) {
	s.t.Helper()
	cols := `event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name, outcomes, market_groups,
		handicap_type, handicap_home, handicap_away`
	marketArgs := func(m marketodds.Market) []any {
		var ht *string
		var hh, ha *float64
		if m.Handicap != nil {
			ht, hh, ha = &m.Handicap.Type, &m.Handicap.Home, &m.Handicap.Away
		}
		groups := m.Groups
		if groups == nil {
			groups = []string{}
		}
		// Outcomes as JSON text, which every pgx exec mode can send (a Go
		// struct into jsonb needs the statement described first).
		outcomes, err := json.Marshal(m.Outcomes)
		if err != nil {
			s.t.Fatal(err)
		}
		return []any{m.EventID, m.Bookmaker, m.MarketID, m.Line, m.Name, string(outcomes), groups, ht, hh, ha}
	}
	for _, r := range rows {
		c := r.cur
		s.exec(`INSERT INTO market_odds_current (`+cols+`, last_confirmed_at, last_updated_at, unavailable_at, change_count)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			append(marketArgs(c.Market), c.LastConfirmedAt, c.LastUpdatedAt, c.UnavailableAt, c.ChangeCount)...)
		for _, h := range r.changes {
			s.exec(`INSERT INTO market_odds_history (`+cols+`, captured_at, unavailable)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				append(marketArgs(h.Market), h.CapturedAt, h.Unavailable)...)
		}
	}
}

// currentOfEvents is CurrentMarkets of the events, by key.
func (s *testStore) currentOfEvents(events ...int64) map[marketodds.Key]marketodds.CurrentMarket {
	s.t.Helper()
	out := map[marketodds.Key]marketodds.CurrentMarket{}
	for _, e := range events {
		for k, m := range s.current(e) {
			out[k] = m
		}
	}
	return out
}

func (s *testStore) appliedMigrations() []int {
	s.t.Helper()
	rows, err := pgtest.Pool(s.t).Query(context.Background(),
		"SELECT version FROM "+pgx.Identifier{s.schema, "oddsledger_migrations"}.Sanitize()+" ORDER BY version")
	if err != nil {
		s.t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		s.t.Fatal(err)
	}
	return vs
}

// schemaSettingsRow returns the schema's oddsledger_settings row: the span in
// seconds and the confirmation mode.
func (s *testStore) schemaSettingsRow() (float64, string) {
	s.t.Helper()
	var secs float64
	var mode string
	if err := pgtest.Pool(s.t).QueryRow(context.Background(),
		"SELECT extract(epoch FROM partition_span)::float8, confirm_mode FROM "+
			pgx.Identifier{s.schema, "oddsledger_settings"}.Sanitize()).Scan(&secs, &mode); err != nil {
		s.t.Fatal(err)
	}
	return secs, mode
}

// checkOldSchemaUntouched checks that a refused Migrate left the old schema as it was.
func (s *testStore) checkOldSchemaUntouched(before map[string][]string) {
	s.t.Helper()
	if v := s.appliedMigrations(); !slices.Equal(v, []int{1}) {
		s.t.Errorf("migrations %v after a refused Migrate, want [1]", v)
	}
	if n := s.count(`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
		AND tablename IN ('oddsledger_settings', 'market_scrapes', 'market_scrape_log')`); n != 0 {
		s.t.Errorf("a refused Migrate left %d of the new tables", n)
	}
	for table, rows := range before {
		if d := gocmp.Diff(rows, s.rowsText(table)); d != "" {
			s.t.Errorf("a refused Migrate changed %s (-before +after):\n%s", table, d)
		}
	}
}

// partitionStartsFrom lists the partitions of table that start at or after from.
func partitionStartsFrom(parts []marketodds.Partition, table string, from time.Time) []time.Time {
	var out []time.Time
	for _, p := range parts {
		if p.Table == table && !p.From.Before(from) {
			out = append(out, p.From)
		}
	}
	return out
}

func TestUpgradeDailySchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	day := func(d, h int) time.Time { return upDay.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour) }
	// The old release made daily partitions three days back to one ahead.
	s := newOldSchema(t, 24*time.Hour, day(-3, 0), day(2, 0))

	m1a := market1X2(501, "betpawa", 2, 3, 4)
	m1b := market1X2(501, "betpawa", 2.2, 3, 3.6)
	m2 := overUnder(501, "betpawa", 0, 1.5, 2.5) // line 0, not nil
	m3 := marketodds.Market{EventID: 501, Bookmaker: "sportybet", MarketID: "3", Line: ptr(-0.5), Name: "Asian Handicap",
		Outcomes: []marketodds.Outcome{{Name: "1", Odds: 1.9}, {Name: "2", Odds: 1.95, Suspended: true}},
		Groups:   []string{"handicap"}, Handicap: &marketodds.Handicap{Type: "asian", Home: -0.5, Away: 0.5}}
	m4 := overUnder(502, "bet9ja", 2.5, 1.8, 2.0)
	m4.Groups = []string{}
	old := []upOldRow{
		{cur: marketodds.CurrentMarket{Market: m1b, LastConfirmedAt: day(-1, 9), LastUpdatedAt: day(-2, 10), ChangeCount: 2},
			changes: []marketodds.HistoryRecord{{Market: m1a, CapturedAt: day(-3, 10)}, {Market: m1b, CapturedAt: day(-2, 10)}}},
		{cur: marketodds.CurrentMarket{Market: m2, LastConfirmedAt: day(-1, 9), LastUpdatedAt: day(-3, 10), ChangeCount: 1},
			changes: []marketodds.HistoryRecord{{Market: m2, CapturedAt: day(-3, 10)}}},
		{cur: marketodds.CurrentMarket{Market: m3, LastConfirmedAt: day(-1, 8), LastUpdatedAt: day(-1, 8), UnavailableAt: ptr(day(-1, 8)), ChangeCount: 2},
			changes: []marketodds.HistoryRecord{{Market: m3, CapturedAt: day(-2, 11)}, {Market: m3, CapturedAt: day(-1, 8), Unavailable: true}}},
		{cur: marketodds.CurrentMarket{Market: m4, LastConfirmedAt: day(-1, 9), LastUpdatedAt: day(-1, 7), ChangeCount: 1},
			changes: []marketodds.HistoryRecord{{Market: m4, CapturedAt: day(-1, 7)}}},
	}
	s.insertAsOldRelease(old...)
	want := map[marketodds.Key]marketodds.CurrentMarket{}
	for _, r := range old {
		want[r.cur.Key()] = r.cur
	}
	before := map[string][]string{"market_odds_current": s.rowsText("market_odds_current"), "market_odds_history": s.rowsText("market_odds_history")}

	// A store that confirms per scrape is refused: the old schema confirmed
	// per market. Nothing of the upgrade is left.
	scrapesStore, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: s.schema, Confirm: marketodds.ConfirmScrapes, Now: upNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := scrapesStore.Migrate(ctx); !errors.Is(err, marketodds.ErrSchemaMismatch) {
		t.Errorf("Migrate by a ConfirmScrapes store: %v, want ErrSchemaMismatch", err)
	}
	s.checkOldSchemaUntouched(before)

	// The upgrade.
	store, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: s.schema, Now: upNow})
	if err != nil {
		t.Fatal(err)
	}
	s.Store = store
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for table, rows := range before {
		if d := gocmp.Diff(rows, s.rowsText(table)); d != "" {
			t.Errorf("Migrate changed %s (-before +after):\n%s", table, d)
		}
	}
	if d := gocmp.Diff(want, s.currentOfEvents(501, 502), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("CurrentMarkets after the upgrade (-written by the old release +read):\n%s", d)
	}
	all, err := marketodds.AllMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var versions []int
	for _, m := range all {
		versions = append(versions, m.Version)
	}
	if v := s.appliedMigrations(); !slices.Equal(v, versions) || len(v) < 4 {
		t.Errorf("migrations %v, want %v (every one)", v, versions)
	}
	var reloptions []string
	err = pgtest.Pool(t).QueryRow(ctx, "SELECT reloptions FROM pg_class WHERE oid = $1::regclass",
		pgx.Identifier{s.schema, "market_odds_current"}.Sanitize()).Scan(&reloptions)
	if err != nil || !slices.Equal(reloptions, []string{"fillfactor=50"}) {
		t.Errorf("market_odds_current's options after the upgrade: %v (%v), want fillfactor=50", reloptions, err)
	}
	if secs, mode := s.schemaSettingsRow(); secs != 86400 || mode != "markets" {
		t.Errorf("settings: span %vs, mode %q; want one day and markets", secs, mode)
	}
	parts, err := store.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ahead := []time.Time{day(0, 0), day(1, 0), day(2, 0), day(3, 0)} // now through PartitionsAhead (72h)
	if got := partitionStartsFrom(parts, "market_scrape_log", day(-10, 0)); !slices.Equal(got, ahead) {
		t.Errorf("scrape log partitions start at %v, want %v", got, ahead)
	}
	if got := partitionStartsFrom(parts, "market_odds_history", day(-10, 0)); len(got) != 7 || !got[0].Equal(day(-3, 0)) || !got[6].Equal(day(3, 0)) {
		t.Errorf("history partitions start at %v, want every day from %v to %v", got, day(-3, 0), day(3, 0))
	}

	// A late batch for yesterday (m3 is back), then today's scrape.
	m3back := m3
	m3back.Outcomes = []marketodds.Outcome{{Name: "1", Odds: 1.85}, {Name: "2", Odds: 2}}
	if res := s.write(changed(m3back, day(-1, 20))); res.Upserted != 1 || res.HistoryAdded != 1 || res.Scrapes != 1 {
		t.Errorf("late batch: %+v", res)
	}
	m2new := overUnder(501, "betpawa", 0, 1.6, 2.4)
	m5 := overUnder(501, "betpawa", 3.5, 2.9, 1.4)
	res := s.write(confirmed(m1b, day(0, 11)), changed(m2new, day(0, 11)), changed(m5, day(0, 11)))
	if res.Upserted != 3 || res.HistoryAdded != 2 || res.Scrapes != 1 {
		t.Errorf("today's batch: %+v", res)
	}
	got := s.currentOfEvents(501, 502)
	want[m1b.Key()] = marketodds.CurrentMarket{Market: m1b, LastConfirmedAt: day(0, 11), LastUpdatedAt: day(-2, 10), ChangeCount: 2}
	want[m2.Key()] = marketodds.CurrentMarket{Market: m2new, LastConfirmedAt: day(0, 11), LastUpdatedAt: day(0, 11), ChangeCount: 2}
	want[m3.Key()] = marketodds.CurrentMarket{Market: m3back, LastConfirmedAt: day(-1, 20), LastUpdatedAt: day(-1, 20), ChangeCount: 3}
	want[m5.Key()] = marketodds.CurrentMarket{Market: m5, LastConfirmedAt: day(0, 11), LastUpdatedAt: day(0, 11), ChangeCount: 1}
	if d := gocmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("CurrentMarkets after writing (-want +got):\n%s", d)
	}
	if h := s.history(m1b.Key()); len(h) != 2 || !gocmp.Equal(m1a, h[0].Market) || !gocmp.Equal(m1b, h[1].Market) {
		t.Errorf("old history of the 1X2 market: %+v", h)
	}

	// Retention drops old history and scrape log partitions together.
	dropped, err := store.DropPartitionsBefore(ctx, day(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	wantDropped := []string{"market_odds_history_p20261207", "market_odds_history_p20261208", "market_odds_history_p20261209",
		"market_scrape_log_p20261209"}
	if !slices.Equal(dropped, wantDropped) {
		t.Errorf("dropped %v, want %v", dropped, wantDropped)
	}
	if n := s.count("SELECT count(*) FROM market_odds_history WHERE captured_at < $1", day(0, 0)) +
		s.count("SELECT count(*) FROM market_scrape_log WHERE scraped_at < $1", day(0, 0)); n != 0 {
		t.Errorf("%d rows before the horizon after retention", n)
	}
	if n := s.count("SELECT count(*) FROM market_scrape_log"); n != 1 {
		t.Errorf("%d scrape log rows after retention, want today's 1", n)
	}
	if n := len(s.currentOfEvents(501, 502)); n != 5 {
		t.Errorf("%d current rows after retention, want 5: retention leaves them", n)
	}
}

func TestUpgradeSixHourSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const span = 6 * time.Hour
	s := newOldSchema(t, span, upDay.Add(-12*time.Hour), upDay.Add(18*time.Hour))
	m := overUnder(601, "betpawa", 1.5, 1.3, 3.2)
	old := marketodds.CurrentMarket{Market: m, LastConfirmedAt: upDay.Add(-2 * time.Hour), LastUpdatedAt: upDay.Add(-11 * time.Hour), ChangeCount: 1}
	s.insertAsOldRelease(upOldRow{cur: old, changes: []marketodds.HistoryRecord{{Market: m, CapturedAt: upDay.Add(-11 * time.Hour)}}})
	before := map[string][]string{"market_odds_current": s.rowsText("market_odds_current"), "market_odds_history": s.rowsText("market_odds_history")}

	// A store of daily partitions is refused, and leaves nothing behind.
	daily, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: s.schema, Now: upNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := daily.Migrate(ctx); !errors.Is(err, marketodds.ErrSchemaMismatch) {
		t.Errorf("Migrate by a 24h store of a 6h schema: %v, want ErrSchemaMismatch", err)
	}
	s.checkOldSchemaUntouched(before)

	// A store of 6h partitions upgrades it.
	store, err := marketodds.NewStore(pgtest.Pool(t), &marketodds.Config{Schema: s.schema, PartitionSpan: span, Now: upNow})
	if err != nil {
		t.Fatal(err)
	}
	s.Store = store
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if secs, mode := s.schemaSettingsRow(); secs != span.Seconds() || mode != "markets" {
		t.Errorf("settings: span %vs, mode %q; want 6h and markets", secs, mode)
	}
	if d := gocmp.Diff(map[marketodds.Key]marketodds.CurrentMarket{m.Key(): old}, s.currentOfEvents(601), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("CurrentMarkets after the upgrade (-old +read):\n%s", d)
	}
	parts, err := store.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ahead []time.Time
	for st := upNow(); !st.After(upNow().Add(72 * time.Hour)); st = st.Add(span) {
		ahead = append(ahead, st)
	}
	if got := partitionStartsFrom(parts, "market_scrape_log", upDay.AddDate(0, 0, -10)); !slices.Equal(got, ahead) {
		t.Errorf("scrape log partitions start at %v, want every 6h from %v to %v", got, ahead[0], ahead[len(ahead)-1])
	}
	for _, p := range parts {
		if p.To.Sub(p.From) != span {
			t.Errorf("partition %s spans %v, want 6h", p.Name, p.To.Sub(p.From))
		}
	}

	m2 := overUnder(601, "betpawa", 1.5, 1.35, 3.0)
	if res := s.write(changed(m2, upNow().Add(-30*time.Minute))); res.Upserted != 1 || res.HistoryAdded != 1 || res.Scrapes != 1 {
		t.Errorf("write after the upgrade: %+v", res)
	}
	row := s.current(601)[m.Key()]
	if !gocmp.Equal(m2, row.Market) || row.ChangeCount != 2 || !row.LastConfirmedAt.Equal(upNow().Add(-30*time.Minute)) {
		t.Errorf("after the write: %+v", row)
	}
	if n := s.count("SELECT count(*) FROM market_scrape_log_p20261210_0600"); n != 1 {
		t.Errorf("%d rows in the 6h scrape log partition of the write, want 1", n)
	}
	dropped, err := store.DropPartitionsBefore(ctx, upDay)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"market_odds_history_p20261209_1200", "market_odds_history_p20261209_1800"}; !slices.Equal(dropped, want) {
		t.Errorf("dropped %v, want %v", dropped, want)
	}
}
