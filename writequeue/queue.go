package writequeue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Queue is a bounded, asynchronous queue of batches, each handled by the
// handler registered for its Go type. See the package documentation for its
// lifecycle and guarantees. A Queue must be created with New; its methods are
// safe for concurrent use.
type Queue struct {
	cfg *Config

	// handlers maps a batch's dynamic type to its type-erased handler. It is
	// copied on write (under handlersMu), so that Enqueue reads it without a
	// lock.
	handlers   atomic.Pointer[map[reflect.Type]handlerFunc]
	handlersMu sync.Mutex

	// ch holds the queued batches. It is closed, under sendMu's write lock,
	// when the queue stops taking batches; senders hold the read lock, so no
	// send can race with the close.
	ch     chan item
	sendMu sync.RWMutex
	closed bool // guarded by sendMu; ch is closed

	// closing is closed when the queue stops taking batches. It wakes
	// Enqueue calls blocked on a full buffer, so that they release sendMu.
	closing chan struct{}
	// done is closed once every batch has been handled or dropped and every
	// goroutine of the queue has exited.
	done chan struct{}

	stateMu  sync.Mutex
	started  bool                    // guarded by stateMu
	stopping bool                    // guarded by stateMu; closing is closed
	cancel   context.CancelCauseFunc // guarded by stateMu; cancels the run context
	workers  sync.WaitGroup

	enqueued  atomic.Int64
	succeeded atomic.Int64
	dropped   atomic.Int64
	retries   atomic.Int64
	inFlight  atomic.Int64
}

// handlerFunc is a handler with its batch type erased.
type handlerFunc func(ctx context.Context, batch any) error

// item is what travels through the queue's channel, by value: the batch and
// its handler, looked up once by Enqueue.
type item struct {
	batch   any
	handler handlerFunc
}

// Stats is a snapshot of a Queue's counters. Each counter is exact, but they
// are read one after the other, so a snapshot taken while batches move may be
// momentarily inconsistent. Once Close has returned,
// Enqueued == Succeeded + Dropped.
type Stats struct {
	// Enqueued counts the batches accepted by Enqueue and TryEnqueue.
	Enqueued int64
	// Succeeded counts the batches whose handler returned nil.
	Succeeded int64
	// Dropped counts the batches given up on (and passed to OnDrop).
	Dropped int64
	// Retries counts the attempts beyond each batch's first.
	Retries int64
	// Queued is the number of batches in the buffer, waiting for a worker.
	Queued int
	// InFlight is the number of batches taken by a worker: being handled, or
	// waiting to be retried.
	InFlight int
}

