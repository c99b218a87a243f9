-- Times as text in ISO format and UTC, for this transaction only (SET LOCAL:
-- nothing leaks into the session, which a pooler may hand to someone else).
SELECT set_config('DateStyle', 'ISO, YMD', true), set_config('TimeZone', 'UTC', true)
