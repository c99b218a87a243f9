package writequeue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHandleSafely(t *testing.T) {
	t.Parallel()
	q := setup(t, nil).q
	noop := func(context.Context, *batchA) error { return nil }

	if err := HandleSafely(q, noop); err != nil {
		t.Fatalf("first registration: %v", err)
	}
	if err := HandleSafely(q, noop); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("second registration for *batchA: err = %v, want already registered", err)
	}
	// The value type is a different type from the pointer type.
	if err := HandleSafely(q, func(context.Context, batchA) error { return nil }); err != nil {
		t.Errorf("registration for batchA next to *batchA: %v", err)
	}
	if err := HandleSafely(q, func(context.Context, any) error { return nil }); err == nil || !strings.Contains(err.Error(), "interface") {
		t.Errorf("registration for any: err = %v, want an interface type error", err)
	}
	if err := HandleSafely(q, func(context.Context, fmt.Stringer) error { return nil }); err == nil {
		t.Error("registration for fmt.Stringer: err = nil, want an interface type error")
	}
	if err := HandleSafely[*batchB](q, nil); err == nil {
		t.Error("nil handler: err = nil, want an error")
	}
}

func TestHandlePanicsOnDuplicate(t *testing.T) {
	t.Parallel()
	q := setup(t, nil).q
	Handle(q, func(context.Context, *batchA) error { return nil })
	defer func() {
		err, _ := recover().(error)
		if err == nil || !strings.Contains(err.Error(), "*writequeue.batchA") {
			t.Errorf("recovered %v, want an error naming *writequeue.batchA", err)
		}
	}()
	Handle(q, func(context.Context, *batchA) error { return nil })
	t.Error("second Handle for *batchA did not panic")
}

func TestEnqueueNoHandler(t *testing.T) {
	t.Parallel()
	bundle := setup(t, nil)
	q := bundle.q
	Handle(q, func(context.Context, *batchA) error { return nil })

	for _, batch := range []any{batchA{}, &batchB{}, nil, 42} {
		if err := q.Enqueue(t.Context(), batch); !errors.Is(err, ErrNoHandler) {
			t.Errorf("Enqueue(%T) = %v, want ErrNoHandler", batch, err)
		}
		if err := q.TryEnqueue(batch); !errors.Is(err, ErrNoHandler) {
			t.Errorf("TryEnqueue(%T) = %v, want ErrNoHandler", batch, err)
		}
	}
	if err := q.Enqueue(t.Context(), &batchB{}); err == nil || !strings.Contains(err.Error(), "*writequeue.batchB") {
		t.Errorf("error %q does not name the batch type", err)
	}
	if s := q.Stats(); s != (Stats{}) {
		t.Errorf("Stats = %+v, want nothing queued", s)
	}
	bundle.close()
}

func TestRoutesByType(t *testing.T) {
	t.Parallel()
	var gotA, gotB callLog
	bundle := setup(t, &Config{Workers: 3, Buffer: 8})
	Handle(bundle.q, func(_ context.Context, b *batchA) error { gotA.add(b.id); return nil })
	Handle(bundle.q, func(_ context.Context, b *batchB) error { gotB.add(b.id); return nil })
	bundle.start()

	var wantA, wantB []int
	for i := range 100 {
		var batch any = &batchA{id: i}
		if i%3 == 0 {
			batch = &batchB{id: i}
			wantB = append(wantB, i)
		} else {
			wantA = append(wantA, i)
		}
		bundle.enqueue(batch)
	}
	bundle.close()

	for _, c := range []struct {
		name      string
		got, want []int
	}{{"*batchA", gotA.get(), wantA}, {"*batchB", gotB.get(), wantB}} {
		slices.Sort(c.got)
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("handler for %s got (-want +got):\n%s", c.name, diff)
		}
	}
	if s := requireSettled(t, bundle.q); s.Succeeded != 100 {
		t.Errorf("Stats = %+v, want 100 succeeded", s)
	}
}

