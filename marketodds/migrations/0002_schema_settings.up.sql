-- oddsledger 0002: what belongs to the schema rather than to one process.
-- Applied with search_path set to the target schema; names are unqualified.

-- One row. Every store that writes to the schema must agree with it:
-- Migrate and a store's first write compare their Config with this row and
-- refuse to go on when they differ (marketodds.ErrSchemaMismatch), so that
-- two processes configured differently cannot break each other's writes.
CREATE TABLE oddsledger_settings (
    singleton      boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    -- The time range of one history (and scrape log) partition. Migrate
    -- records its Config.PartitionSpan when the schema has no partition yet,
    -- or the span of the partitions it already has.
    partition_span interval NOT NULL,
    -- How unchanged markets are confirmed: 'markets' (every write moves its
    -- market's last_confirmed_at) or 'scrapes' (the scrape log confirms
    -- them). See marketodds.ConfirmMode.
    confirm_mode   text     NOT NULL DEFAULT 'markets' CHECK (confirm_mode IN ('markets', 'scrapes'))
);

-- A host that applies these files with its own tool gets daily partitions;
-- Migrate corrects the span before any partition exists.
INSERT INTO oddsledger_settings (partition_span) VALUES (interval '1 day');
