-- Serialises the processes that create or drop partitions in one schema,
-- until the end of the transaction.
SELECT pg_advisory_xact_lock(hashtextextended('oddsledger.partitions.' || @schema, 0))
