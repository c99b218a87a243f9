-- Records what the schema is (right after migration 0002 created the
-- settings row): its partition span and confirmation mode.
UPDATE "odds".oddsledger_settings
SET partition_span = make_interval(secs => $1), confirm_mode = $2
-- parameters:
--   $1 @span_seconds
--   $2 @confirm_mode
