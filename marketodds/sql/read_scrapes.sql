-- read_scrapes: the newest scrape of every (event, bookmaker) of the events,
-- by event, then bookmaker (bytewise): market_scrapes, a primary key probe
-- per event.
SELECT event_id, bookmaker_slug, last_scraped_at
FROM /* TEMPLATE: schema */market_scrapes
WHERE event_id = ANY(@event_ids::bigint[])
ORDER BY event_id, bookmaker_slug COLLATE "C"