func TestHandleAfterStart(t *testing.T) {
	t.Parallel()
	var got callLog
	bundle := setup(t, nil)
	bundle.start()
	if err := bundle.q.Enqueue(t.Context(), &batchB{id: 1}); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("Enqueue before Handle = %v, want ErrNoHandler", err)
	}
	Handle(bundle.q, func(_ context.Context, b *batchB) error { got.add(b.id); return nil })
	bundle.enqueue(&batchB{id: 2})
	bundle.close()
	if diff := cmp.Diff([]int{2}, got.get()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

func TestEnqueueBeforeStart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var got callLog
		bundle := setup(t, &Config{Workers: 1})
		Handle(bundle.q, func(_ context.Context, b *batchA) error { got.add(b.id); return nil })
		bundle.enqueue(&batchA{id: 0}, &batchA{id: 1}, &batchA{id: 2})
		synctest.Wait()
		if s := bundle.q.Stats(); s.Queued != 3 || len(got.get()) != 0 {
			t.Fatalf("before Start: Stats = %+v, handled %v; want 3 queued, none handled", s, got.get())
		}

		bundle.start()
		bundle.close()
		if diff := cmp.Diff([]int{0, 1, 2}, got.get()); diff != "" {
			t.Errorf("handled (-want +got):\n%s", diff)
		}
		requireSettled(t, bundle.q)
	})
}

func TestTransientErrorRetried(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var attempts []time.Time
		bundle := setup(t, &Config{MaxAttempts: 5, BaseBackoff: time.Second, MaxBackoff: 4 * time.Second})
		Handle(bundle.q, func(context.Context, *batchA) error {
			attempts = append(attempts, time.Now())
			if len(attempts) < 4 {
				return fmt.Errorf("writing: %w", errTransient)
			}
			return nil
		})
		bundle.start()
		bundle.enqueue(&batchA{})
		bundle.close()

		if len(attempts) != 4 {
			t.Fatalf("%d attempts, want 4", len(attempts))
		}
		// The wait before retry n is at most min(MaxBackoff, BaseBackoff*2^(n-1)).
		for i, ceil := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			if gap := attempts[i+1].Sub(attempts[i]); gap < 0 || gap > ceil {
				t.Errorf("wait before retry %d = %v, want within [0, %v]", i+1, gap, ceil)
			}
		}
		if s := requireSettled(t, bundle.q); s.Succeeded != 1 || s.Retries != 3 || s.Dropped != 0 {
			t.Errorf("Stats = %+v, want 1 succeeded after 3 retries", s)
		}
		if d := bundle.drops.get(); len(d) != 0 {
			t.Errorf("OnDrop called %d times, want 0", len(d))
		}
	})
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var attempts atomic.Int32
		bundle := setup(t, &Config{MaxAttempts: 3})
		Handle(bundle.q, func(context.Context, *batchA) error {
			attempts.Add(1)
			return fmt.Errorf("writing: %w", errTransient)
		})
		bundle.start()
		batch := &batchA{id: 7}
		bundle.enqueue(batch)
		bundle.close()

		if n := attempts.Load(); n != 3 {
			t.Errorf("%d attempts, want 3", n)
		}
		d := bundle.drops.get()
		if len(d) != 1 {
			t.Fatalf("OnDrop called %d times, want 1", len(d))
		}
		if d[0].batch != batch || d[0].err.Attempts != 3 || !errors.Is(d[0].err, errTransient) || errors.Is(d[0].err, ErrClosed) {
			t.Errorf("OnDrop(%v, %v), want the batch, 3 attempts and errTransient", d[0].batch, d[0].err)
		}
		if s := requireSettled(t, bundle.q); s.Dropped != 1 || s.Retries != 2 {
			t.Errorf("Stats = %+v, want 1 dropped after 2 retries", s)
		}
	})
}

func TestPermanentErrorNotRetried(t *testing.T) {
	t.Parallel()
	errBad := errors.New("invalid batch")
	for _, tt := range []struct {
		name      string
		err       error
		retryable func(error) bool
	}{
		{name: "Permanent", err: Permanent(errBad)},
		{name: "wrapped Permanent", err: fmt.Errorf("writing: %w", Permanent(errBad))},
		{name: "Retryable false", err: errBad, retryable: func(err error) bool { return !errors.Is(err, errBad) }},
		{name: "Permanent wins over Retryable", err: Permanent(errBad), retryable: func(error) bool { return true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var attempts atomic.Int32
			bundle := setup(t, &Config{MaxAttempts: 5, Retryable: tt.retryable})
			Handle(bundle.q, func(context.Context, *batchA) error { attempts.Add(1); return tt.err })
			bundle.start()
			bundle.enqueue(&batchA{})
			bundle.close()

			if n := attempts.Load(); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			d := bundle.drops.get()
			if len(d) != 1 {
				t.Fatalf("OnDrop called %d times, want 1", len(d))
			}
			if d[0].err.Attempts != 1 || !errors.Is(d[0].err, errBad) {
				t.Errorf("OnDrop error %v, want 1 attempt and errBad", d[0].err)
			}
			if s := requireSettled(t, bundle.q); s.Dropped != 1 || s.Retries != 0 {
				t.Errorf("Stats = %+v, want 1 dropped, no retries", s)
			}
		})
	}
}

