-- Switches the schema's confirmation mode. Leaving 'scrapes' writes into
-- every current row the confirmation its scrapes gave it (what the view
-- market_odds_live reads), so that reads are the same before and after.
WITH materialized AS (
    UPDATE "odds".market_odds_current AS c
    SET last_confirmed_at = s.last_scraped_at
    FROM "odds".market_scrapes s, "odds".oddsledger_settings st
    WHERE st.confirm_mode = 'scrapes' AND $1 = 'markets'
        AND s.event_id = c.event_id AND s.bookmaker_slug = c.bookmaker_slug
        AND c.unavailable_at IS NULL AND s.last_scraped_at > c.last_confirmed_at
    RETURNING 1
)
-- (A data-modifying CTE runs whether or not it is read, on the same
-- snapshot: it sees the mode being left.)
UPDATE "odds".oddsledger_settings
SET confirm_mode = $1
-- parameters:
--   $1 @confirm_mode
