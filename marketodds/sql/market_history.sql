-- The changes of one market captured in [@from, @to), oldest first: a range
-- scan of the history's unique index, in the partitions of that range only.
SELECT event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name, outcomes,
    market_groups, handicap_type, handicap_home, handicap_away, captured_at, unavailable
FROM /* TEMPLATE: schema */market_odds_history
WHERE event_id = @event_id AND bookmaker_slug = @bookmaker AND betpawa_market_id = @market_id
    AND COALESCE(line, 0) = @line_key
    AND captured_at >= @from AND captured_at < @to
ORDER BY captured_at
