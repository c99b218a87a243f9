// Package feed is the examples' wiring of oddsledger, as a host application
// wires its scraper to it, and all of it:
//
//	scrape -> changedetect.Classifier.Classify -> writes of many scrapes in one *marketodds.Batch
//	       -> writequeue.Queue.Enqueue -> handler: marketodds.Store.WriteMarketBatch
//	          (retried when marketodds.IsTransient; a dropped batch's changes are Forgotten
//	          by the classifier, so that the next scrape sends them again)
//
// examples/scraper and examples/oddsboard both feed their store through it.
// It also keeps the metrics of the store's write calls, which it gets from
// marketodds.Config.OnBatch (metrics.go: NewStore installs the hook), and
// holds what both do to get a database (db.go).
package feed

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

// Config configures a Feed.
type Config struct {
	// Store receives the writes. Required.
	Store *marketodds.Store
	// Metrics are the metrics NewStore installed in Store's OnBatch, for
	// Stats to report. Nil: Stats reports no write calls.
	Metrics *WriteMetrics
	// Logger receives rejected writes (Warn), dropped batches (Error) and
	// written batches (Debug); the queue logs its retries to it too.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// BatchSize is the number of writes per batch: the writes of many
	// scrapes go in one batch. Defaults to 5000.
	BatchSize int
	// RunID identifies the run in the logs (marketodds.Batch.RunID).
	RunID int64
	// Queue configures the write queue. Retryable, OnDrop and a nil Logger
	// are set by New; the rest (Workers, backoff, ...) is kept. Nil means
	// the defaults.
	Queue *writequeue.Config
	// OnDropOther is called with the batches of other types than
	// *marketodds.Batch that the queue gave up on: a host that routes more
	// batch types through the queue (see Feed.Queue) handles their drops
	// there. Nil: they are only logged.
	OnDropOther func(batch any, err error)
	// Intercept, when set, is the queue's handler for *marketodds.Batch in
	// place of WriteMarkets, which it is given: tests inject failures with
	// it.
	Intercept func(ctx context.Context, b *marketodds.Batch,
		write func(context.Context, *marketodds.Batch) error) error
}

// Feed is a classifier, a write queue and the store they write to.
//
// Scrape, Flush and Close are the producer's side and must be called from
// one goroutine (the scrape loop); Stats may be called from any.
type Feed struct {
	// Classifier decides per market whether it changed since the last
	// scrape. The host calls ForgetEvent when an event is over.
	Classifier *changedetect.Classifier
	// Queue carries the batches to the store. A host may register handlers
	// for batch types of its own (writequeue.Handle) before Start.
	Queue *writequeue.Queue

	store       *marketodds.Store
	metrics     *WriteMetrics
	logger      *slog.Logger
	batchSize   int
	runID       int64
	onDropOther func(batch any, err error)

	// Producer side.
	pending *marketodds.Batch
	batches int

	// Read by Stats from any goroutine.
	scrapes       atomic.Int64
	scraped       atomic.Int64
	changed       atomic.Int64
	writes        atomic.Int64
	upserted      atomic.Int64
	stale         atomic.Int64
	historyAdded  atomic.Int64
	historyDup    atomic.Int64
	rejected      atomic.Int64
	droppedWrites atomic.Int64
}

// New wires a feed: the classifier, and the queue with its handler for
// *marketodds.Batch. Call Start to have it write.
func New(cfg Config) *Feed {
	if cfg.Store == nil {
		panic("feed: Config.Store is nil")
	}
	f := &Feed{
		Classifier:  changedetect.New(nil),
		store:       cfg.Store,
		metrics:     cfg.Metrics,
		logger:      cfg.Logger,
		batchSize:   cfg.BatchSize,
		runID:       cfg.RunID,
		onDropOther: cfg.OnDropOther,
	}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	if f.batchSize <= 0 {
		f.batchSize = 5000
	}
	var qc writequeue.Config
	if cfg.Queue != nil {
		qc = *cfg.Queue
	}
	qc.Retryable = marketodds.IsTransient
	qc.OnDrop = f.onDrop
	if qc.Logger == nil {
		qc.Logger = f.logger
	}
	f.Queue = writequeue.New(&qc)
	handler := f.WriteMarkets
	if cfg.Intercept != nil {
		handler = func(ctx context.Context, b *marketodds.Batch) error { return cfg.Intercept(ctx, b, f.WriteMarkets) }
	}
	writequeue.Handle(f.Queue, handler)
	return f
}

// Store is the store the feed writes to.
func (f *Feed) Store() *marketodds.Store { return f.store }

// Start starts the queue's workers. ctx is the queue's run context: its
// cancellation is a hard stop, while Close drains; a host that wants a
// Ctrl-C to drain passes a context.WithoutCancel.
func (f *Feed) Start(ctx context.Context) error { return f.Queue.Start(ctx) }

// Warm loads the classifier's state from market_odds_current (rows
// confirmed at or after since), so that the first scrape after a restart
// does not report every market changed.
func (f *Feed) Warm(ctx context.Context, since time.Time) (int, error) {
	return f.Classifier.Warm(ctx, f.store, since)
}

// Scrape takes one scrape of one (event, bookmaker): every market the
// bookmaker's page showed, captured at capturedAt. It returns how many of
// them changed (disappearances included). markets must not be modified
// afterwards: the writes share their memory until they are written.
//
// It has the shape of sim.ScrapeFunc, less the count.
func (f *Feed) Scrape(ctx context.Context, eventID int64, bookmaker string, markets []marketodds.Market,
	capturedAt time.Time) (changed int, err error) {
	if len(markets) == 0 {
		// An empty page is indistinguishable from a failed scrape; given to
		// the classifier, it would report every market of the book gone.
		return 0, nil
	}
	writes := f.Classifier.Classify(eventID, bookmaker, markets, capturedAt)
	for i := range writes {
		if writes[i].Changed {
			changed++
		}
	}
	f.scrapes.Add(1)
	f.scraped.Add(int64(len(markets)))
	f.changed.Add(int64(changed))
	f.writes.Add(int64(len(writes)))

	if f.pending == nil {
		f.pending = &marketodds.Batch{Writes: make([]marketodds.Write, 0, f.batchSize+len(writes))}
	}
	f.pending.Writes = append(f.pending.Writes, writes...)
	if len(f.pending.Writes) >= f.batchSize {
		return changed, f.Flush(ctx)
	}
	return changed, nil
}

// Flush enqueues the batch being filled.
func (f *Feed) Flush(ctx context.Context) error {
	b := f.pending
	if b == nil || len(b.Writes) == 0 {
		return nil
	}
	b.RunID, b.Index = f.runID, f.batches
	// Enqueue blocks while the queue is full: the scraper slows down to the
	// writers' pace instead of piling up memory. On an error the batch was
	// not taken and stays pending, for the final flush.
	if err := f.Queue.Enqueue(ctx, b); err != nil {
		return err
	}
	f.pending = nil
	f.batches++
	return nil
}

// WaitIdle waits until the queue has handled every batch enqueued so far.
// A scrape loop calls it between cycles, where a real scraper would sleep
// until the next one: everything scraped so far is then written (or
// dropped), and readers see whole cycles.
func (f *Feed) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		// Nothing is enqueued meanwhile (the producer is waiting here), so
		// Enqueued is fixed: the others only catch up with it.
		if s := f.Queue.Stats(); s.Succeeded+s.Dropped >= s.Enqueued {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close flushes the pending batch and drains the queue, for at most
// drain. It is safe to call more than once.
func (f *Feed) Close(ctx context.Context, drain time.Duration) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if err := f.Flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("final batch not queued: %w", err))
	}
	cctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	if err := f.Queue.Close(cctx); err != nil {
		errs = append(errs, fmt.Errorf("drain the write queue: %w", err))
	}
	return errors.Join(errs...)
}

