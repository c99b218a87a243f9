-- Which migrations the schema has: one row per applied migration.
CREATE TABLE IF NOT EXISTS "odds".oddsledger_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
-- parameters:
