package writequeue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad batch")
	perm := Permanent(base)

	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if perm.Error() != base.Error() {
		t.Errorf("Permanent(err).Error() = %q, want %q", perm.Error(), base.Error())
	}
	if !errors.Is(perm, base) {
		t.Error("Permanent(err) does not unwrap to err")
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{perm, true},
		{fmt.Errorf("writing: %w", perm), true},
		{&DropError{Attempts: 1, Err: perm}, true},
		{base, false},
		{nil, false},
		{&PanicError{Value: "boom"}, false}, // permanence comes from the Permanent wrapper
	} {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestDropError(t *testing.T) {
	t.Parallel()
	err := &DropError{Attempts: 3, Err: fmt.Errorf("writing: %w", errTransient)}
	if want := "writequeue: batch dropped after 3 attempt(s): writing: transient failure"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, errTransient) {
		t.Error("DropError does not unwrap to its Err")
	}
}

func TestPanicErrorMessage(t *testing.T) {
	t.Parallel()
	stack := []byte(strings.Repeat("goroutine 7 [running]:\n", 50))
	for _, tt := range []struct {
		err  *PanicError
		want string
	}{
		{&PanicError{Value: "boom", Where: "main.writeOdds (host.go:42)", Stack: stack},
			"writequeue: handler panicked at main.writeOdds (host.go:42): boom"},
		{&PanicError{Value: errTransient, Stack: stack}, "writequeue: handler panicked: transient failure"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q: one line, without the stack", got, tt.want)
		}
	}
}

// panicIn panics with a runtime error, a frame below the handler.
func panicIn(m map[string]int) { m["x"] = 1 }

// TestAttemptPanic: a recovered panic is a permanent *PanicError that says
// where the panic was raised, runtime frames skipped, and keeps the stack.
func TestAttemptPanic(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		handler   handlerFunc
		wantWhere string
	}{
		{"panic in the handler", func(context.Context, any) error { panic("boom") }, "writequeue.TestAttemptPanic.func1 (errors_test.go:"},
		{"runtime error below", func(context.Context, any) error { panicIn(nil); return nil }, "writequeue.panicIn (errors_test.go:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := setup(t, nil).q
			err := q.attempt(t.Context(), item{batch: &batchA{}, handler: tt.handler})
			var pe *PanicError
			if !errors.As(err, &pe) || !IsPermanent(err) {
				t.Fatalf("attempt = %v, want a permanent *PanicError", err)
			}
			if !strings.HasPrefix(pe.Where, tt.wantWhere) {
				t.Errorf("Where = %q, want it to start with %q", pe.Where, tt.wantWhere)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, pe.Where) || len(msg) > 200 {
				t.Errorf("Error() = %q, want one short line naming %q", msg, pe.Where)
			}
			if !strings.Contains(string(pe.Stack), "writequeue.(*Queue).attempt") {
				t.Errorf("Stack is not the stack of the panic:\n%s", pe.Stack)
			}
		})
	}
}
