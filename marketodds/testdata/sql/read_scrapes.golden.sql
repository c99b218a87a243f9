-- read_scrapes: the newest scrape of every (event, bookmaker) of the events,
-- by event, then bookmaker (bytewise): market_scrapes, a primary key probe
-- per event.
SELECT event_id, bookmaker_slug, last_scraped_at
FROM "odds".market_scrapes
WHERE event_id = ANY($1::bigint[])
ORDER BY event_id, bookmaker_slug COLLATE "C"
-- parameters:
--   $1 @event_ids
