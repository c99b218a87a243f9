-- Whether the schema exists.
SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1)
-- parameters:
--   $1 @schema
