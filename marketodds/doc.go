// Package marketodds stores sports-betting odds per market in PostgreSQL.
//
// Scrapers re-read the same events from several bookmakers every few
// minutes, and only about 5% of markets change between two reads. Storing a
// snapshot of every market of an event whenever any of them changed writes
// nearly everything again; storing per market writes only what changed.
// The package keeps two tables:
//
//   - market_odds_current: one row per market, upserted by every scrape.
//     Its identity is (event_id, bookmaker_slug, betpawa_market_id,
//     COALESCE(line, 0)): a market without a line and the same market with
//     a line of 0 are one market. last_confirmed_at moves on every scrape;
//     the data columns and last_updated_at move only when the market
//     changed; unavailable_at records a market that disappeared.
//   - market_odds_history: append-only, one row per change, partitioned by
//     day on captured_at. Retention drops whole partitions.
//
// Which writes are changes is the caller's call (Write.Changed); package
// changedetect makes it from the markets themselves.
//
// # Writing
//
// WriteMarketBatch writes a Batch in one transaction with one statement per
// table, whatever the batch size: rows travel as arrays, sorted by key so that
// concurrent writers lock in one order. Invalid writes are rejected with a
// *ValidationError and rows that PostgreSQL itself refuses are isolated and
// rejected with a *RowError; the rest of the batch is written either way.
// Errors worth retrying are reported by IsTransient, and a retried batch
// never appends history twice (history is unique on key and captured_at),
// so a queue can retry blindly. WriteMarketBatchTx does the same inside the
// host's transaction.
//
// # Schema
//
// Migrate applies the embedded migrations (Migrations exports them for hosts
// with their own migration tool) and creates history partitions ahead;
// EnsurePartitions and DropPartitionsBefore are for the host's maintenance
// job. All names live in Config.Schema.
package marketodds
