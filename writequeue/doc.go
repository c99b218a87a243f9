// Package writequeue is an in-process, bounded, asynchronous queue of
// batches. It takes batches from producers (scrapers, say), hands each one to
// the handler registered for its Go type, retries transient failures with
// backoff, and never loses a batch silently.
//
// The package knows nothing of databases: a handler is any
// func(context.Context, B) error. A host that writes odds registers, for
// instance, a handler for *marketodds.Batch that calls
// Store.WriteMarketBatch, and sets Config.Retryable to marketodds.IsTransient.
//
// # Lifecycle
//
//	q := writequeue.New(&writequeue.Config{OnDrop: deadLetter})  // 1. create
//	writequeue.Handle(q, writeOdds)                              // 2. register a handler per batch type
//	if err := q.Start(ctx); err != nil { ... }                   // 3. start the workers
//	err := q.Enqueue(ctx, batch)                                 // 4. enqueue, from any goroutine
//	err = q.Close(shutdownCtx)                                   // 5. stop taking, drain, wait
//
// Batches may be enqueued before Start: they wait in the buffer. Handlers may
// be registered at any time; a batch is routed when it is enqueued, by its
// dynamic type, and Enqueue fails with ErrNoHandler for a type without one.
//
// Enqueue blocks while the buffer (Config.Buffer batches) is full, which
// slows producers down to the pace of the writers; TryEnqueue fails with
// ErrFull instead.
//
// Close stops the queue from taking batches and waits until every queued
// batch has been handled. If its context ends first, it cancels the running
// attempts and drops the rest. Cancelling the context given to Start is a
// hard stop. Either way, Close returns only after every goroutine of the
// queue has exited.
//
// # Failures
//
// A handler's error is retried, up to Config.MaxAttempts attempts in all,
// with exponential backoff and full jitter between attempts, unless it is
// marked with Permanent or Config.Retryable rejects it. A handler that
// panics is recovered, and the panic (with its stack) is a permanent
// failure; the worker goes on with the next batch.
//
// # No batch is lost silently
//
// Every batch that Enqueue or TryEnqueue accepted (returned nil for) ends in
// exactly one of two ways: its handler returned nil, or it was passed to
// Config.OnDrop, once, with a *DropError saying why (and logged at Error).
// That includes batches still queued, or between attempts, when the queue
// stops. After Close returns, Stats().Enqueued == Succeeded + Dropped.
// A batch that Enqueue did not accept remains the caller's.
//
// "Handled" means handled at least once, not exactly once: a handler whose
// write committed but whose acknowledgement was lost (a dropped connection
// during commit) fails and is retried, so handlers must be idempotent.
//
// # Cost
//
// Enqueue does not allocate for pointer-shaped batches (*T), and taking a
// batch through the queue to a no-op handler costs about 200ns on a 2-core
// machine (BenchmarkEnqueueDispatch): negligible next to a database write.
package writequeue
