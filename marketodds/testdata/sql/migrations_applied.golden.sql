SELECT version FROM "odds".oddsledger_migrations
-- parameters:
