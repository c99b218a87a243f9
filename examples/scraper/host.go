package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/oddsledger/oddsledger/changedetect"
	"github.com/oddsledger/oddsledger/marketodds"
	"github.com/oddsledger/oddsledger/writequeue"
)

// host is the wiring a scraper application does, and all of it: per
// (event, bookmaker) scrape, the classifier decides what changed; the
// writes of many scrapes go to the queue as one *marketodds.Batch; the
// queue's handler writes them with Store.WriteMarketBatch, retries what
// marketodds.IsTransient calls transient, and passes the rest to onDrop,
// which makes the classifier forget the batch's changes so that the next
// scrape sends them again.
//
// Beside it runs the pre-library way, for comparison: a snapshot of every
// market of the scrape whenever any of them changed, in its own batches
// through the same queue, to its own handler.
type host struct {
	logger     *slog.Logger
	store      *marketodds.Store
	legacy     *legacyStore // nil: the baseline is off
	classifier *changedetect.Classifier
	queue      *writequeue.Queue
	batchSize  int
	runID      int64

	// Producer side: one goroutine (the scrape loop).
	pending       *marketodds.Batch
	pendingLegacy *legacySnapshotBatch
	batches       int
	scrapes       int64 // scrapes taken (non-empty)
	scraped       int64 // markets seen by scrapes
	changed       int64 // changed writes, disappearances included

	// Written by the handlers and onDrop, on the queue's workers.
	upserted      atomic.Int64
	stale         atomic.Int64
	historyAdded  atomic.Int64
	historyDup    atomic.Int64
	rejected      atomic.Int64
	snapshotRows  atomic.Int64
	droppedWrites atomic.Int64 // writes of dropped market batches
	droppedRows   atomic.Int64 // rows of dropped snapshot batches
}

// scrape takes one scrape of one (event, bookmaker): every market the
// bookmaker's page showed. markets must not be modified afterwards: the
// writes share their memory until they are written.
func (h *host) scrape(ctx context.Context, eventID int64, bookmaker string, markets []marketodds.Market,
	capturedAt time.Time) error {
	if len(markets) == 0 {
		// An empty page is indistinguishable from a failed scrape; given to
		// the classifier, it would report every market of the book gone.
		return nil
	}
	writes := h.classifier.Classify(eventID, bookmaker, markets, capturedAt)
	changed := 0
	for i := range writes {
		if writes[i].Changed {
			changed++
		}
	}
	h.scrapes++
	h.scraped += int64(len(markets))
	h.changed += int64(changed)

	if h.pending == nil {
		h.pending = &marketodds.Batch{Writes: make([]marketodds.Write, 0, h.batchSize+len(writes))}
	}
	h.pending.Writes = append(h.pending.Writes, writes...)
	if h.legacy != nil && changed > 0 {
		if h.pendingLegacy == nil {
			h.pendingLegacy = &legacySnapshotBatch{Snapshots: make([]snapshot, 0, h.batchSize/40+1)}
		}
		h.pendingLegacy.add(snapshot{EventID: eventID, Bookmaker: bookmaker, CapturedAt: capturedAt, Markets: markets})
	}

	if len(h.pending.Writes) >= h.batchSize {
		if err := h.flushMarkets(ctx); err != nil {
			return err
		}
	}
	if h.pendingLegacy != nil && h.pendingLegacy.Rows >= h.batchSize {
		return h.flushLegacy(ctx)
	}
	return nil
}

// flush enqueues the batches being filled.
func (h *host) flush(ctx context.Context) error {
	return errors.Join(h.flushMarkets(ctx), h.flushLegacy(ctx))
}

func (h *host) flushMarkets(ctx context.Context) error {
	b := h.pending
	if b == nil || len(b.Writes) == 0 {
		return nil
	}
	b.RunID, b.Index = h.runID, h.batches
	// Enqueue blocks while the queue is full: the scraper slows down to the
	// writers' pace instead of piling up memory. On an error the batch was
	// not taken and stays pending, for the final flush.
	if err := h.queue.Enqueue(ctx, b); err != nil {
		return err
	}
	h.pending = nil
	h.batches++
	return nil
}

