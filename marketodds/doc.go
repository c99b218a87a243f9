// Package marketodds stores sports-betting odds per market in PostgreSQL.
//
// Scrapers re-read the same events from several bookmakers every few
// minutes, and only about 5% of markets change between two reads. Storing a
// snapshot of every market of an event whenever any of them changed writes
// nearly everything again; storing per market writes only what changed.
//
// # Tables
//
//   - market_odds_current: one row per market. Its identity is (event_id,
//     bookmaker_slug, betpawa_market_id, COALESCE(line, 0)): a market
//     without a line and the same market with a line of 0 are one market
//     (Key, LineKey). last_confirmed_at is the last scrape that saw it; the
//     data columns and last_updated_at move only when it changed;
//     unavailable_at records a market that disappeared. Half of every page
//     is left free (fillfactor 50), so that rewriting a row is a HOT update
//     that stays on its page and adds no index entry.
//   - market_odds_history: append-only, one row per change (disappearance
//     and return included), unique on identity and captured_at,
//     partitioned by range on captured_at.
//   - market_scrapes and market_scrape_log: a scrape is one read of one
//     event at one bookmaker. market_scrapes holds the newest per event and
//     bookmaker; market_scrape_log (partitioned like history) one row per
//     scrape, so that "was this market still offered at T, or only not
//     scraped" has an answer.
//   - market_odds_live: a view of market_odds_current with the
//     last_confirmed_at that per-market confirmation would have stored, in
//     either confirmation mode.
//   - oddsledger_settings: what belongs to the schema rather than to one
//     process (partition span, confirmation mode). A store whose Config
//     disagrees gets ErrSchemaMismatch instead of breaking the others.
//
// Which writes are changes is the caller's call (Write.Changed); package
// changedetect makes it from the markets themselves.
//
// # Writing
//
// WriteMarketBatch writes a Batch in one transaction with one statement for
// all tables, whatever the batch size: rows travel as arrays, sorted by key
// so that concurrent writers lock in one order. Invalid writes are rejected
// with a *ValidationError and rows that PostgreSQL itself refuses are
// isolated and rejected with a *RowError; the rest of the batch is written
// either way. Errors worth retrying are reported by IsTransient, and a
// retried batch never appends history or a scrape twice, so a queue can
// retry blindly. WriteMarketBatchTx does the same inside the host's
// transaction, in a savepoint: a failed call leaves nothing behind.
//
// Config.Confirm chooses how unchanged markets are confirmed:
// ConfirmMarkets updates each one's row; ConfirmScrapes leaves them to
// their scrape's row and writes only what changed (scrapes must then be
// sent whole, as changedetect produces them). Reads are the same in both.
//
// # Partitions and maintenance
//
// Migrate applies the embedded migrations (Migrations exports them for
// hosts with their own migration tool), records the schema's settings and
// creates partitions ahead; EnsurePartitions and DropPartitionsBefore are
// for the host's maintenance job, run as the schema's owner. The store
// learns which partitions exist from the catalog, so a writer with only
// the grants README lists never runs DDL. All names live in Config.Schema.
//
// # Reading
//
// MarketsAt answers every bookmaker's odds of an event as they stood at any
// time T, with SeenAt, the newest scrape at or before T, which tells a market
// still offered from one only not scraped. History returns what a chart
// needs for a window, for a whole event in one call (ScanHistory streams
// it); OpeningClosing the opening and closing records; Scrapes the newest
// scrape per event and bookmaker. Market.Margin and BestPrices work on what
// they return. The reads drive from the current table's keys and probe
// history's unique index once per market, newest partition first: a read
// 28 days back costs about what a read of now does. Each read runs in a
// short transaction of its own that asks for a generic plan and no JIT
// (SET LOCAL): planning every partition anew, or compiling the plan, would
// cost more than the read. Retention drops history, not the current rows: a
// state only a dropped partition held is no longer read.
//
// # SQL
//
// Every statement lives in the package's sql directory, one file each,
// with named parameters (@event_ids) and the schema as a template comment;
// both are filled in once when a Store is made. Each statement has a
// parameter struct whose tagged fields follow the statement's parameters,
// checked when the statement is loaded.
//
// Behind PgBouncer in transaction pooling (pgx's exec mode, which sends
// every parameter as text), a store made on a *pgxpool.Pool or *pgx.Conn
// sends its write statement, dozens of arrays, in pgx's cache_describe
// mode instead: binary parameters through the unnamed statement, which a
// transaction pooler allows. The store keeps no state on a connection
// between transactions.
package marketodds
