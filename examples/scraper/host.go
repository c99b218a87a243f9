package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oddsledger/oddsledger/examples/internal/feed"
	"github.com/oddsledger/oddsledger/marketodds"
	"github.com/oddsledger/oddsledger/writequeue"
)

// host is the scraper application: the library's wiring (feed.Feed: per
// (event, bookmaker) scrape, the classifier decides what changed; the
// writes of many scrapes go to the queue as one *marketodds.Batch; the
// queue's handler writes them with Store.WriteMarketBatch, retries what
// marketodds.IsTransient calls transient, and makes the classifier forget
// the changes of a batch it gives up on, so that the next scrape sends them
// again), and beside it the pre-library way, for comparison: a snapshot of
// every market of the scrape whenever any of them changed, in its own
// batches through the same queue, to its own handler.
type host struct {
	*feed.Feed
	logger    *slog.Logger
	legacy    *legacyStore // nil: the baseline is off
	batchSize int

	// Producer side: one goroutine (the scrape loop).
	pendingLegacy *legacySnapshotBatch

	// Written by the handler and onDropSnapshots, on the queue's workers.
	snapshotRows atomic.Int64
	droppedRows  atomic.Int64 // rows of dropped snapshot batches
}

// newHost wires the feed, and the baseline's handler when legacy is not
// nil.
func newHost(logger *slog.Logger, store *marketodds.Store, metrics *feed.WriteMetrics, legacy *legacyStore,
	batchSize, workers int, runID int64) *host {
	h := &host{logger: logger, legacy: legacy, batchSize: batchSize}
	h.Feed = feed.New(feed.Config{Store: store, Metrics: metrics, Logger: logger, BatchSize: batchSize, RunID: runID,
		Queue: &writequeue.Config{Workers: workers}, OnDropOther: h.onDropSnapshots})
	if legacy != nil {
		writequeue.Handle(h.Queue, h.writeSnapshots)
	}
	return h
}

// scrape takes one scrape of one (event, bookmaker): every market the
// bookmaker's page showed. markets must not be modified afterwards: the
// writes share their memory until they are written.
func (h *host) scrape(ctx context.Context, eventID int64, bookmaker string, markets []marketodds.Market,
	capturedAt time.Time) error {
	changed, err := h.Scrape(ctx, eventID, bookmaker, markets, capturedAt)
	if err != nil {
		return err
	}
	if h.legacy != nil && changed > 0 {
		if h.pendingLegacy == nil {
			h.pendingLegacy = &legacySnapshotBatch{Snapshots: make([]snapshot, 0, h.batchSize/40+1)}
		}
		h.pendingLegacy.add(snapshot{EventID: eventID, Bookmaker: bookmaker, CapturedAt: capturedAt, Markets: markets})
		if h.pendingLegacy.Rows >= h.batchSize {
			return h.flushLegacy(ctx)
		}
	}
	return nil
}

// flush enqueues the batches being filled.
func (h *host) flush(ctx context.Context) error {
	return errors.Join(h.Flush(ctx), h.flushLegacy(ctx))
}

func (h *host) flushLegacy(ctx context.Context) error {
	b := h.pendingLegacy
	if b == nil || len(b.Snapshots) == 0 {
		return nil
	}
	if err := h.Queue.Enqueue(ctx, b); err != nil {
		return err
	}
	h.pendingLegacy = nil
	return nil
}

// writeSnapshots is the queue's handler for the baseline's batches.
func (h *host) writeSnapshots(ctx context.Context, b *legacySnapshotBatch) error {
	n, err := h.legacy.Write(ctx, b)
	if err != nil {
		return err
	}
	h.snapshotRows.Add(n)
	return nil
}

// onDropSnapshots is the dead-letter hook for the batches that are not the
// feed's: the baseline's snapshots. The old design has no way back: those
// snapshots are gone.
func (h *host) onDropSnapshots(batch any, err error) {
	switch b := batch.(type) {
	case *legacySnapshotBatch:
		h.droppedRows.Add(int64(b.Rows))
		h.logger.Error("snapshot batch dropped", "snapshots", len(b.Snapshots), "rows", b.Rows, "err", err)
	default:
		h.logger.Error("batch of unknown type dropped", "type", fmt.Sprintf("%T", batch), "err", err)
	}
}

// durations keeps the duration of every write call of the store: a
// marketodds.Config.OnBatch hook, called from the queue's workers. A run
// makes a few hundred calls; a host that runs for ever keeps a histogram
// only, as feed.WriteMetrics does.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (d *durations) onBatch(ev marketodds.BatchEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.d = append(d.d, ev.Duration)
}

// sorted returns the durations kept so far, shortest first.
func (d *durations) sorted() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := slices.Clone(d.d)
	slices.Sort(out)
	return out
}
