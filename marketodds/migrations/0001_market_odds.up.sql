-- oddsledger 0001: market-level odds storage.
-- Applied with search_path set to the target schema; names are unqualified.

-- One row per market, upserted by every scrape.
CREATE TABLE market_odds_current (
    event_id            bigint           NOT NULL,
    bookmaker_slug      text             NOT NULL,
    betpawa_market_id   text             NOT NULL,
    -- NULL for a market without a line. Identity uses COALESCE(line, 0):
    -- a NULL line and a line of 0 are the same market.
    line                double precision,
    betpawa_market_name text             NOT NULL DEFAULT '',
    -- [{"name": ..., "odds": ..., "suspended": ...}, ...]
    outcomes            jsonb            NOT NULL DEFAULT '[]',
    market_groups       text[]           NOT NULL DEFAULT '{}',
    handicap_type       text,
    handicap_home       double precision,
    handicap_away       double precision,
    -- Every scrape that saw the market.
    last_confirmed_at   timestamptz      NOT NULL,
    -- The last scrape in which the market changed.
    last_updated_at     timestamptz      NOT NULL,
    -- Set when the market disappeared from the bookmaker, NULL while offered.
    unavailable_at      timestamptz,
    -- How many changes were applied to this row, each once. A change that
    -- arrives after a newer one is in history but not counted here. The
    -- write path also uses it to tell a change from a confirmation inside
    -- ON CONFLICT DO UPDATE.
    change_count        integer          NOT NULL DEFAULT 0
-- Room on every page, so that the per-scrape confirmation (which touches no
-- indexed column) is a HOT update: the table stops growing after a few cycles.
) WITH (fillfactor = 70);

-- The identity. An expression index cannot be a constraint: ON CONFLICT names
-- the expression, exactly as written here.
CREATE UNIQUE INDEX market_odds_current_key
    ON market_odds_current (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0));

-- Append-only, one row per change; retention drops whole partitions.
CREATE TABLE market_odds_history (
    event_id            bigint           NOT NULL,
    bookmaker_slug      text             NOT NULL,
    betpawa_market_id   text             NOT NULL,
    line                double precision,
    betpawa_market_name text             NOT NULL DEFAULT '',
    outcomes            jsonb            NOT NULL DEFAULT '[]',
    market_groups       text[]           NOT NULL DEFAULT '{}',
    handicap_type       text,
    handicap_home       double precision,
    handicap_away       double precision,
    -- The scrape time of the change (never the write time: a retried batch
    -- must produce the same rows).
    captured_at         timestamptz      NOT NULL,
    -- Disappearance and reappearance are changes too.
    unavailable         boolean          NOT NULL DEFAULT false
) PARTITION BY RANGE (captured_at);

-- Makes appends idempotent (ON CONFLICT DO NOTHING) and serves lookups of a
-- market's history by time.
CREATE UNIQUE INDEX market_odds_history_key
    ON market_odds_history (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at);
