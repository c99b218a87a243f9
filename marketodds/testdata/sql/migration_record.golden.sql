INSERT INTO "odds".oddsledger_migrations (version, name) VALUES ($1, $2)
-- parameters:
--   $1 @version
--   $2 @name
