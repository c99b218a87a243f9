package marketodds

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// currentColumns are the array parameters of the current-table upsert, one
// element per market. Arrays rather than one parameter per value: a batch is
// one statement whatever its size, far below the 65,535-parameter limit.
type currentColumns struct {
	eventID                 []int64
	bookmaker, marketID     []string
	line                    []float64
	name, outcomes, groups  []string
	handicapType            []string
	handicapHome, handicapA []float64
	confirmedAt, updatedAt  []time.Time
	unavailableAt           []time.Time
}

func newCurrentColumns(n int) *currentColumns {
	return &currentColumns{
		eventID: make([]int64, 0, n), bookmaker: make([]string, 0, n), marketID: make([]string, 0, n),
		line: make([]float64, 0, n), name: make([]string, 0, n), outcomes: make([]string, 0, n),
		groups: make([]string, 0, n), handicapType: make([]string, 0, n), handicapHome: make([]float64, 0, n),
		handicapA: make([]float64, 0, n), confirmedAt: make([]time.Time, 0, n), updatedAt: make([]time.Time, 0, n),
		unavailableAt: make([]time.Time, 0, n),
	}
}

// add appends one market: identity and confirmation from newest, data from
// data (nil when no write of the market carried any).
func (c *currentColumns) add(newest, data *Write, updatedAt time.Time, unavailableAt *time.Time) {
	c.eventID = append(c.eventID, newest.EventID)
	c.bookmaker = append(c.bookmaker, newest.Bookmaker)
	c.marketID = append(c.marketID, newest.MarketID)
	c.confirmedAt = append(c.confirmedAt, newest.CapturedAt)
	c.updatedAt = append(c.updatedAt, updatedAt)
	c.unavailableAt = append(c.unavailableAt, timeOrNull(unavailableAt))
	if data == nil {
		// '[]' outcomes mark "no data": the upsert keeps the row's data.
		c.line = append(c.line, lineOrNull(newest.Line))
		c.name = append(c.name, newest.Name)
		c.outcomes = append(c.outcomes, "[]")
		c.groups = append(c.groups, "{}")
		c.handicapType = append(c.handicapType, "")
		c.handicapHome = append(c.handicapHome, nullFloat)
		c.handicapA = append(c.handicapA, nullFloat)
		return
	}
	c.line = append(c.line, lineOrNull(data.Line))
	c.name = append(c.name, data.Name)
	c.outcomes = append(c.outcomes, encodeOutcomes(data.Outcomes))
	c.groups = append(c.groups, encodeTextArray(data.Groups))
	t, h, a := handicapColumns(data.Handicap)
	c.handicapType = append(c.handicapType, t)
	c.handicapHome = append(c.handicapHome, h)
	c.handicapA = append(c.handicapA, a)
}

func (c *currentColumns) args() []any {
	return []any{c.eventID, c.bookmaker, c.marketID, c.line, c.name, c.outcomes, c.groups,
		c.handicapType, c.handicapHome, c.handicapA, c.confirmedAt, c.updatedAt, c.unavailableAt}
}

// historyColumns are the array parameters of the history append.
type historyColumns struct {
	eventID                 []int64
	bookmaker, marketID     []string
	line                    []float64
	name                    []string
	outcomes                []string // "": a disappearance without data
	groups                  []string
	handicapType            []string
	handicapHome, handicapA []float64
	capturedAt              []time.Time
	unavailable             []bool

	dupInBatch int // changed writes of the batch that repeat another's key and time
}

func newHistoryColumns() *historyColumns { return &historyColumns{} }

// confirmColumns are the parameters of the confirmation path: the markets
// that did not change, keys and times only.
type confirmColumns struct {
	units               []span // the unit of each row, to map missing rows back
	eventID             []int64
	bookmaker, marketID []string
	lineKey             []float64
	confirmedAt         []time.Time
	unavailableAt       []time.Time
}

func newConfirmColumns(n int) *confirmColumns {
	return &confirmColumns{units: make([]span, 0, n), eventID: make([]int64, 0, n), bookmaker: make([]string, 0, n),
		marketID: make([]string, 0, n), lineKey: make([]float64, 0, n), confirmedAt: make([]time.Time, 0, n),
		unavailableAt: make([]time.Time, 0, n)}
}

