-- The partitions of market_odds_history and market_scrape_log, with their
-- bounds, oldest first. A partition's bounds exist in the catalog only as
-- text, printed in the session's DateStyle and TimeZone (and read back in
-- them): run this after set_local_utc.sql, in the same transaction, so that
-- the answer does not depend on the session. Partitions being dropped
-- (relpartbound already gone), the DEFAULT partition and bounds that are not
-- times (MINVALUE, MAXVALUE) are left out.
-- MATERIALIZED: the bounds are read once per partition; evaluated twice (a
-- flattened subquery would), a partition dropped in between could pass the
-- filter and then come back without bounds.
WITH partitions AS MATERIALIZED (
    SELECT parent.relname::text AS table_name, child.relname::text AS name,
        (regexp_match(pg_get_expr(child.relpartbound, child.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS from_time,
        (regexp_match(pg_get_expr(child.relpartbound, child.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS to_time
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class parent ON parent.oid = i.inhparent
    JOIN pg_catalog.pg_class child ON child.oid = i.inhrelid
    WHERE parent.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = @schema)
        AND parent.relname IN ('market_odds_history', 'market_scrape_log')
        AND child.relpartbound IS NOT NULL
)
SELECT table_name, name, from_time, to_time
FROM partitions
WHERE from_time IS NOT NULL AND to_time IS NOT NULL
ORDER BY from_time, table_name, name
