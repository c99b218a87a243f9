-- Whether the schema exists.
SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = @schema)
