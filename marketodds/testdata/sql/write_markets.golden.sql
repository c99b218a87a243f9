-- write_markets: one batch of market writes, every table, one statement.
-- Parameters: writeMarketsParams (columns.go), one array per column, one
-- element per row; four groups of rows:
--   @history_*: the changes, one history row each;
--   @current_*: the markets written in full (a change, or a confirmation
--     whose row turned out to be missing), one current row each, key order;
--   @confirm_*: the markets confirmed without a change (none in the
--     'scrapes' confirmation mode: their scrape confirms them): each one's
--     key, scrape (its position in the @scrape_* arrays, whose time
--     confirms it) and disappearance time;
--   @scrape_* / @scraped_ats: the batch's scrapes (event, bookmaker, time),
--     key order (first: their rows are locked first, see scrapes_newest).
-- The statement also answers with the schema's confirmation mode: a writer
-- configured otherwise rolls back what it wrote, so that a writer started
-- before a switch of mode never writes the wrong way.
--
-- NULL sentinels. pgx encodes a slice of pointers by reflection, at several
-- times the cost of a plain slice, so NULL travels as a value no real row
-- has, turned back into NULL here:
--   'NaN' line or handicap value  -> NULL (validation keeps NaN out of real ones)
--   '' handicap type with a 'NaN' home value -> NULL handicap
--   '' history outcomes           -> no data: a disappearance that the batch
--                                    knows no data for (real rows have outcomes)
--   '[]' current outcomes         -> no data: keep the row's (same reason)
--   0001-01-01 unavailable time   -> NULL (CapturedAt is validated >= 1970)
-- The Go side of the same list: sentinels.go.
--
-- The order of the CTEs matters: the scrapes' rows first (locks, see
-- scrapes_newest), then history, so that the current row learns how many
-- of its changes were really new (a retried batch appends nothing and must
-- not count again).
WITH scrape_rows AS (
    SELECT r.event_id, r.bookmaker_slug, r.scraped_at, r.ord
    FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
        WITH ORDINALITY AS r(event_id, bookmaker_slug, scraped_at, ord)
),
scrapes_newest AS (
    -- The newest scrape per event and bookmaker; never backwards. This runs
    -- first (every other part of the statement waits for it, through the
    -- one-time filters on scrapes_newest's count), in key order, and ON
    -- CONFLICT DO UPDATE locks the row even when it leaves it as it is: a
    -- writer holds its batch's (event, bookmaker) rows before it touches
    -- any of their markets, so two writers that share markets take turns
    -- per (event, bookmaker) instead of deadlocking on the markets, in this
    -- statement or the ones after it in the transaction.
    INSERT INTO "odds".market_scrapes AS s (event_id, bookmaker_slug, last_scraped_at)
    SELECT event_id, bookmaker_slug, max(scraped_at) FROM scrape_rows
    GROUP BY event_id, bookmaker_slug ORDER BY event_id, bookmaker_slug
    ON CONFLICT (event_id, bookmaker_slug) DO UPDATE SET last_scraped_at = excluded.last_scraped_at
    WHERE s.last_scraped_at < excluded.last_scraped_at
    RETURNING 1
),
scrapes_logged AS (
    -- ON CONFLICT DO NOTHING: a retried batch, or another batch of the same
    -- scrape, records it once.
    INSERT INTO "odds".market_scrape_log (event_id, bookmaker_slug, scraped_at)
    SELECT event_id, bookmaker_slug, scraped_at FROM scrape_rows
    WHERE (SELECT count(*) FROM scrapes_newest) >= 0
    ORDER BY ord
    ON CONFLICT (event_id, bookmaker_slug, scraped_at) DO NOTHING
    RETURNING 1
),
history_rows AS (
    SELECT r.event_id, r.bookmaker_slug, r.market_id, NULLIF(r.line, 'NaN') AS line,
        r.name, NULLIF(r.outcomes, '') AS outcomes, r.groups,
        CASE WHEN r.handicap_home <> 'NaN' THEN r.handicap_type END AS handicap_type,
        NULLIF(r.handicap_home, 'NaN') AS handicap_home, NULLIF(r.handicap_away, 'NaN') AS handicap_away,
        r.captured_at, r.unavailable
    FROM unnest($4::bigint[], $5::text[], $6::text[],
        $7::float8[], $8::text[], $9::text[], $10::text[],
        $11::text[], $12::float8[], $13::float8[],
        $14::timestamptz[], $15::bool[])
        AS r(event_id, bookmaker_slug, market_id, line, name, outcomes, groups,
            handicap_type, handicap_home, handicap_away, captured_at, unavailable)

    WHERE (SELECT count(*) FROM scrapes_newest) >= 0
),
history_added AS (
    -- A disappearance without data records the market's data from its
    -- current row. ON CONFLICT DO NOTHING: a retried batch appends nothing.
    INSERT INTO "odds".market_odds_history (event_id, bookmaker_slug, betpawa_market_id, line,
        betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away,
        captured_at, unavailable)
    SELECT h.event_id, h.bookmaker_slug, h.market_id, h.line,
        CASE WHEN h.outcomes IS NULL THEN COALESCE(known.betpawa_market_name, '') ELSE h.name END,
        COALESCE(h.outcomes::jsonb, known.outcomes, '[]'::jsonb),
        CASE WHEN h.outcomes IS NULL THEN COALESCE(known.market_groups, '{}') ELSE h.groups::text[] END,
        CASE WHEN h.outcomes IS NULL THEN known.handicap_type ELSE h.handicap_type END,
        CASE WHEN h.outcomes IS NULL THEN known.handicap_home ELSE h.handicap_home END,
        CASE WHEN h.outcomes IS NULL THEN known.handicap_away ELSE h.handicap_away END,
        h.captured_at, h.unavailable
    FROM history_rows h
    LEFT JOIN LATERAL (
        SELECT c.betpawa_market_name, c.outcomes, c.market_groups, c.handicap_type, c.handicap_home, c.handicap_away
        FROM "odds".market_odds_current c
        WHERE h.outcomes IS NULL
            AND c.event_id = h.event_id AND c.bookmaker_slug = h.bookmaker_slug
            AND c.betpawa_market_id = h.market_id AND COALESCE(c.line, 0) = COALESCE(h.line, 0)
        -- OFFSET 0 keeps the planner from flattening this into a hash join
        -- that reads the whole current table for every batch; as it is, it
        -- is an index probe, and only for rows without data.
        OFFSET 0
    ) AS known ON true
    ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0), captured_at) DO NOTHING
    RETURNING event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0) AS line_key, captured_at, unavailable,
        -- The data, for the disappearances' check in late (below) only.
        CASE WHEN unavailable THEN
            (betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away) END AS data
),
new_changes AS (
    SELECT event_id, bookmaker_slug, betpawa_market_id, line_key, count(*)::int4 AS n
    FROM history_added
    GROUP BY event_id, bookmaker_slug, betpawa_market_id, line_key
),
current_rows AS (
    SELECT r.event_id, r.bookmaker_slug, r.market_id, NULLIF(r.line, 'NaN') AS line,
        r.name, r.outcomes, r.groups,
        CASE WHEN r.handicap_home <> 'NaN' THEN r.handicap_type END AS handicap_type,
        NULLIF(r.handicap_home, 'NaN') AS handicap_home, NULLIF(r.handicap_away, 'NaN') AS handicap_away,
        r.confirmed_at, r.updated_at, NULLIF(r.unavailable_at, '0001-01-01 00:00:00+00') AS unavailable_at, r.ord
    FROM unnest($16::bigint[], $17::text[], $18::text[],
        $19::float8[], $20::text[], $21::text[], $22::text[],
        $23::text[], $24::float8[], $25::float8[],
        $26::timestamptz[], $27::timestamptz[],
        $28::timestamptz[])
        WITH ORDINALITY AS r(event_id, bookmaker_slug, market_id, line, name, outcomes, groups,
            handicap_type, handicap_home, handicap_away, confirmed_at, updated_at, unavailable_at, ord)

    WHERE (SELECT count(*) FROM scrapes_newest) >= 0
),
current_upserted AS (
    -- The change flag cannot travel through ON CONFLICT's excluded row (it
    -- holds only table columns), so it travels as change_count: the number
    -- of history rows this statement appended for the market, 0 for a
    -- confirmation (or a change already stored: a retried batch).
    --
    -- Rows go in key order (ORDER BY ord; Go sorted them), so concurrent
    -- writers lock rows in one order. The WHERE is the stale guard: a write
    -- not newer than the row changes nothing, which also makes a retried
    -- batch a no-op. One exception: a change newer than the row's last
    -- change lands even when a later confirmation overtook it (batches
    -- retried out of order), or the row would keep data older than what that
    -- confirmation confirmed. The data columns move together, only for such
    -- a change that carries data ('[]' outcomes: a disappearance without).
    -- A row that no change has reached (change_count 0: it was made from a
    -- confirmation that arrived before the market's first change) takes
    -- any change: its last_updated_at was the confirmation's time, not a
    -- change's, and the confirmation-per-scrape mode, which never writes
    -- that confirmation, ends with the change's.
    INSERT INTO "odds".market_odds_current AS c (event_id, bookmaker_slug, betpawa_market_id, line,
        betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away,
        last_confirmed_at, last_updated_at, unavailable_at, change_count)
    SELECT r.event_id, r.bookmaker_slug, r.market_id, r.line, r.name, r.outcomes::jsonb, r.groups::text[],
        r.handicap_type, r.handicap_home, r.handicap_away, r.confirmed_at, r.updated_at, r.unavailable_at,
        COALESCE(n.n, 0)
    FROM current_rows r
    LEFT JOIN new_changes n ON n.event_id = r.event_id AND n.bookmaker_slug = r.bookmaker_slug
        AND n.betpawa_market_id = r.market_id AND n.line_key = COALESCE(r.line, 0)
    ORDER BY r.ord
    ON CONFLICT (event_id, bookmaker_slug, betpawa_market_id, COALESCE(line, 0)) DO UPDATE SET
        (line, betpawa_market_name, outcomes, market_groups, handicap_type, handicap_home, handicap_away) = (
            SELECT CASE WHEN d.moves THEN excluded.line ELSE c.line END,
                CASE WHEN d.moves THEN excluded.betpawa_market_name ELSE c.betpawa_market_name END,
                CASE WHEN d.moves THEN excluded.outcomes ELSE c.outcomes END,
                CASE WHEN d.moves THEN excluded.market_groups ELSE c.market_groups END,
                CASE WHEN d.moves THEN excluded.handicap_type ELSE c.handicap_type END,
                CASE WHEN d.moves THEN excluded.handicap_home ELSE c.handicap_home END,
                CASE WHEN d.moves THEN excluded.handicap_away ELSE c.handicap_away END
            FROM (SELECT excluded.change_count > 0 AND excluded.outcomes <> '[]'::jsonb
                AND (excluded.last_updated_at >= c.last_updated_at OR c.change_count = 0) AS moves) AS d),
        last_updated_at = CASE WHEN excluded.change_count > 0
                AND (excluded.last_updated_at > c.last_updated_at OR c.change_count = 0)
            THEN excluded.last_updated_at ELSE c.last_updated_at END,
        -- The newest observation decides availability.
        unavailable_at = CASE WHEN excluded.last_confirmed_at <= c.last_confirmed_at THEN c.unavailable_at
            WHEN excluded.unavailable_at IS NULL THEN NULL
            ELSE COALESCE(c.unavailable_at, excluded.unavailable_at) END,
        change_count = c.change_count + excluded.change_count,
        last_confirmed_at = GREATEST(c.last_confirmed_at, excluded.last_confirmed_at)
    WHERE c.last_confirmed_at < excluded.last_confirmed_at
        OR (excluded.change_count > 0 AND (excluded.last_updated_at > c.last_updated_at OR c.change_count = 0))
    -- The row as it now stands: ON CONFLICT DO UPDATE works on the newest
    -- committed version of the row (it waits for a writer that holds it),
    -- newer than this statement's snapshot.
    RETURNING c.event_id, c.bookmaker_slug, c.betpawa_market_id, COALESCE(c.line, 0) AS line_key, c.last_updated_at,
        -- The data, for the disappearances' check in late (below) only: a
        -- row that is not unavailable has none here, so that check finds it
        -- different and repairs it, which is right whatever it holds.
        CASE WHEN c.unavailable_at IS NOT NULL THEN
            (c.betpawa_market_name, c.outcomes, c.market_groups, c.handicap_type, c.handicap_home, c.handicap_away) END AS data
),
confirmed AS (
    -- Markets without a change: a plain UPDATE of two columns, which parses
    -- no JSON and takes no extra lock. Key order, like the upsert: the
    -- arrays drive a nested loop over the key index, row by row.
    -- @confirm_unavailable_ats is empty when no confirmation has one:
    -- unnest pads it with NULL, read as available like the sentinel.
    UPDATE "odds".market_odds_current AS c SET
        last_confirmed_at = ($3::timestamptz[])[f.scrape],
        unavailable_at = CASE WHEN f.unavailable_at IS NULL OR f.unavailable_at = '0001-01-01 00:00:00+00' THEN NULL
            ELSE COALESCE(c.unavailable_at, f.unavailable_at) END
    --
    -- Each array is behind a scalar subquery, so that the planner cannot
    -- count its elements: a plan made for this call's values (an unnamed
    -- statement: pgx's exec and cache_describe modes) would otherwise
    -- hash the whole table when a batch is large against it (seen at 4,766
    -- confirmations of 150,000 markets: a sequential scan, 5x slower, and
    -- rows updated in the table's order instead of key order). As it is,
    -- every plan probes the key index per confirmation, in array order.
    FROM unnest((SELECT $29::bigint[]), (SELECT $30::int4[]),
        (SELECT $31::text[]), (SELECT $32::text[]),
        (SELECT $33::float8[]), (SELECT $34::timestamptz[]))
        AS f(event_id, scrape, bookmaker_slug, market_id, line_key, unavailable_at)
    WHERE c.event_id = f.event_id AND c.bookmaker_slug = f.bookmaker_slug
        AND c.betpawa_market_id = f.market_id AND COALESCE(c.line, 0) = f.line_key
        AND c.last_confirmed_at < ($3::timestamptz[])[f.scrape]
        AND (SELECT count(*) FROM scrapes_newest) >= 0
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM current_upserted) AS upserted,
    (SELECT count(*) FROM scrapes_logged) AS scrapes_logged,
    (SELECT confirm_mode FROM "odds".oddsledger_settings) AS schema_confirm_mode,
    (SELECT count(*) FROM history_added) AS history_added,
    (SELECT count(*) FROM confirmed) AS confirmed,
    -- Confirmations whose market has no row at all (a classifier that knew
    -- it from elsewhere): the caller writes them in full. Looked up only
    -- when the UPDATE did not confirm every one (rare: a retried or
    -- overtaken batch, or such markets), so that a batch whose
    -- confirmations all landed pays nothing for this; an index probe each
    -- (the arrays hidden from the planner, as in confirmed).
    CASE WHEN (SELECT count(*) FROM confirmed) < cardinality($32::text[]) THEN
        ARRAY(SELECT f.ord
            FROM unnest((SELECT $29::bigint[]), (SELECT $31::text[]),
                (SELECT $32::text[]), (SELECT $33::float8[]))
                WITH ORDINALITY AS f(event_id, bookmaker_slug, market_id, line_key, ord)
            WHERE NOT EXISTS (SELECT FROM "odds".market_odds_current c
                WHERE c.event_id = f.event_id AND c.bookmaker_slug = f.bookmaker_slug
                    AND c.betpawa_market_id = f.market_id AND COALESCE(c.line, 0) = f.line_key))
    END AS missing,
    -- Markets whose row this statement could not get right from its own
    -- snapshot, which the caller recomputes from history in a statement of
    -- its own (repair_current.sql), after this one: it sees what other
    -- writers committed meanwhile. A market with a new change is one when
    --   - the upsert left its row alone, or left it with a newer change:
    --     the batch's change arrived behind a newer one (out of order);
    --   - its newest change here is a disappearance whose history row copied
    --     data other than what the row holds now: the copy came from this
    --     statement's snapshot, and a writer that held the row (the
    --     market's previous change, in flight) committed other data.
    ARRAY(SELECT r.ord FROM current_rows r
        JOIN new_changes n ON n.event_id = r.event_id AND n.bookmaker_slug = r.bookmaker_slug
            AND n.betpawa_market_id = r.market_id AND n.line_key = COALESCE(r.line, 0)
        LEFT JOIN current_upserted u ON u.event_id = r.event_id AND u.bookmaker_slug = r.bookmaker_slug
            AND u.betpawa_market_id = r.market_id AND u.line_key = COALESCE(r.line, 0)
        WHERE u.event_id IS NULL OR u.last_updated_at > r.updated_at
            OR (r.unavailable_at IS NOT NULL AND EXISTS (SELECT FROM history_added d
                WHERE d.event_id = r.event_id AND d.bookmaker_slug = r.bookmaker_slug
                    AND d.betpawa_market_id = r.market_id AND d.line_key = COALESCE(r.line, 0)
                    AND d.unavailable AND d.captured_at = r.updated_at AND d.data IS DISTINCT FROM u.data))) AS late
-- parameters:
--   $1 @scrape_event_ids
--   $2 @scrape_bookmakers
--   $3 @scraped_ats
--   $4 @history_event_ids
--   $5 @history_bookmakers
--   $6 @history_market_ids
--   $7 @history_lines
--   $8 @history_names
--   $9 @history_outcomes
--   $10 @history_groups
--   $11 @history_handicap_types
--   $12 @history_handicap_homes
--   $13 @history_handicap_aways
--   $14 @history_captured_ats
--   $15 @history_unavailables
--   $16 @current_event_ids
--   $17 @current_bookmakers
--   $18 @current_market_ids
--   $19 @current_lines
--   $20 @current_names
--   $21 @current_outcomes
--   $22 @current_groups
--   $23 @current_handicap_types
--   $24 @current_handicap_homes
--   $25 @current_handicap_aways
--   $26 @current_confirmed_ats
--   $27 @current_updated_ats
--   $28 @current_unavailable_ats
--   $29 @confirm_event_ids
--   $30 @confirm_scrapes
--   $31 @confirm_bookmakers
--   $32 @confirm_market_ids
--   $33 @confirm_line_keys
--   $34 @confirm_unavailable_ats
