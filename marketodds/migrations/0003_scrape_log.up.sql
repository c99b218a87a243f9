-- oddsledger 0003: the scrape log. A scrape is one read of one event at one
-- bookmaker; every write batch records the scrapes its writes came from, in
-- the same transaction as the markets.
-- Applied with search_path set to the target schema; names are unqualified.

-- One row per (event, bookmaker): the newest scrape. Never moves backwards.
CREATE TABLE market_scrapes (
    event_id        bigint      NOT NULL,
    bookmaker_slug  text        NOT NULL,
    last_scraped_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, bookmaker_slug)
-- Each scrape rewrites its row: room on the page keeps that a HOT update.
) WITH (fillfactor = 70);

-- Append-only, one row per scrape, partitioned like market_odds_history (the
-- same span and bounds); retention drops its partitions with history's.
CREATE TABLE market_scrape_log (
    event_id       bigint      NOT NULL,
    bookmaker_slug text        NOT NULL,
    scraped_at     timestamptz NOT NULL
) PARTITION BY RANGE (scraped_at);

-- A retried batch records nothing twice (ON CONFLICT DO NOTHING), and "the
-- newest scrape at or before T" is one backward index probe.
CREATE UNIQUE INDEX market_scrape_log_key
    ON market_scrape_log (event_id, bookmaker_slug, scraped_at);

-- market_odds_current as the per-market confirmation mode would have stored
-- it, in either mode. In 'scrapes' mode an unchanged market's row is not
-- rewritten by each scrape: while it is offered, the newest scrape of its
-- event at its bookmaker confirms it (scrapes are sent whole, so a market
-- that scrape did not report gone was in it).
CREATE VIEW market_odds_live AS
SELECT c.event_id, c.bookmaker_slug, c.betpawa_market_id, c.line, c.betpawa_market_name, c.outcomes,
    c.market_groups, c.handicap_type, c.handicap_home, c.handicap_away,
    CASE WHEN st.confirm_mode = 'scrapes' AND c.unavailable_at IS NULL AND s.last_scraped_at > c.last_confirmed_at
        THEN s.last_scraped_at ELSE c.last_confirmed_at END AS last_confirmed_at,
    c.last_updated_at, c.unavailable_at, c.change_count
FROM market_odds_current c
CROSS JOIN oddsledger_settings st
LEFT JOIN market_scrapes s ON s.event_id = c.event_id AND s.bookmaker_slug = c.bookmaker_slug;