// New returns a queue configured by cfg, which may be nil. The queue accepts
// batches at once, but handles them only after Start.
//
// New panics if cfg is invalid (a negative field, or MaxBackoff less than
// BaseBackoff): like a negative size given to make, that is a programming
// error, not a condition to handle at run time. changedetect.New does the
// same. marketodds.NewStore returns an error instead: it checks a database
// handle and values of the deployment (a schema name, partition spans) that
// often come from outside the program.
func New(cfg *Config) *Queue {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	q := &Queue{
		cfg:     cfg,
		ch:      make(chan item, cfg.Buffer),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	q.handlers.Store(&map[reflect.Type]handlerFunc{})
	return q
}

// Handle registers h as the handler of batches of type B: Enqueue routes a
// batch to h when its dynamic type is exactly B (so *T and T are distinct
// types, and B must not be an interface type). A handler that returns nil has
// written the batch; an error makes the queue retry the batch or drop it, see
// Config.Retryable and Permanent. Handlers run concurrently on up to
// Config.Workers goroutines and must honour ctx, which is cancelled on a hard
// stop: when Close runs out of time, or the context given to Start ends.
//
// Handle may be called at any time, also after Start: a batch is routed by
// the handlers registered when it is enqueued.
//
// Handle panics if B already has a handler, if B is an interface type or if
// h is nil; HandleSafely returns those as errors instead.
func Handle[B any](q *Queue, h func(ctx context.Context, batch B) error) {
	if err := HandleSafely(q, h); err != nil {
		panic(err)
	}
}

// HandleSafely is Handle, returning an error instead of panicking.
func HandleSafely[B any](q *Queue, h func(ctx context.Context, batch B) error) error {
	typ := reflect.TypeFor[B]()
	switch {
	case h == nil:
		return fmt.Errorf("writequeue: nil handler for batch type %v", typ)
	case typ.Kind() == reflect.Interface:
		return fmt.Errorf("writequeue: batch type %v is an interface type; batches are routed by their dynamic type, so register a concrete type", typ)
	}
	erased := func(ctx context.Context, batch any) error { return h(ctx, batch.(B)) }

	q.handlersMu.Lock()
	defer q.handlersMu.Unlock()
	old := *q.handlers.Load()
	if _, ok := old[typ]; ok {
		return fmt.Errorf("writequeue: handler for batch type %v is already registered", typ)
	}
	handlers := make(map[reflect.Type]handlerFunc, len(old)+1)
	for t, f := range old {
		handlers[t] = f
	}
	handlers[typ] = erased
	q.handlers.Store(&handlers)
	return nil
}

// Start starts the workers and returns. It is a no-op if the queue has
// already started, and returns ErrClosed once Close has been called, or
// ctx's error if ctx has already ended.
//
// ctx becomes the queue's run context: handlers receive it (or a context
// derived from it), with its values. Cancelling it is a hard stop: running
// attempts see their context cancelled, the queue stops taking batches as if
// Close had been called, and every batch not yet written is dropped with an
// error wrapping ErrClosed. For a graceful stop call Close instead, and keep
// ctx alive until Close returns. Call Close in either case: it waits for the
// workers to exit.
func (q *Queue) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.stateMu.Lock()
	defer q.stateMu.Unlock()
	switch {
	case q.stopping:
		return ErrClosed
	case q.started:
		return nil
	}
	q.started = true

	runCtx, cancel := context.WithCancelCause(ctx)
	q.cancel = cancel
	q.workers.Add(q.cfg.Workers)
	for range q.cfg.Workers {
		go q.work(runCtx)
	}
	go q.supervise(runCtx, cancel)
	return nil
}

// Enqueue adds batch to the queue. It blocks while the buffer is full, until
// there is room or ctx ends; ctx bounds only that wait, and its values do
// not reach the handler. It returns ErrNoHandler if no handler is registered
// for batch's dynamic type, ErrClosed once the queue stops taking batches,
// and ctx's error if ctx ended first. Unless it returns nil, the batch was
// not queued, and remains the caller's responsibility.
//
// Enqueue does not allocate: pass batches as pointers (or other
// pointer-shaped values), so that boxing them in an interface does not
// allocate either.
func (q *Queue) Enqueue(ctx context.Context, batch any) error { return q.send(ctx, batch, true) }

// TryEnqueue is Enqueue without the wait: it returns ErrFull if the buffer is
// full.
func (q *Queue) TryEnqueue(batch any) error { return q.send(context.Background(), batch, false) }

// send queues batch, waiting for room (until ctx ends) if wait is set.
func (q *Queue) send(ctx context.Context, batch any, wait bool) error {
	it, err := q.item(batch)
	if err != nil {
		return err
	}
	q.sendMu.RLock()
	defer q.sendMu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select { // fast path, without touching ctx
	case q.ch <- it:
		q.enqueued.Add(1)
		return nil
	default:
	}
	if !wait {
		return ErrFull
	}
	select {
	case q.ch <- it:
		q.enqueued.Add(1)
		return nil
	case <-q.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *Queue) item(batch any) (item, error) {
	h := (*q.handlers.Load())[reflect.TypeOf(batch)]
	if h == nil {
		return item{}, fmt.Errorf("%w %T", ErrNoHandler, batch)
	}
	return item{batch: batch, handler: h}, nil
}

// Close stops the queue from taking batches (Enqueue and TryEnqueue return
// ErrClosed from then on, including calls blocked on a full buffer), waits
// until every batch already queued has been handled, retries included, and
// returns nil.
//
// If ctx ends first, Close cancels the context of running attempts and of
// retry waits, drops every batch not yet written with an error wrapping
// ErrClosed, waits for the workers to exit and returns ctx's error. A
// handler that ignores its context delays Close until it returns: Close
// never returns while a worker still runs.
//
// Close must not be called from a handler or from OnDrop, which it would
// wait for. Close is idempotent, and safe to call concurrently. On a queue that was
// never started it does not start one: it drops every buffered batch with
// an error wrapping ErrClosed, and Start fails with ErrClosed afterwards.
func (q *Queue) Close(ctx context.Context) error {
	first := q.stopTaking()

	q.stateMu.Lock()
	started, cancel := q.started, q.cancel
	q.stateMu.Unlock()

	if !started && first {
		// No worker will ever read ch: drop what it holds here.
		for it := range q.ch {
			q.drop(context.WithoutCancel(ctx), it.batch, &DropError{Err: fmt.Errorf("%w before Start", ErrClosed)})
		}
		close(q.done)
	}

	select {
	case <-q.done:
		return nil
	default:
	}
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
	}
	if cancel != nil {
		cancel(fmt.Errorf("%w: Close ran out of time: %w", ErrClosed, context.Cause(ctx)))
		<-q.done
	}
	return ctx.Err()
}

// stopTaking stops the queue from taking batches: Enqueue fails from now on,
// and ch is closed so that workers exit once they have emptied it. It
// reports whether this call made the change.
func (q *Queue) stopTaking() bool {
	q.stateMu.Lock()
	if q.stopping {
		q.stateMu.Unlock()
		return false
	}
	q.stopping = true
	close(q.closing) // wakes blocked senders, which then release sendMu
	q.stateMu.Unlock()

	q.sendMu.Lock()
	q.closed = true
	close(q.ch)
	q.sendMu.Unlock()
	return true
}

// Stats returns a snapshot of the queue's counters.
func (q *Queue) Stats() Stats {
	return Stats{
		Enqueued:  q.enqueued.Load(),
		Succeeded: q.succeeded.Load(),
		Dropped:   q.dropped.Load(),
		Retries:   q.retries.Load(),
		Queued:    len(q.ch),
		InFlight:  int(q.inFlight.Load()),
	}
}

// supervise turns the end of the run context into a hard stop, and closes
// done once the workers have exited.
func (q *Queue) supervise(ctx context.Context, cancel context.CancelCauseFunc) {
	select {
	case <-ctx.Done():
		q.stopTaking()
	case <-q.closing:
	}
	q.workers.Wait()
	cancel(ErrClosed) // release the run context's resources
	close(q.done)
}

// work handles batches until ch is closed and empty. Once ctx has ended it
// drops, rather than handles, what is left.
func (q *Queue) work(ctx context.Context) {
	defer q.workers.Done()
	for it := range q.ch {
		q.process(ctx, it)
	}
}