// WriteMarkets is the queue's handler for *marketodds.Batch. An error makes
// the queue retry the batch (if marketodds.IsTransient says so) or drop it.
func (f *Feed) WriteMarkets(ctx context.Context, b *marketodds.Batch) error {
	res, err := f.store.WriteMarketBatch(ctx, *b)
	if err != nil {
		return err
	}
	// The batch committed; rejected writes were left out, each with a reason
	// (a *marketodds.ValidationError or *marketodds.RowError). Sending them
	// again would not help: they are logged for whoever feeds the scraper.
	for _, r := range res.Rejected {
		f.logger.LogAttrs(ctx, slog.LevelWarn, "write rejected", slog.Int64("run", b.RunID), slog.Int("batch", b.Index),
			slog.String("market", r.Key.String()), slog.Any("reason", r.Err))
	}
	f.upserted.Add(int64(res.Upserted))
	f.stale.Add(int64(res.Stale))
	f.historyAdded.Add(int64(res.HistoryAdded))
	f.historyDup.Add(int64(res.HistoryDuplicate))
	f.rejected.Add(int64(len(res.Rejected)))
	f.logger.LogAttrs(ctx, slog.LevelDebug, "market batch written", slog.Int("batch", b.Index),
		slog.Int("writes", len(b.Writes)), slog.Int("history_added", res.HistoryAdded),
		slog.Int("rejected", len(res.Rejected)), slog.Duration("elapsed", res.Elapsed))
	return nil
}

// onDrop is the queue's dead-letter hook: the batch was not written and
// will not be. Its changes must not be lost: the classifier already took
// them for recorded, so it is told to forget them, and the next scrape of
// those markets reports them changed again (or their disappearance again).
func (f *Feed) onDrop(batch any, err error) {
	b, ok := batch.(*marketodds.Batch)
	if !ok {
		if f.onDropOther != nil {
			f.onDropOther(batch, err)
			return
		}
		f.logger.Error("batch of unknown type dropped", "type", fmt.Sprintf("%T", batch), "err", err)
		return
	}
	keys := make([]marketodds.Key, 0, len(b.Writes))
	for i := range b.Writes {
		// Unchanged writes only confirm; a lost confirmation is made up by
		// the next scrape, so forgetting them would only cost history rows
		// that repeat the current data.
		if b.Writes[i].Changed {
			keys = append(keys, b.Writes[i].Key())
		}
	}
	f.Classifier.Forget(keys...)
	f.droppedWrites.Add(int64(len(b.Writes)))
	f.logger.Error("market batch dropped; its changes will be sent again by the next scrape",
		"run", b.RunID, "batch", b.Index, "writes", len(b.Writes), "forgotten", len(keys), "err", err)
}

// Stats are a feed's counters.
type Stats struct {
	// The producer's: scrapes taken (non-empty), markets they held, changed
	// writes among them (disappearances included), writes sent.
	Scrapes, Scraped, Changed, Writes int64
	// The handler's: what WriteMarketBatch reported, summed.
	Upserted, Stale, HistoryAdded, HistoryDuplicate, Rejected int64
	// DroppedWrites counts the writes of the batches the queue gave up on.
	DroppedWrites int64
	Queue         writequeue.Stats
	// Batches are the store's write calls as its OnBatch hook reported
	// them (Config.Metrics): count, errors, sizes, duration histogram.
	Batches BatchStats
}

// Stats returns the counters. Each is exact; read while batches move, they
// may be momentarily inconsistent with each other.
func (f *Feed) Stats() Stats {
	return Stats{
		Scrapes: f.scrapes.Load(), Scraped: f.scraped.Load(), Changed: f.changed.Load(), Writes: f.writes.Load(),
		Upserted: f.upserted.Load(), Stale: f.stale.Load(), HistoryAdded: f.historyAdded.Load(),
		HistoryDuplicate: f.historyDup.Load(), Rejected: f.rejected.Load(), DroppedWrites: f.droppedWrites.Load(),
		Queue: f.Queue.Stats(), Batches: f.metrics.Stats(),
	}
}