func (h *host) flushLegacy(ctx context.Context) error {
	b := h.pendingLegacy
	if b == nil || len(b.Snapshots) == 0 {
		return nil
	}
	if err := h.queue.Enqueue(ctx, b); err != nil {
		return err
	}
	h.pendingLegacy = nil
	return nil
}

// writeMarkets is the queue's handler for *marketodds.Batch. An error makes
// the queue retry the batch (if marketodds.IsTransient says so) or drop it.
func (h *host) writeMarkets(ctx context.Context, b *marketodds.Batch) error {
	res, err := h.store.WriteMarketBatch(ctx, *b)
	if err != nil {
		return err
	}
	// The batch committed; rejected writes were left out, each with a reason
	// (a *marketodds.ValidationError or *marketodds.RowError). Sending them
	// again would not help: they are logged for whoever feeds the scraper.
	for _, r := range res.Rejected {
		h.logger.LogAttrs(ctx, slog.LevelWarn, "write rejected", slog.Int64("run", b.RunID), slog.Int("batch", b.Index),
			slog.String("market", r.Key.String()), slog.Any("reason", r.Err))
	}
	h.upserted.Add(int64(res.Upserted))
	h.stale.Add(int64(res.Stale))
	h.historyAdded.Add(int64(res.HistoryAdded))
	h.historyDup.Add(int64(res.HistoryDuplicate))
	h.rejected.Add(int64(len(res.Rejected)))
	h.logger.LogAttrs(ctx, slog.LevelDebug, "market batch written", slog.Int("batch", b.Index),
		slog.Int("writes", len(b.Writes)), slog.Int("history_added", res.HistoryAdded),
		slog.Int("rejected", len(res.Rejected)), slog.Duration("elapsed", res.Elapsed))
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

// onDrop is the queue's dead-letter hook: the batch was not written and
// will not be. Its changes must not be lost: the classifier already took
// them for recorded, so it is told to forget them, and the next scrape of
// those markets reports them changed again (or their disappearance again).
// That is the replaced system's lost-history bug, avoided.
func (h *host) onDrop(batch any, err error) {
	switch b := batch.(type) {
	case *marketodds.Batch:
		keys := make([]marketodds.Key, 0, len(b.Writes))
		for i := range b.Writes {
			// Unchanged writes only confirm; a lost confirmation is made up
			// by the next scrape, so forgetting them would only cost history
			// rows that repeat the current data.
			if b.Writes[i].Changed {
				keys = append(keys, b.Writes[i].Key())
			}
		}
		h.classifier.Forget(keys...)
		h.droppedWrites.Add(int64(len(b.Writes)))
		h.logger.Error("market batch dropped; its changes will be sent again by the next scrape",
			"run", b.RunID, "batch", b.Index, "writes", len(b.Writes), "forgotten", len(keys), "err", err)
	case *legacySnapshotBatch:
		// The old design has no way back: those snapshots are gone.
		h.droppedRows.Add(int64(b.Rows))
		h.logger.Error("snapshot batch dropped", "snapshots", len(b.Snapshots), "rows", b.Rows, "err", err)
	default:
		h.logger.Error("batch of unknown type dropped", "type", fmt.Sprintf("%T", batch), "err", err)
	}
}

// waitIdle waits until the queue has handled every batch enqueued so far.
// The scrape loop calls it between cycles, where a real scraper would sleep
// until the next one: the simulated clock jumps the interval instead.
func waitIdle(ctx context.Context, q *writequeue.Queue) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		// Nothing is enqueued meanwhile, so Enqueued is fixed: the others
		// only catch up with it.
		if s := q.Stats(); s.Succeeded+s.Dropped >= s.Enqueued {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
