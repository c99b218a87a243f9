-- Records what the schema is (right after migration 0002 created the
-- settings row): its partition span and confirmation mode.
UPDATE /* TEMPLATE: schema */oddsledger_settings
SET partition_span = make_interval(secs => @span_seconds), confirm_mode = @confirm_mode