func TestHandlerPanicRecovered(t *testing.T) {
	t.Parallel()
	errInPanic := errors.New("panicked with an error")
	var logs bytes.Buffer
	var handled callLog
	bundle := setup(t, &Config{Workers: 1, MaxAttempts: 5, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	Handle(bundle.q, func(_ context.Context, b *batchA) error {
		switch b.id {
		case 1:
			panic("boom")
		case 2:
			panic(errInPanic)
		}
		handled.add(b.id)
		return nil
	})
	bundle.start()
	for id := range 4 {
		bundle.enqueue(&batchA{id: id})
	}
	bundle.close()

	// The only worker survived both panics.
	if diff := cmp.Diff([]int{0, 3}, handled.get()); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	d := bundle.drops.get()
	if len(d) != 2 {
		t.Fatalf("OnDrop called %d times, want 2", len(d))
	}
	for i, want := range []any{"boom", errInPanic} {
		var pe *PanicError
		if !errors.As(d[i].err, &pe) || pe.Value != want {
			t.Errorf("drop %d: %v, want a *PanicError with value %v", i, d[i].err, want)
			continue
		}
		if !IsPermanent(d[i].err) || d[i].err.Attempts != 1 {
			t.Errorf("drop %d: permanent %v after %d attempts, want permanent after 1", i, IsPermanent(d[i].err), d[i].err.Attempts)
		}
		// The message is one line, value and place; the stack is in its field.
		msg := pe.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, fmt.Sprint(want)) ||
			!strings.Contains(msg, "TestHandlerPanicRecovered.func") || !strings.Contains(msg, "queue_test.go:") {
			t.Errorf("drop %d: Error() = %q, want one line with the value and the handler's place", i, msg)
		}
		if !strings.Contains(string(pe.Stack), "TestHandlerPanicRecovered") {
			t.Errorf("drop %d: Stack does not show the stack of the panic:\n%s", i, pe.Stack)
		}
	}
	if !errors.Is(d[1].err, errInPanic) {
		t.Errorf("a panic with an error: errors.Is(%v, errInPanic) = false", d[1].err)
	}
	// The drop's log line carries the stack that the error leaves out.
	if n := strings.Count(logs.String(), "stack=\"goroutine "); n != 2 {
		t.Errorf("%d drops logged with a stack, want 2:\n%s", n, logs.String())
	}
	if s := requireSettled(t, bundle.q); s.Succeeded != 2 || s.Dropped != 2 || s.Retries != 0 {
		t.Errorf("Stats = %+v, want 2 succeeded, 2 dropped, no retries", s)
	}
}

func TestOnDropPanicRecovered(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var calls atomic.Int32
	bundle := setup(t, &Config{
		Workers: 1,
		OnDrop: func(any, error) {
			calls.Add(1)
			panic("dead letter office on fire")
		},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	Handle(bundle.q, func(context.Context, *batchA) error { return Permanent(errors.New("bad")) })
	bundle.start()
	bundle.enqueue(&batchA{}, &batchA{})
	bundle.close()
	if n := calls.Load(); n != 2 {
		t.Errorf("OnDrop called %d times, want 2", n)
	}
	if !strings.Contains(logs.String(), "dead letter office on fire") {
		t.Errorf("the OnDrop panic was not logged:\n%s", logs.String())
	}
	requireSettled(t, bundle.q)
}

func TestLogs(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		bundle := setup(t, &Config{
			MaxAttempts: 2,
			Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		Handle(bundle.q, func(context.Context, *batchA) error { return errTransient })
		bundle.start()
		bundle.enqueue(&batchA{})
		bundle.close()
		for _, want := range []string{
			`level=WARN msg="writequeue: batch failed, will retry" batch_type=*writequeue.batchA attempt=1 max_attempts=2`,
			`level=ERROR msg="writequeue: batch dropped" batch_type=*writequeue.batchA attempts=2 err="transient failure"`,
		} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("logs do not contain %s:\n%s", want, logs.String())
			}
		}
	})
}

func TestBackPressure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var handled callLog
		release := make(chan struct{})
		bundle := setup(t, &Config{Buffer: 1, Workers: 1})
		q := bundle.q
		Handle(q, func(ctx context.Context, b *batchA) error {
			<-release
			handled.add(b.id)
			return nil
		})
		bundle.start()

		// Batch 1 goes to the worker, which blocks; batch 2 fills the buffer.
		bundle.enqueue(&batchA{id: 1})
		synctest.Wait()
		bundle.enqueue(&batchA{id: 2})
		if s := q.Stats(); s.InFlight != 1 || s.Queued != 1 || s.Enqueued != 2 {
			t.Fatalf("Stats = %+v, want 1 in flight, 1 queued", s)
		}

		if err := q.TryEnqueue(&batchA{id: 3}); !errors.Is(err, ErrFull) {
			t.Errorf("TryEnqueue on a full queue = %v, want ErrFull", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		start := time.Now()
		err := q.Enqueue(ctx, &batchA{id: 3})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Errorf("Enqueue on a full queue returned %v after %v, want DeadlineExceeded after 1s", err, time.Since(start))
		}
		if s := q.Stats(); s.Enqueued != 2 || s.Queued != 1 {
			t.Errorf("Stats = %+v: a batch that timed out was queued", s)
		}

		// A blocked Enqueue goes through once there is room.
		enqueued := make(chan error, 1)
		go func() { enqueued <- q.Enqueue(context.Background(), &batchA{id: 4}) }()
		synctest.Wait()
		select {
		case err := <-enqueued:
			t.Fatalf("Enqueue on a full queue returned %v, want it to block", err)
		default:
		}
		close(release)
		if err := <-enqueued; err != nil {
			t.Errorf("blocked Enqueue = %v, want nil once there is room", err)
		}

		bundle.close()
		if diff := cmp.Diff([]int{1, 2, 4}, handled.get()); diff != "" {
			t.Errorf("handled (-want +got):\n%s", diff)
		}
		if s := requireSettled(t, q); s.Enqueued != 3 {
			t.Errorf("Stats = %+v, want 3 enqueued", s)
		}
	})
}

func TestCloseDrains(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var handled callLog
		var failedOnce atomic.Bool
		bundle := setup(t, &Config{Workers: 2, Buffer: 100})
		q := bundle.q
		Handle(q, func(ctx context.Context, b *batchA) error {
			time.Sleep(10 * time.Millisecond)
			if b.id == 0 && !failedOnce.Swap(true) {
				return errTransient // retried during the drain
			}
			handled.add(b.id)
			return nil
		})
		bundle.start()
		var want []int
		for i := range 20 {
			bundle.enqueue(&batchA{id: i})
			want = append(want, i)
		}
		bundle.close()

		got := handled.get()
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("handled (-want +got):\n%s", diff)
		}
		if s := requireSettled(t, q); s.Succeeded != 20 || s.Retries != 1 {
			t.Errorf("Stats = %+v, want 20 succeeded after 1 retry", s)
		}

		if err := q.Enqueue(t.Context(), &batchA{}); !errors.Is(err, ErrClosed) {
			t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
		}
		if err := q.TryEnqueue(&batchA{}); !errors.Is(err, ErrClosed) {
			t.Errorf("TryEnqueue after Close = %v, want ErrClosed", err)
		}
		if err := q.Close(t.Context()); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		if err := q.Start(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after Close = %v, want ErrClosed", err)
		}
		requireSettled(t, q)
	})
}

func TestCloseOutOfTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var cause error
		bundle := setup(t, &Config{Workers: 1})
		Handle(bundle.q, func(ctx context.Context, b *batchA) error {
			<-ctx.Done() // a write that hangs until cancelled
			cause = context.Cause(ctx)
			return ctx.Err()
		})
		bundle.start()
		batches := []*batchA{{id: 1}, {id: 2}, {id: 3}}
		for _, b := range batches {
			bundle.enqueue(b)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := bundle.q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed != 5*time.Second {
			t.Errorf("Close took %v, want 5s", elapsed)
		}
		if !errors.Is(cause, ErrClosed) || !errors.Is(cause, context.DeadlineExceeded) {
			t.Errorf("handler's context cause = %v, want ErrClosed and DeadlineExceeded", cause)
		}

		d := bundle.drops.get()
		if len(d) != 3 {
			t.Fatalf("OnDrop called %d times, want 3", len(d))
		}
		for i, drop := range d {
			if drop.batch != batches[i] || !errors.Is(drop.err, ErrClosed) {
				t.Errorf("drop %d: OnDrop(%v, %v), want batch %d and ErrClosed", i, drop.batch, drop.err, i+1)
			}
		}
		// The first batch was in flight: its attempt was cancelled.
		if d[0].err.Attempts != 1 || !errors.Is(d[0].err, context.Canceled) {
			t.Errorf("in-flight batch: %v, want 1 attempt ending in context.Canceled", d[0].err)
		}
		if d[1].err.Attempts != 0 || d[2].err.Attempts != 0 {
			t.Errorf("queued batches: %v, %v; want 0 attempts", d[1].err, d[2].err)
		}
		if s := requireSettled(t, bundle.q); s.Dropped != 3 {
			t.Errorf("Stats = %+v, want 3 dropped", s)
		}
	})
}

func TestCloseOutOfTimeDuringBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		bundle := setup(t, &Config{BaseBackoff: time.Hour, MaxBackoff: time.Hour})
		var attempts atomic.Int32
		Handle(bundle.q, func(ctx context.Context, b *batchA) error {
			attempts.Add(1)
			return errTransient
		})
		bundle.start()
		bundle.enqueue(&batchA{})
		synctest.Wait() // the worker waits to retry, for up to an hour

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := bundle.q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
		d := bundle.drops.get()
		if len(d) != 1 {
			t.Fatalf("OnDrop called %d times, want 1", len(d))
		}
		if d[0].err.Attempts != int(attempts.Load()) || !errors.Is(d[0].err, ErrClosed) || !errors.Is(d[0].err, errTransient) {
			t.Errorf("OnDrop error %v, want %d attempts, ErrClosed and the last error", d[0].err, attempts.Load())
		}
		requireSettled(t, bundle.q)
	})
}

func TestCloseBeforeStart(t *testing.T) {
	t.Parallel()
	var handled atomic.Int32
	bundle := setup(t, nil)
	q := bundle.q
	Handle(q, func(context.Context, *batchA) error { handled.Add(1); return nil })
	bundle.enqueue(&batchA{id: 0}, &batchA{id: 1}, &batchA{id: 2})
	if err := q.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}

	if n := handled.Load(); n != 0 {
		t.Errorf("handler called %d times, want 0", n)
	}
	d := bundle.drops.get()
	if len(d) != 3 {
		t.Fatalf("OnDrop called %d times, want 3", len(d))
	}
	for i, drop := range d {
		if drop.batch.(*batchA).id != i || drop.err.Attempts != 0 || !errors.Is(drop.err, ErrClosed) {
			t.Errorf("drop %d: OnDrop(%v, %v), want batch %d, 0 attempts and ErrClosed", i, drop.batch, drop.err, i)
		}
	}
	if err := q.Start(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := q.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if s := requireSettled(t, q); s.Dropped != 3 {
		t.Errorf("Stats = %+v, want 3 dropped", s)
	}
}

func TestCloseUnblocksEnqueue(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		bundle := setup(t, &Config{Buffer: 1})
		Handle(bundle.q, func(context.Context, *batchA) error { return nil })
		bundle.enqueue(&batchA{id: 1})
		enqueued := make(chan error, 1)
		go func() { enqueued <- bundle.q.Enqueue(context.Background(), &batchA{id: 2}) }()
		synctest.Wait() // blocked: not started, buffer full

		bundle.close()
		if err := <-enqueued; !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Enqueue = %v, want ErrClosed", err)
		}
		if d := bundle.drops.get(); len(d) != 1 || d[0].batch.(*batchA).id != 1 {
			t.Errorf("dropped %v, want batch 1 only", d)
		}
		if s := requireSettled(t, bundle.q); s.Enqueued != 1 {
			t.Errorf("Stats = %+v, want 1 enqueued", s)
		}
	})
}

func TestCloseConcurrent(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		bundle := setup(t, nil)
		q := bundle.q
		Handle(q, func(context.Context, *batchA) error { time.Sleep(time.Second); return nil })
		bundle.start()
		for range 10 {
			bundle.enqueue(&batchA{})
		}
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if err := q.Close(t.Context()); err != nil {
					t.Errorf("Close = %v", err)
				}
				// Every Close returns only once the queue has drained.
				if s := q.Stats(); s.Succeeded != 10 {
					t.Errorf("after Close: %+v, want 10 succeeded", s)
				}
			})
		}
		wg.Wait()
		requireSettled(t, q)
	})
}

func TestStartContextCancelled(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		var sawValue atomic.Bool
		bundle := setup(t, &Config{Workers: 1})
		q := bundle.q
		Handle(q, func(ctx context.Context, b *batchA) error {
			sawValue.Store(ctx.Value(key{}) == "run")
			<-ctx.Done()
			return ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "run"))
		defer cancel()
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		bundle.enqueue(&batchA{id: 0}, &batchA{id: 1}, &batchA{id: 2})
		synctest.Wait()
		if !sawValue.Load() {
			t.Error("the handler's context does not carry the values of Start's context")
		}

		cancel() // hard stop
		synctest.Wait()
		if err := q.Enqueue(t.Context(), &batchA{}); !errors.Is(err, ErrClosed) {
			t.Errorf("Enqueue after a hard stop = %v, want ErrClosed", err)
		}
		d := bundle.drops.get()
		if len(d) != 3 {
			t.Fatalf("OnDrop called %d times, want 3", len(d))
		}
		for i, drop := range d {
			if !errors.Is(drop.err, ErrClosed) || !errors.Is(drop.err, context.Canceled) {
				t.Errorf("drop %d: %v, want ErrClosed and context.Canceled", i, drop.err)
			}
		}
		if err := q.Close(t.Context()); err != nil {
			t.Errorf("Close after a hard stop = %v, want nil", err)
		}
		if s := requireSettled(t, q); s.Dropped != 3 {
			t.Errorf("Stats = %+v, want 3 dropped", s)
		}
	})
}

func TestStart(t *testing.T) {
	t.Parallel()
	bundle := setup(t, nil)
	q := bundle.q
	var handled atomic.Int32
	Handle(q, func(context.Context, *batchA) error { handled.Add(1); return nil })

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := q.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context = %v, want context.Canceled", err)
	}
	bundle.start()
	if err := q.Start(t.Context()); err != nil {
		t.Errorf("second Start = %v, want nil", err)
	}
	bundle.enqueue(&batchA{})
	bundle.close()
	if n := handled.Load(); n != 1 {
		t.Errorf("handled %d batches, want 1", n)
	}
}

