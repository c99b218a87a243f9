package marketodds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pashagolub/pgxmock/v4"
)

// These tests pin the SQL the store sends and its error handling with
// pgxmock. What the SQL does is tested against the real server in
// write_test.go.

var mockT0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func mockWrite(event int64, market string, changed bool) Write {
	return Write{Market: Market{EventID: event, Bookmaker: "betpawa", MarketID: market, Name: market,
		Outcomes: []Outcome{{Name: "1", Odds: 2}, {Name: "2", Odds: 2}}}, CapturedAt: mockT0, Changed: changed}
}

// newMockStore returns a store whose partition for mockT0 is known to
// exist, so that the tests see only the write path.
func newMockStore(t *testing.T) (*Store, pgxmock.PgxPoolIface) {
	t.Helper()
	mock, err := pgxmock.NewPool(pgxmock.QueryMatcherOption(pgxmock.QueryMatcherRegexp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mock.Close)
	s, err := NewStore(mock, &Config{Schema: "odds"})
	if err != nil {
		t.Fatal(err)
	}
	st := partitionStart(mockT0, 24*time.Hour)
	s.setKnownPartitions([]Partition{
		{Table: historyTable, From: st, To: st.Add(24 * time.Hour)},
		{Table: scrapeLogTable, From: st, To: st.Add(24 * time.Hour)},
	})
	s.settingsChecked = true
	return s, mock
}

// writeSQL matches exactly the write statement a store for schema "odds"
// sends: sql/write_markets.sql as rendered, which TestSQLGolden compares
// with testdata/sql/write_markets.golden.sql.
var writeSQL = "^" + regexp.QuoteMeta(newWriteStatements("odds").writeMarkets.sql) + "$"

// counts is the write statement's answer: rows upserted in full, history
// rows appended, confirmations applied, and the confirmations (1-based)
// whose market does not exist.
func counts(upserted, historyAdded, confirmed int, missing ...int64) *pgxmock.Rows {
	return pgxmock.NewRows([]string{"upserted", "scrapes_logged", "schema_confirm_mode", "history_added", "confirmed", "missing", "late"}).
		AddRow(upserted, 1, "markets", historyAdded, confirmed, missing, []int64(nil))
}

// sortedMarkets matches a text[] parameter that lists market ids in order.
type marketIDs []string

func (want marketIDs) Match(v any) bool {
	got, ok := v.([]string)
	return ok && slices.Equal(got, want)
}

func anyArgs(n int) []any {
	args := make([]any, n)
	for i := range args {
		args[i] = pgxmock.AnyArg()
	}
	return args
}

// writeArgs matches the history, current, scrape and confirmation arrays
// (writeMarketsParams), checking the market ids of each (and so the order
// rows are applied in).
func writeArgs(current, history, confirmations []string) []any {
	args := anyArgs(writeParamCount)
	args[3+2] = marketIDs(history)        // history_market_ids
	args[15+2] = marketIDs(current)       // current_market_ids
	args[28+3] = marketIDs(confirmations) // confirm_market_ids
	return args
}

// writeParamCount is the number of parameters of the write statement: 3
// scrape, 12 history, 13 current and 6 confirmation arrays.
const writeParamCount = 34

func ids(s ...string) []string { return s }

// One batch is one transaction with one statement for both tables, rows in
// key order; markets without a change go to the confirmation arrays.
func TestMockWriteSQLShape(t *testing.T) {
	s, mock := newMockStore(t)
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(writeArgs(ids("a", "c"), ids("a", "c"), ids("b"))...).WillReturnRows(counts(2, 1, 1))
	mock.ExpectCommit()

	res, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{
		mockWrite(1, "c", true), mockWrite(1, "a", true), mockWrite(1, "b", false),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Upserted != 3 || res.HistoryAdded != 1 || res.HistoryDuplicate != 1 {
		t.Errorf("result %+v, want 3 upserted, 1 added, 1 duplicate (from the row counts)", res)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// A batch without changes sends only confirmations.
func TestMockWriteConfirmationsOnly(t *testing.T) {
	s, mock := newMockStore(t)
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(writeArgs(nil, nil, ids("a"))...).WillReturnRows(counts(0, 0, 0))
	mock.ExpectCommit()
	res, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{mockWrite(1, "a", false)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stale != 1 || res.Upserted != 0 {
		t.Errorf("result %+v, want the write counted stale", res)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// A transient error fails the batch as transient, rolls back and writes
// nothing else.
func TestMockWriteTransientError(t *testing.T) {
	s, mock := newMockStore(t)
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(anyArgs(writeParamCount)...).WillReturnError(&pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
	mock.ExpectRollback()
	_, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{mockWrite(1, "a", true)}, RunID: 7, Index: 3})
	if !IsTransient(err) {
		t.Errorf("IsTransient(%v) = false, want true", err)
	}
	if err == nil || !regexp.MustCompile(`batch 3 of run 7`).MatchString(err.Error()) {
		t.Errorf("error %v does not name the batch", err)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// A row error starts the batch over in a new transaction, each half in a
// savepoint, splitting until the bad market is alone; it is rejected and
// the rest committed.
func TestMockWriteBisectsRowError(t *testing.T) {
	s, mock := newMockStore(t)
	tooLong := &pgconn.PgError{Code: "22001", Message: "value too long"}
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(writeArgs(ids("a", "b"), ids("a", "b"), nil)...).WillReturnError(tooLong)
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(writeArgs(ids("a"), ids("a"), nil)...).WillReturnError(tooLong)
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(writeArgs(ids("b"), ids("b"), nil)...).WillReturnRows(counts(1, 1, 0))
	mock.ExpectCommit()
	mock.ExpectCommit()
	res, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{mockWrite(1, "b", true), mockWrite(1, "a", true)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Index != 1 || !errors.Is(res.Rejected[0].Err, ErrRowRejected) || !errors.Is(res.Rejected[0].Err, tooLong) {
		t.Errorf("rejected %+v, want write 1 with a RowError wrapping 22001", res.Rejected)
	}
	if res.Upserted != 1 || res.HistoryAdded != 1 {
		t.Errorf("result %+v", res)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// listPartitionsSQL is the catalog query that tells the store which
// partitions exist (in a transaction of its own, with times in UTC).
const listPartitionsSQL = `FROM pg_catalog\.pg_inherits`

// expectListPartitions expects the catalog to be asked, in a savepoint or
// transaction that is rolled back, and to answer with no partition.
func expectListPartitions(mock pgxmock.PgxPoolIface) {
	mock.ExpectBegin()
	mock.ExpectExec(`set_config\('DateStyle', 'ISO, YMD', true\), set_config\('TimeZone', 'UTC', true\)`).WillReturnResult(pgxmock.NewResult("SELECT", 1))
	mock.ExpectQuery(listPartitionsSQL).WithArgs("odds").WillReturnRows(pgxmock.NewRows([]string{"table_name", "name", "from_time", "to_time"}))
	mock.ExpectRollback()
}

// expectCreatePartitions expects the day of mockT0 to be created for both
// partitioned tables, under the partition lock, in a transaction of its own.
func expectCreatePartitions(mock pgxmock.PgxPoolIface) {
	mock.ExpectBegin()
	mock.ExpectExec(`pg_advisory_xact_lock`).WithArgs("odds").WillReturnResult(pgxmock.NewResult("SELECT", 1))
	expectListPartitions(mock)
	for _, table := range []string{"market_scrape_log", "market_odds_history"} {
		mock.ExpectExec(`^CREATE TABLE "odds"\."` + table + `_p20261130" PARTITION OF "odds"\."` + table + `" FOR VALUES FROM \('2026-11-30 00:00:00Z'\) TO \('2026-12-01 00:00:00Z'\)$`).
			WillReturnResult(pgxmock.NewResult("CREATE TABLE", 0))
	}
	mock.ExpectCommit()
}

// 23514 without a constraint name is a missing partition: the write is
// rolled back, the store asks the catalog, creates what is missing in a
// transaction of its own, and writes again; never skipped.
func TestMockWriteNoPartitionCreatesIt(t *testing.T) {
	s, mock := newMockStore(t)
	noPartition := &pgconn.PgError{Code: "23514", Message: `no partition of relation "market_odds_history" found for row`}
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(anyArgs(writeParamCount)...).WillReturnError(noPartition)
	mock.ExpectRollback()
	expectListPartitions(mock)
	expectCreatePartitions(mock)
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(anyArgs(writeParamCount)...).WillReturnRows(counts(1, 1, 0))
	mock.ExpectCommit()
	res, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{mockWrite(1, "a", true)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.HistoryAdded != 1 || len(res.Rejected) != 0 {
		t.Errorf("result %+v, want the history row written", res)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// A second 23514 after creating the partition is an error, not a loop.
func TestMockWriteNoPartitionTwiceFails(t *testing.T) {
	s, mock := newMockStore(t)
	noPartition := &pgconn.PgError{Code: "23514", Message: "no partition"}
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(anyArgs(writeParamCount)...).WillReturnError(noPartition)
	mock.ExpectRollback()
	expectListPartitions(mock)
	expectCreatePartitions(mock)
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(anyArgs(writeParamCount)...).WillReturnError(noPartition)
	mock.ExpectRollback()
	res, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{mockWrite(1, "a", true)}})
	if !errors.Is(err, ErrNoPartition) || IsTransient(err) {
		t.Errorf("err = %v, want ErrNoPartition, not transient", err)
	}
	if res.Upserted != 0 || res.HistoryAdded != 0 {
		t.Errorf("result %+v counts writes of a batch that failed", res)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// A batch of only invalid writes sends nothing at all.
func TestMockWriteAllInvalid(t *testing.T) {
	s, mock := newMockStore(t)
	bad := mockWrite(1, "a", true)
	bad.Outcomes = nil
	res, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{bad}})
	if err != nil || len(res.Rejected) != 1 {
		t.Errorf("res %+v err %v, want one rejection and no error", res, err)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

func TestClassify(t *testing.T) {
	pg := func(code, constraint string) error {
		return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, ConstraintName: constraint})
	}
	tests := []struct {
		name string
		err  error
		want errorClass
	}{
		{"serialization failure", pg("40001", ""), classTransient},
		{"deadlock", pg("40P01", ""), classTransient},
		{"lock timeout", pg("55P03", ""), classTransient},
		{"too many connections", pg("53300", ""), classTransient},
		{"out of memory", pg("53200", ""), classTransient},
		{"disk full", pg("53100", ""), classTransient},
		{"admin shutdown", pg("57P01", ""), classTransient},
		{"crash shutdown", pg("57P02", ""), classTransient},
		{"cannot connect now", pg("57P03", ""), classTransient},
		{"read-only transaction", pg("25006", ""), classTransient},
		{"connection failure", pg("08006", ""), classTransient},
		{"statement timeout", pg("57014", ""), classTooBig},
		{"string too long", pg("22001", ""), classRow},
		{"numeric out of range", pg("22003", ""), classRow},
		{"bad encoding", pg("22021", ""), classRow},
		{"bad text representation", pg("22P02", ""), classRow},
		{"NUL in jsonb", pg("22P05", ""), classRow},
		{"not null", pg("23502", ""), classRow},
		{"foreign key", pg("23503", ""), classRow},
		{"unique", pg("23505", ""), classRow},
		{"program limit", pg("54000", ""), classRow},
		{"cardinality (same key twice)", pg("21000", ""), classRow},
		{"check constraint", pg("23514", "no_poison"), classRow},
		{"no partition", pg("23514", ""), classNoPartition},
		{"undefined table", pg("42P01", ""), classOther},
		{"raise exception", pg("P0001", ""), classOther},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), classTransient},
		{"EOF", io.EOF, classTransient},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, classTransient},
		{"connection refused", &pgconn.ConnectError{}, classTransient},
		{"closed", net.ErrClosed, classTransient},
		{"context canceled", fmt.Errorf("x: %w", context.Canceled), classOther},
		{"deadline", context.DeadlineExceeded, classOther},
		{"plain", errors.New("boom"), classOther},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("%s: classify = %d, want %d", tt.name, got, tt.want)
		}
		if got := IsTransient(tt.err); got != (tt.want == classTransient) {
			t.Errorf("%s: IsTransient = %v", tt.name, got)
		}
	}
	if IsTransient(&RowError{Err: &pgconn.PgError{Code: "40001"}}) {
		t.Error("a rejected row is not transient, whatever it wraps")
	}
}

func TestPartitionStart(t *testing.T) {
	for _, tt := range []struct {
		t    time.Time
		span time.Duration
		want time.Time
	}{
		{time.Date(2026, 11, 30, 23, 59, 59, 999, time.UTC), 24 * time.Hour, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 30, 0, 0, 0, 0, time.FixedZone("x", 3600)), 24 * time.Hour, time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 30, 13, 30, 0, 0, time.UTC), 6 * time.Hour, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)},
		{time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), 24 * time.Hour, time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
	} {
		if got := partitionStart(tt.t, tt.span); !got.Equal(tt.want) {
			t.Errorf("partitionStart(%v, %v) = %v, want %v", tt.t, tt.span, got, tt.want)
		}
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	c := (*Config)(nil).WithDefaults()
	if c.Schema != "public" || c.PartitionSpan != 24*time.Hour || c.PartitionsAhead != 72*time.Hour || c.Logger == nil || c.Now == nil {
		t.Errorf("defaults: %+v", c)
	}
	mock, _ := pgxmock.NewPool()
	defer mock.Close()
	for _, bad := range []*Config{{PartitionSpan: time.Second}, {PartitionSpan: 90 * time.Second}, {PartitionsAhead: -time.Hour}} {
		if _, err := NewStore(mock, bad); err == nil {
			t.Errorf("NewStore(%+v) accepted a bad config", bad)
		}
	}
	if _, err := NewStore(nil, nil); err == nil {
		t.Error("NewStore(nil) accepted a nil DB")
	}
}

func TestEncodeOutcomesMatchesJSON(t *testing.T) {
	got := encodeOutcomes([]Outcome{{Name: "a\"b\\c\n\x01é", Odds: 1.5}, {Name: "x", Odds: 1e21, Suspended: true}})
	want := `[{"name":"a\"b\\c\n\u0001é","odds":1.5,"suspended":false},{"name":"x","odds":1e+21,"suspended":true}]`
	if got != want {
		t.Errorf("encodeOutcomes = %s, want %s", got, want)
	}
	if got := encodeTextArray([]string{`a"b`, `c\d`, ""}); got != `{"a\"b","c\\d",""}` {
		t.Errorf("encodeTextArray = %s", got)
	}
}

// A confirmation of a market the table lacks comes back from the first
// statement and is written in full by a second one, without history.
func TestMockWriteConfirmationOfMissingMarket(t *testing.T) {
	s, mock := newMockStore(t)
	mock.ExpectBegin()
	mock.ExpectQuery(writeSQL).WithArgs(writeArgs(nil, nil, ids("a", "b"))...).WillReturnRows(counts(0, 0, 1, 2))
	mock.ExpectQuery(writeSQL).WithArgs(writeArgs(ids("b"), nil, nil)...).WillReturnRows(counts(1, 0, 0))
	mock.ExpectCommit()
	res, err := s.WriteMarketBatch(context.Background(), Batch{Writes: []Write{mockWrite(1, "b", false), mockWrite(1, "a", false)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Upserted != 2 || res.Stale != 0 || res.HistoryAdded != 0 {
		t.Errorf("result %+v, want 2 upserted", res)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}
