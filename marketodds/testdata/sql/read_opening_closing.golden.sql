-- read_opening_closing: per market of the query, its earliest retained
-- record and the record in force at @close_at (the last change at or before
-- it), in key order (bytewise, as Key.Less). Markets without a record at or
-- before @close_at are left out.
--
-- Driven by the key list (the query's rows of market_odds_current).
-- Closing: as read_markets_at, the current row when it holds the change in
-- force, or else one backward probe of history (LIMIT 1) over the
-- partitions up to @close_at. Opening: one forward probe (LIMIT 1) over the
-- partitions up to @close_at, oldest first, which stops at the first
-- partition that has a row of the market; each older partition costs one
-- index probe that finds nothing. When retention dropped every history row
-- of the market, the current row's change (the closing) is the opening too.
-- The store runs it after read_settings (a generic plan, no JIT).
WITH k AS MATERIALIZED (
    SELECT c.event_id, c.bookmaker_slug, c.betpawa_market_id, c.line, c.betpawa_market_name, c.outcomes,
        c.market_groups, c.handicap_type, c.handicap_home, c.handicap_away, c.last_updated_at, c.unavailable_at,
        c.change_count > 0 AND c.last_updated_at <= $1 AS from_current
    FROM "odds".market_odds_current c
    WHERE c.event_id = ANY($2::bigint[])
        AND (cardinality($3::text[]) = 0 OR c.bookmaker_slug = ANY($3::text[]))
        AND (cardinality($4::text[]) = 0 OR c.betpawa_market_id = ANY($4::text[]))
)
SELECT k.event_id, k.bookmaker_slug, k.betpawa_market_id,
    cl.line, cl.betpawa_market_name, cl.outcomes, cl.market_groups, cl.handicap_type, cl.handicap_home,
    cl.handicap_away, cl.captured_at, cl.unavailable,
    op.line, op.betpawa_market_name, op.outcomes, op.market_groups, op.handicap_type, op.handicap_home,
    op.handicap_away, op.captured_at, op.unavailable
FROM k
CROSS JOIN LATERAL (
    SELECT k.line, k.betpawa_market_name, k.outcomes, k.market_groups, k.handicap_type, k.handicap_home,
        k.handicap_away, k.last_updated_at AS captured_at, k.unavailable_at IS NOT NULL AS unavailable
    WHERE k.from_current
    UNION ALL
    (SELECT h.line, h.betpawa_market_name, h.outcomes, h.market_groups, h.handicap_type, h.handicap_home,
        h.handicap_away, h.captured_at, h.unavailable
    FROM "odds".market_odds_history h
    WHERE NOT k.from_current
        AND h.event_id = k.event_id AND h.bookmaker_slug = k.bookmaker_slug
        AND h.betpawa_market_id = k.betpawa_market_id AND COALESCE(h.line, 0) = COALESCE(k.line, 0)
        AND h.captured_at <= $1
    ORDER BY h.captured_at DESC
    LIMIT 1)
) cl
CROSS JOIN LATERAL (
    -- The earlier of the first history row and the closing: the closing
    -- only when history has nothing at or before @close_at.
    SELECT o.* FROM (
        (SELECT h.line, h.betpawa_market_name, h.outcomes, h.market_groups, h.handicap_type, h.handicap_home,
            h.handicap_away, h.captured_at, h.unavailable
        FROM "odds".market_odds_history h
        WHERE h.event_id = k.event_id AND h.bookmaker_slug = k.bookmaker_slug
            AND h.betpawa_market_id = k.betpawa_market_id AND COALESCE(h.line, 0) = COALESCE(k.line, 0)
            AND h.captured_at <= $1
        ORDER BY h.captured_at
        LIMIT 1)
        UNION ALL
        SELECT cl.line, cl.betpawa_market_name, cl.outcomes, cl.market_groups, cl.handicap_type, cl.handicap_home,
            cl.handicap_away, cl.captured_at, cl.unavailable
    ) o
    ORDER BY o.captured_at
    LIMIT 1
) op
ORDER BY k.event_id, k.bookmaker_slug COLLATE "C", k.betpawa_market_id COLLATE "C", COALESCE(k.line, 0)
-- parameters:
--   $1 @close_at
--   $2 @event_ids
--   $3 @bookmakers
--   $4 @market_ids
