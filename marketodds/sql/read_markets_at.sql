-- read_markets_at: every market of the query as it stood at @at, in key
-- order (bytewise, as Key.Less): the change in force (the last one captured
-- at or before @at), and the newest scrape of its event at its bookmaker at
-- or before @at. Markets without a change at or before @at are left out.
--
-- Driven by the key list: the query's rows of market_odds_current, an index
-- probe of its unique index. Per market, one of two sources:
--   - the current row, when the market has changed (change_count > 0) and
--     its last change is at or before @at: then that change is the one in
--     force, and the row holds its data (last_updated_at, unavailable_at);
--   - otherwise history: one backward probe of the unique index, LIMIT 1.
--     The partitions after @at are pruned (captured_at <= @at: when the
--     generic plan starts, "Subplans Removed" in EXPLAIN), and the ordered
--     Append runs the rest newest first and stops at the first partition
--     that has a row: the older ones are never executed.
-- The choice is a gating qual (One-Time Filter): the branch not taken does
-- not run. For @at at or after the newest data of the query, no history
-- and no scrape log is read at all.
-- The store runs it after read_settings (a generic plan, no JIT).
--
-- Seen at, per (event, bookmaker): market_scrapes when its newest scrape is
-- at or before @at, or else one backward probe of market_scrape_log; never
-- before the change in force (schemas upgraded from before the scrape log
-- have no log rows for older times).
WITH k AS MATERIALIZED (
    SELECT c.event_id, c.bookmaker_slug, c.betpawa_market_id, c.line, c.betpawa_market_name, c.outcomes,
        c.market_groups, c.handicap_type, c.handicap_home, c.handicap_away, c.last_updated_at, c.unavailable_at,
        c.change_count > 0 AND c.last_updated_at <= @at AS from_current
    FROM /* TEMPLATE: schema */market_odds_current c
    WHERE c.event_id = ANY(@event_ids::bigint[])
        AND (cardinality(@bookmakers::text[]) = 0 OR c.bookmaker_slug = ANY(@bookmakers::text[]))
        AND (cardinality(@market_ids::text[]) = 0 OR c.betpawa_market_id = ANY(@market_ids::text[]))
),
seen AS MATERIALIZED (
    -- Once per (event, bookmaker), not per market.
    SELECT b.event_id, b.bookmaker_slug,
        CASE WHEN s.last_scraped_at <= @at THEN s.last_scraped_at ELSE (
            SELECT l.scraped_at
            FROM /* TEMPLATE: schema */market_scrape_log l
            WHERE l.event_id = b.event_id AND l.bookmaker_slug = b.bookmaker_slug AND l.scraped_at <= @at
            ORDER BY l.scraped_at DESC
            LIMIT 1) END AS scraped_at
    FROM (SELECT DISTINCT event_id, bookmaker_slug FROM k) b
    LEFT JOIN /* TEMPLATE: schema */market_scrapes s
        ON s.event_id = b.event_id AND s.bookmaker_slug = b.bookmaker_slug
)
SELECT k.event_id, k.bookmaker_slug, k.betpawa_market_id, d.line, d.betpawa_market_name, d.outcomes,
    d.market_groups, d.handicap_type, d.handicap_home, d.handicap_away,
    d.changed_at, GREATEST(d.changed_at, seen.scraped_at) AS seen_at, d.unavailable
FROM k
JOIN seen ON seen.event_id = k.event_id AND seen.bookmaker_slug = k.bookmaker_slug
CROSS JOIN LATERAL (
    SELECT k.line, k.betpawa_market_name, k.outcomes, k.market_groups, k.handicap_type, k.handicap_home,
        k.handicap_away, k.last_updated_at AS changed_at, k.unavailable_at IS NOT NULL AS unavailable
    WHERE k.from_current
    UNION ALL
    (SELECT h.line, h.betpawa_market_name, h.outcomes, h.market_groups, h.handicap_type, h.handicap_home,
        h.handicap_away, h.captured_at, h.unavailable
    FROM /* TEMPLATE: schema */market_odds_history h
    WHERE NOT k.from_current
        AND h.event_id = k.event_id AND h.bookmaker_slug = k.bookmaker_slug
        AND h.betpawa_market_id = k.betpawa_market_id AND COALESCE(h.line, 0) = COALESCE(k.line, 0)
        AND h.captured_at <= @at
    ORDER BY h.captured_at DESC
    LIMIT 1)
) d
ORDER BY k.event_id, k.bookmaker_slug COLLATE "C", k.betpawa_market_id COLLATE "C", COALESCE(k.line, 0)
