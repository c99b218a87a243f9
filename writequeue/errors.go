package writequeue

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by Enqueue, TryEnqueue and Start once Close has
	// been called (or the context given to Start has ended). Batches dropped
	// because the queue stopped before writing them are reported to OnDrop
	// with an error that wraps ErrClosed.
	ErrClosed = errors.New("writequeue: queue closed")

	// ErrFull is returned by TryEnqueue when the buffer is full.
	ErrFull = errors.New("writequeue: queue full")

	// ErrNoHandler is returned by Enqueue and TryEnqueue for a batch whose
	// dynamic type has no handler registered with Handle.
	ErrNoHandler = errors.New("writequeue: no handler for batch type")
)

// DropError is the error given to Config.OnDrop with a batch the queue gave
// up on.
//
// Err says why: the handler's last error when it failed permanently or ran
// out of attempts, or an error wrapping ErrClosed (and the last attempt's
// error, if any) when the queue stopped before the batch was written. Use
// errors.Is and errors.As on the DropError itself: it unwraps to Err.
type DropError struct {
	// Attempts is how many times the handler was called for the batch: 0 for
	// a batch that was still queued when the queue stopped.
	Attempts int

	// Err is the reason for the drop. It is never nil.
	Err error
}

func (e *DropError) Error() string {
	return fmt.Sprintf("writequeue: batch dropped after %d attempt(s): %v", e.Attempts, e.Err)
}

func (e *DropError) Unwrap() error { return e.Err }

// PanicError is the error of an attempt whose handler panicked. It is always
// wrapped with Permanent, so the batch is not retried.
type PanicError struct {
	// Value is what the handler passed to panic.
	Value any

	// Where is the function, file and line that panicked, as in
	// "main.writeOdds (host.go:42)": the innermost frame outside the
	// runtime. Empty if it could not be found.
	Where string

	// Stack is the handler goroutine's stack at the panic, as formatted by
	// runtime/debug.Stack. Error leaves it out, so that the message stays one
	// short line wherever errors are logged or wrapped; the queue logs it,
	// as the attribute "stack", with the drop.
	Stack []byte
}

// Error returns one line: the panic value and where it was raised.
func (e *PanicError) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("writequeue: handler panicked: %v", e.Value)
	}
	return fmt.Sprintf("writequeue: handler panicked at %s: %v", e.Where, e.Value)
}

// Unwrap returns the panic value if it is an error, so that a handler that
// panics with an error can still be matched with errors.Is.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Permanent marks err as permanent: a handler returns Permanent(err) for a
// failure that retrying cannot fix (a batch that fails validation, say), and
// the queue drops the batch at once, without consulting Config.Retryable.
// The result unwraps to err and has err's message. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
