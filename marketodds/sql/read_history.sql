-- read_history: the records that draw [@from, @to) for every market of the
-- query: per market, the record in force at @from (the last change before
-- it, if any), then every change captured in [@from, @to); by key (bytewise,
-- as Key.Less), then captured_at. Streamed: the key list comes sorted, each
-- market's records come in captured_at order from the index, and the final
-- ORDER BY is an Incremental Sort that sorts one market at a time.
--
-- Driven by the key list (the query's rows of market_odds_current). A market
-- whose current row holds its last change (change_count > 0) needs less:
--   - quiet (last change before @from): that change is the record in force
--     at @from and there is nothing after it; history is not read;
--   - last change inside the window: it comes from the current row, and
--     history is read for [@from, last change) only.
-- Otherwise history: one backward probe (LIMIT 1) for the record in force,
-- and one forward range scan of the unique index for the window. Both scan
-- only the partitions of their time range. The store runs it after
-- read_settings (a generic plan, no JIT).
SELECT k.event_id, k.bookmaker_slug, k.betpawa_market_id, d.line, d.betpawa_market_name, d.outcomes,
    d.market_groups, d.handicap_type, d.handicap_home, d.handicap_away, d.captured_at, d.unavailable
FROM (
    SELECT c.event_id, c.bookmaker_slug, c.betpawa_market_id, c.line, c.betpawa_market_name, c.outcomes,
        c.market_groups, c.handicap_type, c.handicap_home, c.handicap_away, c.last_updated_at, c.unavailable_at,
        c.change_count > 0 AND c.last_updated_at < @from AS quiet,
        c.change_count > 0 AND c.last_updated_at >= @from AND c.last_updated_at < @to AS last_in_window,
        CASE WHEN c.change_count > 0 AND c.last_updated_at < @to THEN c.last_updated_at ELSE @to END AS history_to
    FROM /* TEMPLATE: schema */market_odds_current c
    WHERE c.event_id = ANY(@event_ids::bigint[])
        AND (cardinality(@bookmakers::text[]) = 0 OR c.bookmaker_slug = ANY(@bookmakers::text[]))
        AND (cardinality(@market_ids::text[]) = 0 OR c.betpawa_market_id = ANY(@market_ids::text[]))
    ORDER BY c.event_id, c.bookmaker_slug COLLATE "C", c.betpawa_market_id COLLATE "C", COALESCE(c.line, 0)
) k
CROSS JOIN LATERAL (
    -- The current row: the record in force (quiet), or the last change.
    SELECT k.line, k.betpawa_market_name, k.outcomes, k.market_groups, k.handicap_type, k.handicap_home,
        k.handicap_away, k.last_updated_at AS captured_at, k.unavailable_at IS NOT NULL AS unavailable
    WHERE k.quiet OR k.last_in_window
    UNION ALL
    -- History: the record in force at @from.
    (SELECT h.line, h.betpawa_market_name, h.outcomes, h.market_groups, h.handicap_type, h.handicap_home,
        h.handicap_away, h.captured_at, h.unavailable
    FROM /* TEMPLATE: schema */market_odds_history h
    WHERE NOT k.quiet
        AND h.event_id = k.event_id AND h.bookmaker_slug = k.bookmaker_slug
        AND h.betpawa_market_id = k.betpawa_market_id AND COALESCE(h.line, 0) = COALESCE(k.line, 0)
        AND h.captured_at < @from
    ORDER BY h.captured_at DESC
    LIMIT 1)
    UNION ALL
    -- History: the changes in the window, up to the current row's.
    SELECT h.line, h.betpawa_market_name, h.outcomes, h.market_groups, h.handicap_type, h.handicap_home,
        h.handicap_away, h.captured_at, h.unavailable
    FROM /* TEMPLATE: schema */market_odds_history h
    WHERE NOT k.quiet
        AND h.event_id = k.event_id AND h.bookmaker_slug = k.bookmaker_slug
        AND h.betpawa_market_id = k.betpawa_market_id AND COALESCE(h.line, 0) = COALESCE(k.line, 0)
        AND h.captured_at >= @from AND h.captured_at < @to AND h.captured_at < k.history_to
) d
ORDER BY k.event_id, k.bookmaker_slug COLLATE "C", k.betpawa_market_id COLLATE "C", COALESCE(k.line, 0),
    d.captured_at
