-- Serialises the processes that migrate one schema, until the end of the
-- transaction (transaction-scoped: safe behind a transaction pooler).
SELECT pg_advisory_xact_lock(hashtextextended('oddsledger.migrate.' || @schema, 0))