// process takes one batch to success or to OnDrop.
func (q *Queue) process(ctx context.Context, it item) {
	q.inFlight.Add(1)
	defer q.inFlight.Add(-1)

	done := ctx.Done()
	var lastErr error
	for attempt := 1; ; attempt++ {
		select {
		case <-done:
			q.drop(ctx, it.batch, &DropError{Attempts: attempt - 1, Err: stoppedError(ctx, lastErr)})
			return
		default:
		}
		if attempt > 1 {
			q.retries.Add(1)
		}
		err := q.attempt(ctx, it)
		if err == nil {
			q.succeeded.Add(1)
			return
		}
		lastErr = err

		select {
		case <-done:
			// The failure may well be the cancellation itself.
			q.drop(ctx, it.batch, &DropError{Attempts: attempt, Err: stoppedError(ctx, lastErr)})
			return
		default:
		}
		if IsPermanent(err) || !q.cfg.Retryable(err) || attempt >= q.cfg.MaxAttempts {
			q.drop(ctx, it.batch, &DropError{Attempts: attempt, Err: err})
			return
		}

		wait := backoff(attempt, q.cfg.BaseBackoff, q.cfg.MaxBackoff)
		q.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "writequeue: batch failed, will retry",
			slog.String("batch_type", fmt.Sprintf("%T", it.batch)),
			slog.Int("attempt", attempt),
			slog.Int("max_attempts", q.cfg.MaxAttempts),
			slog.Duration("backoff", wait),
			slog.Any("err", err),
		)
		if !sleepCtx(ctx, wait) {
			q.drop(ctx, it.batch, &DropError{Attempts: attempt, Err: stoppedError(ctx, lastErr)})
			return
		}
	}
}

// attempt calls the batch's handler once, turning a panic into a permanent
// error.
func (q *Queue) attempt(ctx context.Context, it item) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(&PanicError{Value: r, Where: panicSite(), Stack: debug.Stack()})
		}
	}()
	return it.handler(ctx, it.batch)
}

// panicSite returns where the panic being recovered was raised, as
// PanicError.Where: the first frame below the runtime's panic machinery that
// is not in the runtime (a nil map write panics in runtime.mapassign, called
// from the handler). It must be called by the deferred function that
// recovers.
func panicSite() string {
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			// Function is the full import path: keep its last element.
			fn := f.Function[strings.LastIndexByte(f.Function, '/')+1:]
			return fmt.Sprintf("%s (%s:%d)", fn, filepath.Base(f.File), f.Line)
		}
		if !more {
			return ""
		}
	}
}

// drop counts, logs and reports a batch the queue gives up on.
func (q *Queue) drop(ctx context.Context, batch any, err *DropError) {
	q.dropped.Add(1)
	attrs := []slog.Attr{
		slog.String("batch_type", fmt.Sprintf("%T", batch)),
		slog.Int("attempts", err.Attempts),
		slog.Any("err", err.Err),
	}
	var pe *PanicError
	if errors.As(err.Err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
	}
	q.cfg.Logger.LogAttrs(ctx, slog.LevelError, "writequeue: batch dropped", attrs...)
	if q.cfg.OnDrop == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			q.cfg.Logger.LogAttrs(ctx, slog.LevelError, "writequeue: OnDrop panicked",
				slog.String("batch_type", fmt.Sprintf("%T", batch)),
				slog.Any("panic", r),
				slog.String("stack", string(debug.Stack())),
			)
		}
	}()
	q.cfg.OnDrop(batch, err)
}

// stoppedError is the reason given for a batch dropped because the run
// context ended. It wraps ErrClosed, the context's cause and the last
// attempt's error, if any.
func stoppedError(ctx context.Context, lastErr error) error {
	err := context.Cause(ctx)
	if !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: run context ended: %w", ErrClosed, err)
	}
	if lastErr != nil {
		err = fmt.Errorf("%w; last attempt: %w", err, lastErr)
	}
	return err
}

// backoff returns the wait before the retry that follows the given attempt:
// uniform in [0, min(maxWait, base*2^(attempt-1))], the "full jitter" of
// https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
func backoff(attempt int, base, maxWait time.Duration) time.Duration {
	return time.Duration(rand.Uint64N(uint64(backoffCeil(attempt, base, maxWait)) + 1))
}

// backoffCeil is the upper bound of backoff's wait, without overflow.
func backoffCeil(attempt int, base, maxWait time.Duration) time.Duration {
	shift := attempt - 1
	if shift >= 62 || base > maxWait>>shift {
		return maxWait
	}
	return min(base<<shift, maxWait)
}

// sleepCtx sleeps for d and reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
