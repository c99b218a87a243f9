-- What the schema records about itself (migration 0002).
SELECT partition_span, confirm_mode FROM "odds".oddsledger_settings
-- parameters:
