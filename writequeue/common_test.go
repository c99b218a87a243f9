package writequeue

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Batch types of the tests. Handlers are registered for the pointer types.
type (
	batchA struct{ id int }
	batchB struct{ id int }
)

var errTransient = errors.New("transient failure")

// discard is a logger for tests that do not look at the logs.
var discard = slog.New(slog.DiscardHandler)

// dropLog records what OnDrop receives.
type dropLog struct {
	t    testing.TB
	mu   sync.Mutex
	list []dropped
}

type dropped struct {
	batch any
	err   *DropError
}

func newDropLog(t testing.TB) *dropLog { return &dropLog{t: t} }

func (d *dropLog) onDrop(batch any, err error) {
	de, ok := err.(*DropError)
	if !ok {
		d.t.Errorf("OnDrop got %T (%v), want *DropError", err, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, dropped{batch: batch, err: de})
}

func (d *dropLog) get() []dropped {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.list)
}

// callLog records the ids a handler was called with.
type callLog struct {
	mu  sync.Mutex
	ids []int
}

func (c *callLog) add(id int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	return len(c.ids)
}

func (c *callLog) get() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// testBundle is a queue under test, with what the tests look at.
type testBundle struct {
	t     testing.TB
	q     *Queue
	drops *dropLog // what OnDrop got, unless the test set its own OnDrop
}

// setup returns a queue configured by cfg (nil: all defaults), whose OnDrop
// records into bundle.drops and whose Logger discards, unless cfg sets them.
// It registers no handler and does not start the queue. Inside a
// synctest.Test bubble, pass the bubble's t.
func setup(t testing.TB, cfg *Config) *testBundle {
	t.Helper()
	var c Config
	if cfg != nil {
		c = *cfg
	}
	bundle := &testBundle{t: t, drops: newDropLog(t)}
	if c.OnDrop == nil {
		c.OnDrop = bundle.drops.onDrop
	}
	if c.Logger == nil {
		c.Logger = discard
	}
	bundle.q = New(&c)
	return bundle
}

// start starts the queue with the test's context.
func (b *testBundle) start() {
	b.t.Helper()
	if err := b.q.Start(b.t.Context()); err != nil {
		b.t.Fatal(err)
	}
}

// enqueue enqueues the batches, in order, and fails the test if Enqueue
// refuses one.
func (b *testBundle) enqueue(batches ...any) {
	b.t.Helper()
	for _, batch := range batches {
		if err := b.q.Enqueue(b.t.Context(), batch); err != nil {
			b.t.Fatal(err)
		}
	}
}

// close closes the queue, and fails the test unless Close returns nil.
func (b *testBundle) close() {
	b.t.Helper()
	if err := b.q.Close(b.t.Context()); err != nil {
		b.t.Fatal(err)
	}
}

// requireSettled checks the queue's loss-free invariant, for a queue that has
// been closed.
func requireSettled(t testing.TB, q *Queue) Stats {
	t.Helper()
	s := q.Stats()
	if s.Enqueued != s.Succeeded+s.Dropped || s.Queued != 0 || s.InFlight != 0 {
		t.Fatalf("after Close: %+v, want Enqueued == Succeeded + Dropped and nothing queued or in flight", s)
	}
	return s
}
