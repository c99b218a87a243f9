-- The migrations use unqualified names: they apply in the schema first on
-- the search path, for this transaction only.
SELECT set_config('search_path', $1, true)
-- parameters:
--   $1 @search_path
