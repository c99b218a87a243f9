package feed

import (
	"math"
	"sync"
	"time"

	"github.com/oddsledger/oddsledger/marketodds"
)

// BatchBucketsMs are the upper bounds, in milliseconds, of the buckets of
// the write-duration histogram (BatchStats.Buckets), a 1-2-5 series; a last
// bucket past them takes the slower calls. Do not modify.
var BatchBucketsMs = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// WriteMetrics keeps what a store's Config.OnBatch reports of its write
// calls: their number, errors, sizes and a histogram of their durations.
// NewStore installs it; Feed.Stats reports it. It is safe for concurrent
// use (OnBatch is called from the queue's workers).
type WriteMetrics struct {
	mu      sync.Mutex
	count   int64
	errors  int64
	writes  int64
	total   time.Duration
	max     time.Duration
	buckets []int64 // len(BatchBucketsMs)+1
}

// NewWriteMetrics returns empty metrics. Install OnBatch as the store's
// Config.OnBatch (NewStore does).
func NewWriteMetrics() *WriteMetrics {
	return &WriteMetrics{buckets: make([]int64, len(BatchBucketsMs)+1)}
}

// OnBatch records one write call: a marketodds.Config.OnBatch hook.
func (m *WriteMetrics) OnBatch(ev marketodds.BatchEvent) {
	ms := float64(ev.Duration) / float64(time.Millisecond)
	i := 0
	for i < len(BatchBucketsMs) && ms > BatchBucketsMs[i] {
		i++
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	if ev.Err != nil {
		m.errors++
	}
	if ev.Batch != nil {
		m.writes += int64(len(ev.Batch.Writes))
	}
	m.total += ev.Duration
	m.max = max(m.max, ev.Duration)
	m.buckets[i]++
}

// Stats returns a consistent snapshot of the metrics.
func (m *WriteMetrics) Stats() BatchStats {
	if m == nil {
		return BatchStats{Buckets: make([]int64, len(BatchBucketsMs)+1)}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return BatchStats{Count: m.count, Errors: m.errors, Writes: m.writes, Total: m.total, Max: m.max,
		Buckets: append([]int64(nil), m.buckets...)}
}

// BatchStats are the write calls a store reported through Config.OnBatch:
// every call of WriteMarketBatch, failed attempts that the queue retried
// included.
type BatchStats struct {
	// Count is the number of write calls, Errors those that returned an
	// error (nothing written).
	Count, Errors int64
	// Writes is the sum of the calls' batch sizes (len(Batch.Writes)).
	Writes int64
	// Total is the sum of the calls' durations, Max the longest.
	Total, Max time.Duration
	// Buckets[i] counts the calls that took more than BatchBucketsMs[i-1]
	// and at most BatchBucketsMs[i] milliseconds; the last one (index
	// len(BatchBucketsMs)) those that took longer than every bound.
	Buckets []int64
}

// Mean is the mean duration of a call, 0 without calls.
func (s BatchStats) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Total / time.Duration(s.Count)
}

// Quantile estimates the q-quantile (0 < q <= 1) of the durations from the
// buckets: the upper bound of the bucket it falls in (Max for the last
// bucket, and Max when it is lower than that bound). 0 without calls.
func (s BatchStats) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(s.Count)))
	rank = min(max(rank, 1), s.Count)
	var seen int64
	for i, n := range s.Buckets {
		seen += n
		if seen < rank {
			continue
		}
		if i == len(BatchBucketsMs) {
			return s.Max
		}
		return min(time.Duration(BatchBucketsMs[i]*float64(time.Millisecond)), s.Max)
	}
	return s.Max
}

// NewStore makes the store a feed writes to, with the feed's write metrics
// installed as its Config.OnBatch (a hook cfg already has is called after
// it). Give both to New (Config.Store, Config.Metrics).
func NewStore(db marketodds.DB, cfg *marketodds.Config) (*marketodds.Store, *WriteMetrics, error) {
	var c marketodds.Config
	if cfg != nil {
		c = *cfg
	}
	m := NewWriteMetrics()
	if next := c.OnBatch; next != nil {
		c.OnBatch = func(ev marketodds.BatchEvent) {
			m.OnBatch(ev)
			next(ev)
		}
	} else {
		c.OnBatch = m.OnBatch
	}
	store, err := marketodds.NewStore(db, &c)
	if err != nil {
		return nil, nil, err
	}
	return store, m, nil
}
