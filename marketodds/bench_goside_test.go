package marketodds_test

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/oddsledger/oddsledger/marketodds"
)

// BenchmarkWriteGoSide measures the client side of WriteMarketBatch
// without a server, per write: validation, sorting and grouping by key,
// building the write statement's arrays (JSON of the outcomes, text[]
// literals), and pgx's binary encoding of those arrays (what pgx does
// before sending them in its default and cache_describe modes; text: what
// its exec mode does instead). cpu-ns/write is this process's CPU time
// (GC included), which other work on the machine moves less than
// ns/write. Batches of ODDSLEDGER_BENCH_BATCH (5,000)
// writes of BenchmarkCycle's workload (200 events):
//
//	first-load   cycle 1: every write changed
//	steady       cycle 2, ConfirmMarkets: 5% changed, 95% confirmations
//	scrapes      cycle 2, ConfirmScrapes: 5% changed, the rest left to their scrape
//
//	go test -run '^$' -bench WriteGoSide -count 6 ./marketodds
func BenchmarkWriteGoSide(b *testing.B) {
	cfg := benchConfigFromEnv(b)
	wl := newBenchWorkload(200, cfg.change)
	cycle1, cycle2 := wl.next(), wl.next()
	m := pgtype.NewMap()
	for _, c := range []struct {
		name    string
		ws      []marketodds.Write
		confirm marketodds.ConfirmMode
		format  int16
	}{
		{"first-load", cycle1, marketodds.ConfirmMarkets, pgtype.BinaryFormatCode},
		{"steady", cycle2, marketodds.ConfirmMarkets, pgtype.BinaryFormatCode},
		{"scrapes", cycle2, marketodds.ConfirmScrapes, pgtype.BinaryFormatCode},
		{"first-load-text", cycle1, marketodds.ConfirmMarkets, pgtype.TextFormatCode},
		{"steady-text", cycle2, marketodds.ConfirmMarkets, pgtype.TextFormatCode},
	} {
		b.Run(c.name, func(b *testing.B) {
			// The store is never asked to reach its DB here.
			s, err := marketodds.NewStore(modeDB{}, &marketodds.Config{Schema: "bench", Confirm: c.confirm})
			if err != nil {
				b.Fatal(err)
			}
			batches := benchBatches(c.ws, cfg.batch)
			var buf []byte
			var bytes int
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := procCPU(os.Getpid())
			for i := 0; b.Loop(); i++ {
				batch := batches[i%len(batches)]
				args := marketodds.BenchWriteArgs(s, marketodds.Batch{Writes: batch})
				bytes = 0
				for j, a := range args {
					oid, ok := arrayOID(a)
					if !ok {
						b.Fatalf("argument %d: no OID for %T", j+1, a)
					}
					if buf, err = m.Encode(oid, c.format, a, buf[:0]); err != nil {
						b.Fatal(err)
					}
					bytes += len(buf)
				}
			}
			cpu := procCPU(os.Getpid()) - cpu0 // this process's, GC included; 10ms ticks
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*cfg.batch), "ns/write")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*cfg.batch), "cpu-ns/write")
			b.ReportMetric(float64(bytes)/float64(cfg.batch), "B-sent/write")
		})
	}
}
