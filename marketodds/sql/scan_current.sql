-- Every current row confirmed at or after @since, in key order (bytewise,
-- as Key.Less), streamed, as the per-market confirmation mode would have
-- stored it (market_odds_live).
SELECT event_id, bookmaker_slug, betpawa_market_id, line, betpawa_market_name, outcomes,
    market_groups, handicap_type, handicap_home, handicap_away,
    last_confirmed_at, last_updated_at, unavailable_at, change_count
FROM /* TEMPLATE: schema */market_odds_live
WHERE last_confirmed_at >= @since
ORDER BY event_id, bookmaker_slug COLLATE "C", betpawa_market_id COLLATE "C", COALESCE(line, 0)
