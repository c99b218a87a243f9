-- The changes of one market captured in [@from, @to), oldest first: a range
-- scan of the history's unique index, in the partitions of that range only.
SELECT event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name, outcomes,
    market_groups, handicap_type, handicap_home, handicap_away, captured_at, unavailable
FROM "odds".market_odds_history
WHERE event_id = $1 AND bookmaker_slug = $2 AND betpawa_market_id = $3
    AND COALESCE(line, 0) = $4
    AND captured_at >= $5 AND captured_at < $6
ORDER BY captured_at
-- parameters:
--   $1 @event_id
--   $2 @bookmaker
--   $3 @market_id
--   $4 @line_key
--   $5 @from
--   $6 @to
