package marketodds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrInvalidWrite is matched (errors.Is) by every *ValidationError.
	ErrInvalidWrite = errors.New("marketodds: invalid write")
	// ErrRowRejected is matched by every *RowError: PostgreSQL refused the
	// row itself (a data error), so retrying it cannot help.
	ErrRowRejected = errors.New("marketodds: row rejected by PostgreSQL")
	// ErrNoPartition is matched by errors that report a history row for
	// which no partition exists (SQLSTATE 23514 without a constraint name).
	// The store creates the partition and writes again; it surfaces only if
	// that fails.
	ErrNoPartition = errors.New("marketodds: no history partition for row")
)

// ValidationError reports a write that failed validation. It names the
// market and the field.
type ValidationError struct {
	Key Key
	// Field is the offending field, as a Go path: "Bookmaker",
	// "Outcomes[2].Odds", "Groups[0]", ...
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("marketodds: invalid write for market %s: %s: %s", e.Key, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidWrite) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidWrite }

// RowError reports a write that PostgreSQL refused on its own: the other
// writes of its batch were committed without it.
type RowError struct {
	Key Key
	// Err is the *pgconn.PgError PostgreSQL raised for the row.
	Err error
}

func (e *RowError) Error() string {
	return fmt.Sprintf("marketodds: market %s rejected by PostgreSQL: %v", e.Key, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRowRejected) true.
func (e *RowError) Is(target error) bool { return target == ErrRowRejected }

func (k Key) String() string {
	return fmt.Sprintf("{event %d, %q, market %q, line %g}", k.EventID, k.Bookmaker, k.MarketID, k.Line)
}

// errorClass is what the write path does with an error.
type errorClass int

const (
	classOther       errorClass = iota // give up and return it
	classTransient                     // retry the whole transaction (the caller's job)
	classRow                           // a row is bad: isolate it, reject it, keep the rest
	classNoPartition                   // create the partition, write again
	classTooBig                        // statement_timeout: split the batch
)

// classify sorts an error by what to do about it (see STYLE.md's reliability
// table). It never looks at message text.
func classify(err error) errorClass {
	if err == nil {
		return classOther
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "55P03", "53000", "53100", "53200", "53300",
			"57P01", "57P02", "57P03", "25006", "08000", "08003", "08006", "08001", "08004":
			return classTransient
		case "57014":
			return classTooBig
		case "23514":
			// A CHECK constraint names itself; the partition router does not.
			if pgErr.ConstraintName == "" {
				return classNoPartition
			}
			return classRow
		case "21000", "23502", "23503", "23505", "54000":
			return classRow
		}
		// Class 22: data exception (22001 too long, 22003 out of range, 22021
		// bad encoding, 22P02 bad text representation, 22P05 \u0000 in jsonb, ...).
		if len(pgErr.Code) == 5 && pgErr.Code[:2] == "22" {
			return classRow
		}
		return classOther
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classOther
	}
	if isConnectionError(err) {
		return classTransient
	}
	return classOther
}

func isConnectionError(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	// pgx marks errors that happened before anything was sent, and closed
	// connections it knows of, as safe to retry.
	return pgconn.SafeToRetry(err)
}

// IsTransient reports whether err is worth retrying: the connection was lost
// or refused, or PostgreSQL reported a serialization failure (40001), a
// deadlock (40P01), a lock timeout (55P03), insufficient resources
// (53xxx), an administrator or crash shutdown (57P01-57P03) or a read-only
// transaction (25006, a failover in progress). Retrying a write is safe
// because writes are idempotent. Cancelled contexts, validation errors and
// rejected rows are not transient.
func IsTransient(err error) bool {
	var ve *ValidationError
	if errors.As(err, &ve) || errors.Is(err, ErrRowRejected) {
		return false
	}
	return classify(err) == classTransient
}
