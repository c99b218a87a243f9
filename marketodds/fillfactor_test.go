package marketodds_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// After a first load, a cycle that confirms every market rewrites each row
// in place (HOT, migration 0004's fillfactor): no row leaves its page, the
// table and its index do not grow. At fillfactor 70 more than half of the
// rows moved to new pages, each with a new index entry.
func TestConfirmationCycleStaysOnItsPages(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()

	var markets []marketodds.Market
	for event := int64(1); event <= 40; event++ {
		for _, bookmaker := range []string{"betpawa", "sportybet"} {
			for i := range 25 {
				m := market1X2(event, bookmaker, 1.5+float64(i)/100, 3.4, 6.2)
				m.MarketID = fmt.Sprintf("%d", 3743+i)
				markets = append(markets, m)
			}
		}
	}
	writeAll := func(confirm bool, minutes int) {
		t.Helper()
		var ws []marketodds.Write
		for _, m := range markets {
			if confirm {
				ws = append(ws, confirmed(m, at(minutes)))
			} else {
				ws = append(ws, changed(m, at(minutes)))
			}
		}
		if _, err := s.WriteMarketBatch(ctx, marketodds.Batch{Writes: ws}); err != nil {
			t.Fatal(err)
		}
	}
	type layout struct {
		pages    map[string]int // market -> heap page
		heap, ix int64
	}
	read := func() layout {
		t.Helper()
		l := layout{pages: map[string]int{}}
		rows, err := pgtest.Pool(t).Query(ctx, fmt.Sprintf(`SELECT event_id || '/' || bookmaker_slug || '/' || betpawa_market_id,
			(ctid::text::point)[0]::int FROM %q.market_odds_current`, s.schema))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var page int
			if err := rows.Scan(&k, &page); err != nil {
				t.Fatal(err)
			}
			l.pages[k] = page
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		err = pgtest.Pool(t).QueryRow(ctx, fmt.Sprintf(`SELECT pg_relation_size('%[1]q.market_odds_current'),
			pg_relation_size('%[1]q.market_odds_current_key')`, s.schema)).Scan(&l.heap, &l.ix)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	writeAll(false, 0)
	before := read()
	if len(before.pages) != len(markets) {
		t.Fatalf("%d current rows, want %d", len(before.pages), len(markets))
	}
	writeAll(true, 1)
	after := read()
	moved := 0
	for k, page := range before.pages {
		if after.pages[k] != page {
			moved++
		}
	}
	if moved > 0 || after.heap != before.heap || after.ix != before.ix {
		t.Errorf("a confirmation cycle moved %d of %d rows to other pages; heap %d -> %d bytes, index %d -> %d bytes",
			moved, len(markets), before.heap, after.heap, before.ix, after.ix)
	}
}
