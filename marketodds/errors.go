package marketodds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
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
	// ErrPreparedStatementsUnsupported is matched by errors in which
	// PostgreSQL reported a prepared statement missing (SQLSTATE 26000) or
	// already there (42P05). That is what pgx's default query exec mode
	// (cache_statement), which prepares named statements once per client
	// connection, runs into behind a transaction pooler whose server
	// connections change from one transaction to the next, such as PgBouncer
	// before 1.21 (or without max_prepared_statements) in transaction pooling.
	ErrPreparedStatementsUnsupported = errors.New("marketodds: prepared statements do not last from one transaction " +
		"to the next on this connection (a transaction pooler?)")
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

// classify sorts an error by what to do about it. It goes by SQLSTATE, and
// looks at message text for one code only: 08P01, under which PgBouncer
// reports both a lost server connection and mistakes that a retry cannot
// fix (see pgbouncerTransient).
func classify(err error) errorClass {
	if err == nil {
		return classOther
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "55P03", "53000", "53100", "53200", "53300",
			"57P01", "57P02", "57P03", "25006":
			return classTransient
		case "08P01":
			if isPgBouncerTransient(pgErr) {
				return classTransient
			}
			return classOther
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
		if len(pgErr.Code) == 5 {
			switch pgErr.Code[:2] {
			case "08":
				// Connection exception (08000, 08003 no connection, 08006
				// connection failure, 08001 and 08004 could not connect,
				// 08007 transaction outcome unknown).
				return classTransient
			case "22":
				// Data exception (22001 too long, 22003 out of range, 22021
				// bad encoding, 22P02 bad text representation, 22P05 \u0000
				// in jsonb, ...).
				return classRow
			}
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

// pgbouncerTransient are the messages, or their beginnings, of the FATAL
// errors with SQLSTATE 08P01 that a retry on a new connection can fix:
// PgBouncer lost the server connection under the client, could not get or
// make one in time, or was told to drop it. PgBouncer sends every error of
// its own as 08P01 (before 1.20 with no exception; since then it passes on
// the server's code when a server login fails), and these texts are not
// translated. Its other 08P01 errors stay permanent: authentication and
// configuration ("no such database", "no such user", "password
// authentication failed", "unsupported startup parameter", "bouncer config
// error", "SSL required"), protocol violations ("unknown pkt", "bad packet
// header", "PQexec disallowed", from 1.21 "prepared statement name is
// already in use" and "prepared statement did not exist"), and its
// timeouts on the client's own statements or transactions ("query_timeout",
// "query timeout", "idle transaction timeout"); as do PostgreSQL's own
// 08P01 protocol violations.
//
// One is ambiguous: PgBouncer sets the client's parameters
// (application_name, TimeZone, ...) on the server connection it hands over,
// and sends "invalid server parameter" when that SET fails, because the
// server connection died under it (what terminating server backends
// provokes) or because the client's value is invalid. It counts as
// transient: an invalid value fails every attempt, and the caller gives up
// after its last one.
var pgbouncerTransient = []string{
	"server conn crashed?",               // the server connection broke during the client's transaction
	"server connection closed",           // PgBouncer could not send the client's message to the server
	"invalid server parameter",           // its SET of the client's parameters failed (see above)
	"server login has been failing",      // server_login_retry: "..., try again later" (1.17-1.23), "..., cached error: ..." (1.24-)
	"pgbouncer cannot connect to server", // the same, before 1.17
	"query_wait_timeout",                 // no server connection free within query_wait_timeout
	"client_login_timeout",               // "client_login_timeout (server down)": no server login within it
	"client_idle_timeout",                // the client connection sat idle too long: nothing was sent
	"no more connections allowed",        // max_client_conn, PgBouncer's 53300
	"client connections exceeded",        // max_db_client_connections, max_user_client_connections (1.24-)
	"database removed",                   // KILL on the admin console (new connections wait for RESUME)
	"database configuration changed",     // RELOAD with a new connection string, server_fast_close
	"server shutting down",               // SHUTDOWN WAIT_FOR_SERVERS (1.23-)
	"pooler is shutting down",            // SHUTDOWN WAIT_FOR_CLIENTS (1.23-)
	// PostgreSQL's own messages for 57P03 (starting up, shutting down, in
	// recovery mode, not accepting connections) and 53300, which PgBouncer
	// before 1.20 passes on as 08P01 when the pool's first server login
	// fails. These are translated when the server's lc_messages is not
	// English: then they stay permanent.
	"the database system is ",
	"sorry, too many clients already",
	"remaining connection slots are reserved",
}

// isPgBouncerTransient reports whether an 08P01 error is a FATAL that
// PgBouncer sends when it loses or cannot get a server connection.
func isPgBouncerTransient(pgErr *pgconn.PgError) bool {
	if pgErr.Severity != "FATAL" && pgErr.SeverityUnlocalized != "FATAL" {
		return false
	}
	for _, prefix := range pgbouncerTransient {
		if strings.HasPrefix(pgErr.Message, prefix) {
			return true
		}
	}
	return false
}

// poolerHint wraps err, when PostgreSQL reported in it a prepared statement
// missing (26000) or already there (42P05), with what to change, so that it
// matches ErrPreparedStatementsUnsupported as well; any other err it
// returns as is. The store prepares no statement by name itself: these come
// from pgx's statement cache behind a transaction pooler.
func poolerHint(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (pgErr.Code != "26000" && pgErr.Code != "42P05") ||
		errors.Is(err, ErrPreparedStatementsUnsupported) {
		return err
	}
	return fmt.Errorf("%w: %w: use pgx default_query_exec_mode=exec (or cache_describe / simple_protocol) "+
		"behind PgBouncer in transaction pooling, or PgBouncer >= 1.21 with max_prepared_statements",
		ErrPreparedStatementsUnsupported, err)
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
// or refused (also SQLSTATE class 08, connection exception), PgBouncer lost
// or could not get a server connection (its FATAL 08P01 errors that say so:
// "server conn crashed?", "server connection closed", "server login has
// been failing", "query_wait_timeout", ...), or PostgreSQL reported a
// serialization failure (40001), a deadlock (40P01), a lock timeout
// (55P03), insufficient resources (53xxx), an administrator or crash
// shutdown (57P01-57P03) or a read-only transaction (25006, a failover in
// progress). Retrying a write is safe because writes are idempotent.
// Cancelled contexts, validation errors, rejected rows, PostgreSQL's own
// protocol violations (08P01) and PgBouncer's configuration and
// authentication errors are not transient, and neither are the prepared
// statement errors of ErrPreparedStatementsUnsupported: a retry through
// the same configuration fails again, sooner or later.
func IsTransient(err error) bool {
	var ve *ValidationError
	if errors.As(err, &ve) || errors.Is(err, ErrRowRejected) {
		return false
	}
	return classify(err) == classTransient
}
