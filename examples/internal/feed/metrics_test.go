package feed

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/oddsledger/oddsledger/internal/pgtest"
	"github.com/oddsledger/oddsledger/marketodds"
)

// TestWriteMetricsBuckets: each call lands in the bucket of its duration
// (bounds inclusive), errors and sizes add up, and the quantiles read from
// the buckets are their upper bounds, capped by the longest call.
func TestWriteMetricsBuckets(t *testing.T) {
	t.Parallel()
	m := NewWriteMetrics()
	if st := m.Stats(); st.Count != 0 || st.Mean() != 0 || st.Quantile(0.5) != 0 || len(st.Buckets) != len(BatchBucketsMs)+1 {
		t.Fatalf("empty metrics: %+v", st)
	}
	batch := &marketodds.Batch{Writes: make([]marketodds.Write, 10)}
	for _, d := range []time.Duration{
		500 * time.Microsecond, time.Millisecond, // <= 1 ms
		1500 * time.Microsecond,                                                                    // <= 2
		30 * time.Millisecond, 50 * time.Millisecond, 40 * time.Millisecond, 45 * time.Millisecond, // <= 50
		120 * time.Millisecond, // <= 200
		time.Minute,            // past every bound
	} {
		m.OnBatch(marketodds.BatchEvent{Batch: batch, Duration: d})
	}
	m.OnBatch(marketodds.BatchEvent{Batch: batch, Duration: 3 * time.Millisecond, Err: errors.New("boom")}) // <= 5
	st := m.Stats()
	want := map[int]int64{0: 2, 1: 1, 2: 1, 5: 4, 7: 1, len(BatchBucketsMs): 1}
	for i, n := range st.Buckets {
		if n != want[i] {
			t.Errorf("bucket %d (<= %v ms): %d calls, want %d", i, BatchBucketsMs[min(i, len(BatchBucketsMs)-1)], n, want[i])
		}
	}
	total := 500*time.Microsecond + time.Millisecond + 1500*time.Microsecond + 165*time.Millisecond +
		120*time.Millisecond + time.Minute + 3*time.Millisecond
	if st.Count != 10 || st.Errors != 1 || st.Writes != 100 || st.Total != total || st.Max != time.Minute ||
		st.Mean() != total/10 {
		t.Errorf("stats %+v", st)
	}
	for q, want := range map[float64]time.Duration{
		0.1: time.Millisecond, 0.2: time.Millisecond, 0.3: 2 * time.Millisecond, 0.5: 50 * time.Millisecond,
		0.8: 50 * time.Millisecond, 0.9: 200 * time.Millisecond, 0.99: time.Minute, 1: time.Minute,
	} {
		if got := st.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	// A quantile is never above the longest call.
	short := NewWriteMetrics()
	short.OnBatch(marketodds.BatchEvent{Duration: 30 * time.Millisecond})
	if got := short.Stats().Quantile(0.5); got != 30*time.Millisecond {
		t.Errorf("Quantile of one 30ms call: %v", got)
	}
	// Stats is a copy, and a nil *WriteMetrics (a feed without) reports none.
	st.Buckets[0] = 99
	if m.Stats().Buckets[0] != 2 {
		t.Error("Stats shares its buckets")
	}
	var none *WriteMetrics
	if st := none.Stats(); st.Count != 0 || len(st.Buckets) != len(BatchBucketsMs)+1 {
		t.Errorf("nil metrics: %+v", st)
	}
}

// TestFeedWriteMetrics: NewStore installs the metrics as the store's
// OnBatch, before a hook of the caller's own, and the feed's Stats report
// every write call: they agree with Store.Stats.
func TestFeedWriteMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	var own []marketodds.BatchEvent
	store, metrics, err := NewStore(pgtest.Pool(t), &marketodds.Config{Schema: pgtest.Schema(t),
		OnBatch: func(ev marketodds.BatchEvent) {
			mu.Lock()
			defer mu.Unlock()
			own = append(own, ev)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewStore(nil, nil); err == nil {
		t.Error("NewStore without a database: no error")
	}
	f := New(Config{Store: store, Metrics: metrics, BatchSize: 200})
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx, time.Minute)
	s := testSim(4, 0.1, 3)
	for range 3 {
		s.Advance()
		err := s.ScrapeCycle(ctx, func(ctx context.Context, id int64, book string, ms []marketodds.Market, at time.Time) error {
			_, err := f.Scrape(ctx, id, book, ms, at)
			return err
		})
		if err == nil {
			err = f.Flush(ctx)
		}
		if err == nil {
			err = f.WaitIdle(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	fs, ss := f.Stats(), store.Stats()
	b := fs.Batches
	var inBuckets int64
	for _, n := range b.Buckets {
		inBuckets += n
	}
	mu.Lock()
	calls := len(own)
	mu.Unlock()
	if b.Count == 0 || b.Count != ss.Batches || b.Count != int64(calls) || b.Count != fs.Queue.Succeeded ||
		b.Errors != ss.Failed || b.Writes != ss.Writes || b.Writes != fs.Writes || inBuckets != b.Count ||
		b.Total <= 0 || b.Max > b.Total {
		t.Errorf("write calls %+v (%d in the buckets), the caller's hook saw %d; Store.Stats %+v; feed %+v",
			b, inBuckets, calls, ss, fs)
	}
	if f2 := New(Config{Store: store}); f2.Stats().Batches.Count != 0 {
		t.Error("a feed without Metrics reports write calls")
	}
}
