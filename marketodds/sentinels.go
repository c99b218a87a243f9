package marketodds

import (
	"math"
	"time"
)

// NULL sentinels. pgx encodes a slice of pointers by reflection, at several
// times the cost of a plain slice, so a NULL inside an array parameter
// travels as a value that no real row has, and the statement turns it back
// into NULL. sql/write_markets.sql lists the same values at its top.
var (
	// nullFloat stands for a NULL line or handicap value: validation keeps
	// NaN out of real ones. A NULL handicap is sent as "" type and nullFloat.
	nullFloat = math.NaN()
	// nullTime stands for a NULL unavailable_at: CapturedAt is validated to
	// be in 1970 or later.
	nullTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
)

const (
	// noHistoryData is a history row's outcomes when the batch knows no data
	// for it (a disappearance): the statement takes the current row's. Real
	// rows have outcomes.
	noHistoryData = ""
	// noCurrentData is a current row's outcomes when no write of the market
	// carried data: the upsert keeps the row's. Available markets have
	// outcomes.
	noCurrentData = "[]"
)