// TestEnqueueCloseRace enqueues from many goroutines while Close runs, and
// checks that every accepted batch ends exactly once, in its handler or in
// OnDrop, and that no rejected batch does. Run it with -race.
func TestEnqueueCloseRace(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		closeCtx   func(context.Context) (context.Context, context.CancelFunc)
		wantCloseE error
	}{
		{name: "graceful", closeCtx: func(ctx context.Context) (context.Context, context.CancelFunc) { return ctx, func() {} }},
		{name: "out of time", closeCtx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return ctx, cancel
		}, wantCloseE: context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const producers, perProducer = 8, 2000
			var (
				mu       sync.Mutex
				outcomes = map[int]int{} // id -> times handled or dropped
				started  = make(chan struct{})
				once     sync.Once
				handled  atomic.Int32
			)
			record := func(id int) {
				mu.Lock()
				defer mu.Unlock()
				outcomes[id]++
			}
			bundle := setup(t, &Config{
				Workers:     4,
				Buffer:      16,
				BaseBackoff: time.Microsecond,
				MaxBackoff:  time.Microsecond,
				OnDrop:      func(batch any, _ error) { record(batch.(*batchA).id) },
			})
			q := bundle.q
			Handle(q, func(ctx context.Context, b *batchA) error {
				if handled.Add(1) == 100 {
					once.Do(func() { close(started) })
				}
				if b.id%7 == 0 {
					return errTransient
				}
				record(b.id)
				return nil
			})
			bundle.start()

			accepted := make([][]int, producers)
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					for i := range perProducer {
						id := p*perProducer + i
						var err error
						if i%2 == 0 {
							err = q.Enqueue(t.Context(), &batchA{id: id})
						} else if err = q.TryEnqueue(&batchA{id: id}); errors.Is(err, ErrFull) {
							continue
						}
						switch {
						case err == nil:
							accepted[p] = append(accepted[p], id)
						case errors.Is(err, ErrClosed):
							return
						default:
							t.Errorf("Enqueue = %v", err)
							return
						}
					}
				})
			}
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("handlers did not start")
			}
			ctx, cancel := tt.closeCtx(t.Context())
			defer cancel()
			if err := q.Close(ctx); !errors.Is(err, tt.wantCloseE) {
				t.Errorf("Close = %v, want %v", err, tt.wantCloseE)
			}
			wg.Wait()

			n := 0
			for _, ids := range accepted {
				for _, id := range ids {
					n++
					if outcomes[id] != 1 {
						t.Errorf("batch %d ended %d times, want 1", id, outcomes[id])
					}
					delete(outcomes, id)
				}
			}
			if len(outcomes) != 0 {
				t.Errorf("%d batches that were not accepted ended anyway", len(outcomes))
			}
			if s := requireSettled(t, q); s.Enqueued != int64(n) {
				t.Errorf("Stats = %+v, want %d enqueued", s, n)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	const base, maxWait = 100 * time.Millisecond, 10 * time.Second
	for _, tt := range []struct {
		attempt int
		want    time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{7, 6400 * time.Millisecond},
		{8, maxWait},
		{62, maxWait},
		{63, maxWait},
		{1000, maxWait},
	} {
		if got := backoffCeil(tt.attempt, base, maxWait); got != tt.want {
			t.Errorf("backoffCeil(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	if got := backoffCeil(40, time.Hour, 1<<62); got != 1<<62 {
		t.Errorf("backoffCeil with a huge MaxBackoff = %v, want it capped without overflow", got)
	}

	// Full jitter: waits spread over [0, ceil].
	var low, high bool
	for range 1000 {
		d := backoff(3, base, maxWait)
		if d < 0 || d > 400*time.Millisecond {
			t.Fatalf("backoff(3) = %v, want within [0, 400ms]", d)
		}
		low = low || d < 100*time.Millisecond
		high = high || d > 300*time.Millisecond
	}
	if !low || !high {
		t.Errorf("backoff(3) over 1000 draws: some below 100ms %v, some above 300ms %v; want both", low, high)
	}
}

// benchBatch has a size, so that its pointers are distinct (zero-size values
// may share one address).
type benchBatch struct{ _ int }

// BenchmarkEnqueueDispatch measures a batch's way through the queue to a
// no-op handler: Enqueue, the channel, the worker, the dispatch by type.
func BenchmarkEnqueueDispatch(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			q := setup(b, &Config{Workers: workers, Buffer: 1024}).q
			Handle(q, func(context.Context, *benchBatch) error { return nil })
			ctx := context.Background()
			if err := q.Start(ctx); err != nil {
				b.Fatal(err)
			}
			batch := &benchBatch{}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := q.Enqueue(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			if err := q.Close(ctx); err != nil { // timed: the queue drains
				b.Fatal(err)
			}
			b.StopTimer()
			if s := q.Stats(); s.Succeeded != int64(b.N) {
				b.Fatalf("Stats = %+v, want %d succeeded", s, b.N)
			}
		})
	}
}

// BenchmarkEnqueueDispatchParallel is BenchmarkEnqueueDispatch with
// concurrent producers.
func BenchmarkEnqueueDispatchParallel(b *testing.B) {
	q := setup(b, &Config{Buffer: 1024}).q
	Handle(q, func(context.Context, *benchBatch) error { return nil })
	ctx := context.Background()
	if err := q.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		batch := &benchBatch{}
		for pb.Next() {
			if err := q.Enqueue(ctx, batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := q.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