func (c *confirmColumns) add(u span, newest *Write, unavailableAt *time.Time) {
	c.units = append(c.units, u)
	c.eventID = append(c.eventID, newest.EventID)
	c.bookmaker = append(c.bookmaker, newest.Bookmaker)
	c.marketID = append(c.marketID, newest.MarketID)
	c.lineKey = append(c.lineKey, keyLine(newest.Line))
	c.confirmedAt = append(c.confirmedAt, newest.CapturedAt)
	c.unavailableAt = append(c.unavailableAt, timeOrNull(unavailableAt))
}

func (c *confirmColumns) args() []any {
	return []any{c.eventID, c.bookmaker, c.marketID, c.lineKey, c.confirmedAt, c.unavailableAt}
}

func (h *historyColumns) len() int { return len(h.eventID) }

func (h *historyColumns) add(w *Write) {
	h.eventID = append(h.eventID, w.EventID)
	h.bookmaker = append(h.bookmaker, w.Bookmaker)
	h.marketID = append(h.marketID, w.MarketID)
	h.line = append(h.line, lineOrNull(w.Line))
	h.name = append(h.name, w.Name)
	if len(w.Outcomes) == 0 {
		h.outcomes = append(h.outcomes, "")
	} else {
		h.outcomes = append(h.outcomes, encodeOutcomes(w.Outcomes))
	}
	h.groups = append(h.groups, encodeTextArray(w.Groups))
	t, hh, a := handicapColumns(w.Handicap)
	h.handicapType = append(h.handicapType, t)
	h.handicapHome = append(h.handicapHome, hh)
	h.handicapA = append(h.handicapA, a)
	h.capturedAt = append(h.capturedAt, w.CapturedAt)
	h.unavailable = append(h.unavailable, w.Unavailable)
}

func (h *historyColumns) args() []any {
	return []any{h.eventID, h.bookmaker, h.marketID, h.line, h.name, h.outcomes, h.groups,
		h.handicapType, h.handicapHome, h.handicapA, h.capturedAt, h.unavailable}
}

// The NULL sentinels of the write statement (see nullSentinels).
var (
	nullFloat = math.NaN()
	nullTime  = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) // CapturedAt is validated to be >= 1970
)

func lineOrNull(l *float64) float64 {
	if l == nil {
		return nullFloat
	}
	return *l
}

func timeOrNull(t *time.Time) time.Time {
	if t == nil {
		return nullTime
	}
	return *t
}

func handicapColumns(h *Handicap) (string, float64, float64) {
	if h == nil {
		return "", nullFloat, nullFloat
	}
	return h.Type, h.Home, h.Away
}

// encodeOutcomes writes outcomes as the jsonb array text
// [{"name":...,"odds":...,"suspended":...}]. It is encoding/json's output
// for []Outcome, without reflection; floats use the shortest form that
// parses back to the same float64, so odds survive the round trip exactly.
func encodeOutcomes(os []Outcome) string {
	b := make([]byte, 0, 48*len(os)+2)
	b = append(b, '[')
	for i, o := range os {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, o.Name)
		b = append(b, `,"odds":`...)
		b = strconv.AppendFloat(b, o.Odds, 'g', -1, 64)
		b = append(b, `,"suspended":`...)
		b = strconv.AppendBool(b, o.Suspended)
		b = append(b, '}')
	}
	b = append(b, ']')
	return string(b)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. s is valid UTF-8 without NUL
// (validated), so only quotes, backslashes and control characters need
// escaping.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf || (c >= 0x20 && c != '"' && c != '\\') {
			b = append(b, c)
			i++
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(b, '"')
}

// encodeTextArray writes ss as a PostgreSQL text[] literal. pgx cannot send
// a ragged [][]string, so each row's groups travel as one literal.
func encodeTextArray(ss []string) string {
	if len(ss) == 0 {
		return "{}"
	}
	b := make([]byte, 0, 16*len(ss))
	b = append(b, '{')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	b = append(b, '}')
	return string(b)
}
