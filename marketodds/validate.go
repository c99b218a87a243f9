package marketodds

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Length limits of the string fields, in bytes. They keep a runaway scraper
// from filling the tables and keep index entries small.
const (
	MaxBookmakerLen    = 64
	MaxMarketIDLen     = 128
	MaxNameLen         = 512
	MaxOutcomeNameLen  = 256
	MaxGroupLen        = 128
	MaxHandicapTypeLen = 64
	MaxOutcomes        = 1000
	MaxGroups          = 64
)

// Validate checks a write before it reaches PostgreSQL. It returns a
// *ValidationError naming the market and the first bad field, or nil.
//
// A write must have a bookmaker, a market id and a CapturedAt; a line and
// handicap values that are finite; and at least one outcome, each with a
// unique name and finite odds > 1, unless the write reports a disappearance
// (Unavailable), which may carry no data at all. Strings must be valid UTF-8
// without NUL bytes (PostgreSQL text cannot hold NUL) and within the Max*Len
// limits.
func (w *Write) Validate() error {
	k := w.Key()
	bad := func(field, format string, args ...any) error {
		return &ValidationError{Key: k, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if err := checkString(w.Bookmaker, MaxBookmakerLen, true); err != "" {
		return bad("Bookmaker", "%s", err)
	}
	if err := checkString(w.MarketID, MaxMarketIDLen, true); err != "" {
		return bad("MarketID", "%s", err)
	}
	if w.CapturedAt.IsZero() {
		return bad("CapturedAt", "zero time")
	}
	if y := w.CapturedAt.UTC().Year(); y < 1970 || y > 9999 {
		return bad("CapturedAt", "year %d out of range", y)
	}
	if w.Line != nil && !finite(*w.Line) {
		return bad("Line", "not finite: %v", *w.Line)
	}
	if err := checkString(w.Name, MaxNameLen, false); err != "" {
		return bad("Name", "%s", err)
	}
	if len(w.Outcomes) == 0 && !w.Unavailable {
		return bad("Outcomes", "no outcomes")
	}
	if len(w.Outcomes) > MaxOutcomes {
		return bad("Outcomes", "%d outcomes, more than %d", len(w.Outcomes), MaxOutcomes)
	}
	for i, o := range w.Outcomes {
		if err := checkString(o.Name, MaxOutcomeNameLen, true); err != "" {
			return bad(fmt.Sprintf("Outcomes[%d].Name", i), "%s", err)
		}
		if !finite(o.Odds) || !(o.Odds > 1) {
			return bad(fmt.Sprintf("Outcomes[%d].Odds", i), "odds must be finite and > 1, got %v", o.Odds)
		}
		for j := range i {
			if w.Outcomes[j].Name == o.Name {
				return bad(fmt.Sprintf("Outcomes[%d].Name", i), "duplicate outcome name %q", o.Name)
			}
		}
	}
	if len(w.Groups) > MaxGroups {
		return bad("Groups", "%d groups, more than %d", len(w.Groups), MaxGroups)
	}
	for i, g := range w.Groups {
		if err := checkString(g, MaxGroupLen, false); err != "" {
			return bad(fmt.Sprintf("Groups[%d]", i), "%s", err)
		}
	}
	if h := w.Handicap; h != nil {
		if err := checkString(h.Type, MaxHandicapTypeLen, false); err != "" {
			return bad("Handicap.Type", "%s", err)
		}
		if !finite(h.Home) {
			return bad("Handicap.Home", "not finite: %v", h.Home)
		}
		if !finite(h.Away) {
			return bad("Handicap.Away", "not finite: %v", h.Away)
		}
	}
	return nil
}

// checkString returns what is wrong with s, or "".
func checkString(s string, max int, required bool) string {
	switch {
	case required && s == "":
		return "empty"
	case len(s) > max:
		return fmt.Sprintf("%d bytes, longer than %d", len(s), max)
	}
	// One pass over the ASCII prefix (names and ids are mostly ASCII: every
	// write of a batch is checked), 8 bytes at a time, then the library's
	// checks for the rest.
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		const ones, highs = 0x0101010101010101, 0x8080808080808080
		if x&highs != 0 || (x-ones)&^x&highs != 0 { // a byte >= 0x80, or a zero byte
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == 0 || c >= utf8.RuneSelf {
			switch {
			case !utf8.ValidString(s[i:]):
				return "invalid UTF-8"
			case strings.IndexByte(s[i:], 0) >= 0:
				return "contains a NUL byte"
			}
			return ""
		}
	}
	return ""
}
