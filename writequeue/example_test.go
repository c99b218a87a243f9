package writequeue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/oddsledger/oddsledger/writequeue"
)

// OddsBatch and ResultBatch stand for two kinds of writes a host queues.
type (
	OddsBatch   struct{ Event string }
	ResultBatch struct{ Event, Score string }
)

// A queue routes each batch to the handler registered for its type.
func Example() {
	ctx := context.Background()

	q := writequeue.New(&writequeue.Config{
		Workers: 1, // one worker handles batches in order, for a stable output
		Logger:  slog.New(slog.DiscardHandler),
	})
	writequeue.Handle(q, func(ctx context.Context, b *OddsBatch) error {
		fmt.Println("odds for", b.Event)
		return nil
	})
	writequeue.Handle(q, func(ctx context.Context, b *ResultBatch) error {
		fmt.Println("result of", b.Event+":", b.Score)
		return nil
	})
	// A batch of a type with no handler is refused at once, nothing queued.
	// (Before Start, so that this line prints before the handlers' lines.)
	if err := q.Enqueue(ctx, "not a batch"); errors.Is(err, writequeue.ErrNoHandler) {
		fmt.Println("rejected:", err)
	}
	if err := q.Start(ctx); err != nil {
		panic(err)
	}

	for _, batch := range []any{
		&OddsBatch{Event: "Arsenal v Chelsea"},
		&ResultBatch{Event: "Arsenal v Chelsea", Score: "2-1"},
		&OddsBatch{Event: "Lazio v Roma"},
	} {
		if err := q.Enqueue(ctx, batch); err != nil {
			panic(err)
		}
	}
	if err := q.Close(ctx); err != nil {
		panic(err)
	}
	s := q.Stats()
	fmt.Printf("enqueued %d, succeeded %d, dropped %d\n", s.Enqueued, s.Succeeded, s.Dropped)

	// Output:
	// rejected: writequeue: no handler for batch type string
	// odds for Arsenal v Chelsea
	// result of Arsenal v Chelsea: 2-1
	// odds for Lazio v Roma
	// enqueued 3, succeeded 3, dropped 0
}

// A handler marks a failure that retrying cannot fix with Permanent; the
// queue then hands the batch to OnDrop at once.
func ExamplePermanent() {
	ctx := context.Background()
	errInvalid := errors.New("odds must be > 1")

	q := writequeue.New(&writequeue.Config{
		OnDrop: func(batch any, err error) {
			var drop *writequeue.DropError
			errors.As(err, &drop)
			fmt.Printf("dead letter: %s after %d attempt(s), invalid: %v\n",
				batch.(*OddsBatch).Event, drop.Attempts, errors.Is(err, errInvalid))
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	writequeue.Handle(q, func(ctx context.Context, b *OddsBatch) error {
		return writequeue.Permanent(fmt.Errorf("event %s: %w", b.Event, errInvalid))
	})
	if err := q.Start(ctx); err != nil {
		panic(err)
	}
	if err := q.Enqueue(ctx, &OddsBatch{Event: "Lazio v Roma"}); err != nil {
		panic(err)
	}
	if err := q.Close(ctx); err != nil {
		panic(err)
	}

	// Output:
	// dead letter: Lazio v Roma after 1 attempt(s), invalid: true
}
