-- repair_current: recomputes the current rows of some markets from their
-- history, after changes that arrived behind newer ones (a batch delivered
-- late, or retried after later batches). The upsert of write_markets.sql
-- places a change by comparing times with the row; a change older than the
-- row's newest one cannot be placed that way: say the market came back at
-- 3 and left at 5, and the return arrives last. History, which now holds
-- every change of the market (this runs in the same transaction, after the
-- write), says what the row must be:
--   - data: the newest change that had data (not a disappearance);
--   - last_updated_at: the newest change;
--   - unavailable_at: when the newest change is a disappearance, the first
--     disappearance after the newest change with data; else NULL.
-- last_confirmed_at and change_count are left as they are. A market whose
-- data changes were all dropped by retention keeps its data.
--
-- A disappearance's history row carries the data the market had just
-- before it, copied when the row was written; a change that arrives after
-- the disappearance it preceded makes that copy stale (or fills it in, when
-- the market had no row yet). Such copies are corrected here: the only
-- UPDATE of history, and only of a disappearance's copied data.
WITH markets AS (
    SELECT * FROM unnest(@event_ids::bigint[], @bookmakers::text[], @market_ids::text[], @line_keys::float8[])
        AS k(event_id, bookmaker_slug, market_id, line_key)
),
recomputed AS (
    SELECT m.event_id, m.bookmaker_slug, m.market_id, m.line_key,
        newest.captured_at AS updated_at, newest.unavailable AS gone,
        data.captured_at AS data_at, data.line, data.betpawa_market_name, data.outcomes, data.market_groups,
        data.handicap_type, data.handicap_home, data.handicap_away,
        (SELECT min(h.captured_at) FROM /* TEMPLATE: schema */market_odds_history h
            WHERE h.event_id = m.event_id AND h.bookmaker_slug = m.bookmaker_slug
                AND h.betpawa_market_id = m.market_id AND COALESCE(h.line, 0) = m.line_key
                AND h.unavailable AND h.captured_at > COALESCE(data.captured_at, '-infinity')) AS gone_since
    FROM markets m
    CROSS JOIN LATERAL (
        SELECT h.captured_at, h.unavailable FROM /* TEMPLATE: schema */market_odds_history h
        WHERE h.event_id = m.event_id AND h.bookmaker_slug = m.bookmaker_slug
            AND h.betpawa_market_id = m.market_id AND COALESCE(h.line, 0) = m.line_key
        ORDER BY h.captured_at DESC LIMIT 1
    ) AS newest
    LEFT JOIN LATERAL (
        SELECT h.captured_at, h.line, h.betpawa_market_name, h.outcomes, h.market_groups,
            h.handicap_type, h.handicap_home, h.handicap_away
        FROM /* TEMPLATE: schema */market_odds_history h
        WHERE h.event_id = m.event_id AND h.bookmaker_slug = m.bookmaker_slug
            AND h.betpawa_market_id = m.market_id AND COALESCE(h.line, 0) = m.line_key
            AND NOT h.unavailable
        ORDER BY h.captured_at DESC LIMIT 1
    ) AS data ON true
),
stale_copies AS (
    SELECT d.event_id, d.bookmaker_slug, d.betpawa_market_id, d.line AS identity_line, d.captured_at,
        before.betpawa_market_name, before.outcomes, before.market_groups,
        before.handicap_type, before.handicap_home, before.handicap_away
    FROM markets m
    JOIN /* TEMPLATE: schema */market_odds_history d
        ON d.event_id = m.event_id AND d.bookmaker_slug = m.bookmaker_slug
        AND d.betpawa_market_id = m.market_id AND COALESCE(d.line, 0) = m.line_key AND d.unavailable
    CROSS JOIN LATERAL (
        SELECT h.betpawa_market_name, h.outcomes, h.market_groups, h.handicap_type, h.handicap_home, h.handicap_away
        FROM /* TEMPLATE: schema */market_odds_history h
        WHERE h.event_id = m.event_id AND h.bookmaker_slug = m.bookmaker_slug
            AND h.betpawa_market_id = m.market_id AND COALESCE(h.line, 0) = m.line_key
            AND NOT h.unavailable AND h.captured_at < d.captured_at
        ORDER BY h.captured_at DESC LIMIT 1
    ) AS before
    WHERE (d.betpawa_market_name, d.outcomes, d.market_groups, d.handicap_type, d.handicap_home, d.handicap_away)
        IS DISTINCT FROM (before.betpawa_market_name, before.outcomes, before.market_groups,
            before.handicap_type, before.handicap_home, before.handicap_away)
),
copies_corrected AS (
    UPDATE /* TEMPLATE: schema */market_odds_history AS h SET
        (betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away) =
            (f.betpawa_market_name, f.outcomes, f.market_groups, f.handicap_type, f.handicap_home, f.handicap_away)
    FROM stale_copies f
    WHERE h.event_id = f.event_id AND h.bookmaker_slug = f.bookmaker_slug AND h.betpawa_market_id = f.betpawa_market_id
        AND COALESCE(h.line, 0) = COALESCE(f.identity_line, 0) AND h.captured_at = f.captured_at
)
UPDATE /* TEMPLATE: schema */market_odds_current AS c SET
    (line, betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away) = (
        SELECT CASE WHEN r.data_at IS NULL THEN c.line ELSE r.line END,
            CASE WHEN r.data_at IS NULL THEN c.betpawa_market_name ELSE r.betpawa_market_name END,
            CASE WHEN r.data_at IS NULL THEN c.outcomes ELSE r.outcomes END,
            CASE WHEN r.data_at IS NULL THEN c.market_groups ELSE r.market_groups END,
            CASE WHEN r.data_at IS NULL THEN c.handicap_type ELSE r.handicap_type END,
            CASE WHEN r.data_at IS NULL THEN c.handicap_home ELSE r.handicap_home END,
            CASE WHEN r.data_at IS NULL THEN c.handicap_away ELSE r.handicap_away END),
    last_updated_at = GREATEST(c.last_updated_at, r.updated_at),
    unavailable_at = CASE WHEN r.gone THEN r.gone_since END
FROM recomputed r
WHERE c.event_id = r.event_id AND c.bookmaker_slug = r.bookmaker_slug
    AND c.betpawa_market_id = r.market_id AND COALESCE(c.line, 0) = r.line_key
