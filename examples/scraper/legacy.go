package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oddsledger/oddsledger/marketodds"
)

// The pre-library way, kept as the baseline: whenever any market of an
// (event, bookmaker) changed, store a snapshot of all of its markets, one
// row per market. It is written as well as it can be (one statement per
// batch, rows as arrays) and its table is shaped like market_odds_history
// (the same market columns and captured_at, without the unavailable flag,
// which a snapshot does not need; the same unique index on market and
// captured_at, so that a retried batch appends nothing twice): the two
// differ in which rows they store, which is the comparison this program
// makes.

const legacyTable = "legacy_odds_snapshots"

// legacySnapshotBatch is a batch of snapshots for the write queue. Like
// *marketodds.Batch it travels as a pointer, so that boxing it in the
// queue's interface does not allocate.
type legacySnapshotBatch struct {
	Snapshots []snapshot
	Rows      int // markets, over all snapshots
}

// snapshot is every market of one scrape of one (event, bookmaker).
type snapshot struct {
	EventID    int64
	Bookmaker  string
	CapturedAt time.Time
	Markets    []marketodds.Market
}

func (b *legacySnapshotBatch) add(s snapshot) {
	b.Snapshots = append(b.Snapshots, s)
	b.Rows += len(s.Markets)
}

// legacyStore writes snapshots to schema.legacy_odds_snapshots.
type legacyStore struct {
	db     marketodds.DB
	table  string // qualified, quoted
	insert string
}

func newLegacyStore(db marketodds.DB, schema string) *legacyStore {
	t := pgx.Identifier{schema, legacyTable}.Sanitize()
	return &legacyStore{db: db, table: t, insert: `INSERT INTO ` + t + ` (event_id, bookmaker_slug,
    betpawa_market_id, line, betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home,
    handicap_away, captured_at)
SELECT i.event_id, i.bookmaker_slug, i.market_id, i.line, i.name, i.outcomes::jsonb, i.groups::text[],
    i.handicap_type, i.handicap_home, i.handicap_away, i.captured_at
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::float8[], $10::float8[], $11::timestamptz[])
    AS i(event_id, bookmaker_slug, market_id, line, name, outcomes, groups, handicap_type, handicap_home,
    handicap_away, captured_at)
ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at) DO NOTHING`}
}

// Create creates the snapshot table (the schema exists: Migrate made it).
func (l *legacyStore) Create(ctx context.Context) error {
	_, err := l.db.Exec(ctx, `CREATE TABLE `+l.table+` (
    event_id            bigint           NOT NULL,
    bookmaker_slug      text             NOT NULL,
    betpawa_market_id   text             NOT NULL,
    line                double precision,
    betpawa_market_name text             NOT NULL,
    outcomes            jsonb            NOT NULL,
    market_groups       text[]           NOT NULL,
    handicap_type       text,
    handicap_home       double precision,
    handicap_away       double precision,
    captured_at         timestamptz      NOT NULL
)`)
	if err == nil {
		_, err = l.db.Exec(ctx, `CREATE UNIQUE INDEX `+pgx.Identifier{legacyTable + "_key"}.Sanitize()+` ON `+l.table+
			` (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at)`)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", l.table, err)
	}
	return nil
}

// Write inserts every market of every snapshot of b in one statement, and
// returns the number of rows inserted (fewer than b.Rows on a retry of a
// batch that had committed).
func (l *legacyStore) Write(ctx context.Context, b *legacySnapshotBatch) (int64, error) {
	n := b.Rows
	var (
		eventID             = make([]int64, 0, n)
		bookmaker, marketID = make([]string, 0, n), make([]string, 0, n)
		line                = make([]*float64, 0, n)
		name, outcomes      = make([]string, 0, n), make([]string, 0, n)
		groups              = make([]string, 0, n)
		hType               = make([]*string, 0, n)
		hHome, hAway        = make([]*float64, 0, n), make([]*float64, 0, n)
		capturedAt          = make([]time.Time, 0, n)
	)
	for _, s := range b.Snapshots {
		for i := range s.Markets {
			m := &s.Markets[i]
			js, err := json.Marshal(m.Outcomes)
			if err != nil {
				return 0, fmt.Errorf("snapshot of event %d at %s: market %s: %w", s.EventID, s.Bookmaker, m.MarketID, err)
			}
			eventID = append(eventID, s.EventID)
			bookmaker = append(bookmaker, s.Bookmaker)
			marketID = append(marketID, m.MarketID)
			line = append(line, m.Line)
			name = append(name, m.Name)
			outcomes = append(outcomes, string(js))
			groups = append(groups, textArray(m.Groups))
			if h := m.Handicap; h != nil {
				hType, hHome, hAway = append(hType, &h.Type), append(hHome, &h.Home), append(hAway, &h.Away)
			} else {
				hType, hHome, hAway = append(hType, nil), append(hHome, nil), append(hAway, nil)
			}
			capturedAt = append(capturedAt, s.CapturedAt)
		}
	}
	tag, err := l.db.Exec(ctx, l.insert, eventID, bookmaker, marketID, line, name, outcomes, groups,
		hType, hHome, hAway, capturedAt)
	if err != nil {
		return 0, fmt.Errorf("write %d snapshots (%d rows): %w", len(b.Snapshots), b.Rows, err)
	}
	return tag.RowsAffected(), nil
}

// textArray writes ss as a PostgreSQL text[] literal: each row's groups
// travel as one string, since pgx cannot send a ragged [][]string.
func textArray(ss []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, c := range []byte(s) {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
