package marketodds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oddsledger/oddsledger/internal/faultproxy"
	"github.com/oddsledger/oddsledger/internal/pgbouncer"
	"github.com/oddsledger/oddsledger/internal/pgtest"
)

// fatal is an error as pgx returns it for an ErrorResponse with severity
// FATAL, which is how PgBouncer sends its own errors.
func fatal(code, msg string) error {
	return fmt.Errorf("write batch: %w", &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg})
}

// Every code of class 08 (connection exception) is transient, whatever the
// message, except 08P01, which PostgreSQL raises for a protocol violation
// and PgBouncer for everything of its own.
func TestClassifyConnectionException(t *testing.T) {
	for _, code := range []string{"08000", "08001", "08003", "08004", "08006", "08007", "08P02", "08XYZ"} {
		for _, sev := range []string{"FATAL", "ERROR"} {
			err := fmt.Errorf("x: %w", &pgconn.PgError{Severity: sev, Code: code, Message: "anything"})
			if got := classify(err); got != classTransient {
				t.Errorf("%s %s: classify = %d, want transient", sev, code, got)
			}
			if !IsTransient(err) {
				t.Errorf("%s %s: IsTransient = false", sev, code)
			}
		}
	}
}

// PgBouncer's FATAL 08P01 errors, as it words them (PgBouncer 1.18's
// disconnect_client reasons, and the same events in the versions before and
// after), by whether a retry on a new connection can help.
func TestClassifyPgBouncer(t *testing.T) {
	transient := []string{
		// The server connection was lost under the client.
		"server conn crashed?",
		"server connection closed",
		"invalid server parameter", // the server connection died under PgBouncer's SET of the client's parameters
		// No server connection to be had, or not in time.
		"server login has been failing, try again later (server_login_retry)",
		"server login has been failing, cached error: connect failed (server_login_retry)",
		"pgbouncer cannot connect to server",
		"query_wait_timeout",
		"client_login_timeout (server down)",
		"client_login_timeout",
		"client_idle_timeout",
		"no more connections allowed (max_client_conn)",
		"client connections exceeded (max_db_client_connections)",
		"client connections exceeded (max_user_client_connections)",
		// An operator dropped the connections, or PgBouncer is stopping.
		"database removed",
		"database configuration changed",
		"server shutting down",
		"pooler is shutting down",
		// PostgreSQL's login errors, passed on under 08P01 before 1.20.
		"the database system is starting up",
		"the database system is shutting down",
		"the database system is in recovery mode",
		"the database system is not yet accepting connections",
		"sorry, too many clients already",
		"remaining connection slots are reserved for non-replication superuser connections",
	}
	permanent := []string{
		// Configuration and authentication: the next connection gets the same.
		"no such database: odds",
		`database "odds" is disabled`,
		"no such user",
		"password authentication failed",
		"SASL authentication failed",
		`"trust" authentication failed`,
		"login rejected",
		"unsupported startup parameter: search_path",
		"no username supplied",
		"bouncer config error",
		"SSL required",
		"server login failed: wrong password type",
		// Protocol violations.
		"unknown pkt",
		"bad packet header: '0000000000000000'",
		"PQexec disallowed",
		"old V2 protocol not supported",
		"prepared statement name is already in use",
		"prepared statement did not exist",
		// Timeouts of the client's own statement or transaction.
		"query_timeout",
		"query timeout",
		"idle transaction timeout",
		// PostgreSQL's own login errors passed on, that a retry cannot fix,
		// and a translated one that the list does not know.
		`password authentication failed for user "odds"`,
		`database "odds" does not exist`,
		"das Datenbanksystem fährt hoch",
	}
	for _, msg := range transient {
		err := fatal("08P01", msg)
		if got := classify(err); got != classTransient {
			t.Errorf("08P01 %q: classify = %d, want transient", msg, got)
		}
		if !IsTransient(err) {
			t.Errorf("08P01 %q: IsTransient = false", msg)
		}
		// At login pgx wraps it in a *pgconn.ConnectError, which is a
		// connection error, but the SQLSTATE decides.
		if !IsTransient(fmt.Errorf("connect: %w", err)) {
			t.Errorf("08P01 %q wrapped: IsTransient = false", msg)
		}
	}
	for _, msg := range permanent {
		if got := classify(fatal("08P01", msg)); got != classOther {
			t.Errorf("08P01 %q: classify = %d, want other (permanent)", msg, got)
		}
	}
	// Each message the list knows has a case above.
	for _, prefix := range pgbouncerTransient {
		covered := false
		for _, msg := range transient {
			covered = covered || strings.HasPrefix(msg, prefix)
		}
		if !covered {
			t.Errorf("pgbouncerTransient %q: no test case", prefix)
		}
	}
}

// PostgreSQL's own protocol violations are permanent, and so is a
// pooler-like text that does not come as a FATAL.
func TestClassifyProtocolViolation(t *testing.T) {
	for _, err := range []error{
		&pgconn.PgError{Severity: "ERROR", Code: "08P01", Message: `bind message supplies 1 parameters, but prepared statement "" requires 2`},
		&pgconn.PgError{Severity: "FATAL", Code: "08P01", Message: "invalid frontend message type 0"},
		&pgconn.PgError{Severity: "ERROR", Code: "08P01", Message: "server conn crashed?"},
		&pgconn.PgError{Code: "08P01", Message: "server connection closed"},
	} {
		if classify(err) != classOther || IsTransient(err) {
			t.Errorf("%v: classify = %d, IsTransient = %v; want permanent", err, classify(err), IsTransient(err))
		}
	}
	// A localised FATAL still counts.
	err := &pgconn.PgError{Severity: "SCHWERWIEGEND", SeverityUnlocalized: "FATAL", Code: "08P01", Message: "server conn crashed?"}
	if !IsTransient(err) {
		t.Errorf("%v (severity %s/%s): IsTransient = false", err, err.Severity, err.SeverityUnlocalized)
	}
}

// poolerHint wraps exactly the prepared statement errors: they then match
// ErrPreparedStatementsUnsupported, still unwrap to the *pgconn.PgError, say
// what to change, and stay permanent. Anything else comes back as is.
func TestPoolerHint(t *testing.T) {
	for _, code := range []string{"26000", "42P05"} {
		pgErr := &pgconn.PgError{Severity: "ERROR", Code: code, Message: `prepared statement "stmtcache_0123" ...`}
		err := poolerHint(fmt.Errorf("write batch: %w", pgErr))
		if !errors.Is(err, ErrPreparedStatementsUnsupported) {
			t.Errorf("%s: %v does not match ErrPreparedStatementsUnsupported", code, err)
		}
		var got *pgconn.PgError
		if !errors.As(err, &got) || got != pgErr {
			t.Errorf("%s: %v does not unwrap to the PgError", code, err)
		}
		for _, want := range []string{"default_query_exec_mode=exec", "cache_describe", "simple_protocol",
			"transaction pooling", "PgBouncer >= 1.21", "max_prepared_statements", "SQLSTATE " + code} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", code, err, want)
			}
		}
		if again := poolerHint(err); again != err {
			t.Errorf("%s: poolerHint wrapped its own result again: %v", code, again)
		}
		if IsTransient(err) {
			t.Errorf("%s: IsTransient(%v) = true, want false", code, err)
		}
	}
	for _, err := range []error{
		nil,
		errors.New("boom"),
		fatal("08P01", "server conn crashed?"),
		&pgconn.PgError{Code: "42P01", Message: `relation "x" does not exist`},
		&pgconn.PgError{Code: "34000", Message: `portal "p" does not exist`},
	} {
		if got := poolerHint(err); got != err {
			t.Errorf("poolerHint(%v) = %v, want it unchanged", err, got)
		}
	}
}

// What a host sees that writes through PgBouncer 1.18 in transaction
// pooling with pgx's default query exec mode: two client connections
// prepare the store's statements under the same names on the one server
// connection (42P05), and after PgBouncer replaces that server connection
// the first client executes a statement it prepared there (26000).
// poolerHint turns both into ErrPreparedStatementsUnsupported.
func TestStatementCacheBehindPgBouncer(t *testing.T) {
	t.Parallel()
	if _, err := pgbouncer.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: database tests must run, not skip)", err)
		}
		t.Skip(err)
	}
	schema := pgtest.Schema(t)
	direct := pgtest.DirectURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := pgbouncer.Start(ctx, direct, pgbouncer.Options{DefaultPoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("stop PgBouncer: %v", err)
		}
	})
	connect := func(url string) *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	admin, err := NewStore(connect(direct), &Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := func() *Store {
		s, err := NewStore(connect(b.URL()), &Config{Schema: schema}) // pgx's default mode
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, c := store(), store()
	at := time.Now().UTC().Truncate(time.Second)
	write := func(s *Store, n int) error {
		w := Write{Market: Market{EventID: int64(n), Bookmaker: "betpawa", MarketID: "3743", Name: "1X2",
			Outcomes: []Outcome{{Name: "1", Odds: 2}, {Name: "2", Odds: 2}}}, CapturedAt: at, Changed: true}
		_, err := s.WriteMarketBatch(ctx, Batch{Writes: []Write{w}})
		return err
	}
	check := func(what string, err error, code string) {
		t.Helper()
		t.Logf("%s: %v", what, err)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != code {
			t.Errorf("%s: %v, want SQLSTATE %s", what, err, code)
			return
		}
		hinted := poolerHint(err)
		if !errors.Is(hinted, ErrPreparedStatementsUnsupported) || !strings.Contains(hinted.Error(), "default_query_exec_mode=exec") {
			t.Errorf("%s: poolerHint = %v, want ErrPreparedStatementsUnsupported and the advice", what, hinted)
		}
		if IsTransient(err) {
			t.Errorf("%s: IsTransient = true, want false", what)
		}
	}

	if err := write(a, 1); err != nil {
		t.Fatalf("first client: %v", err)
	}
	check("second client", write(c, 2), "42P05")
	// RECONNECT: PgBouncer closes its server connection once released, and
	// the next transaction gets a new one.
	if _, err := connect(b.AdminURL()).Exec(ctx, "RECONNECT"); err != nil {
		t.Fatal(err)
	}
	check("first client, new server connection", write(a, 3), "26000")
}

// The errors a real PgBouncer (the local binary: 1.18 on Debian 12) sends
// when it loses or cannot get a server connection are transient, and those
// of a client mistake are not. Each case provokes one.
func TestIsTransientPgBouncerErrors(t *testing.T) {
	t.Parallel()
	if _, err := pgbouncer.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: database tests must run, not skip)", err)
		}
		t.Skip(err)
	}
	direct := pgtest.DirectURL(t)
	bouncer := func(t *testing.T, upstream string, opts pgbouncer.Options) (url string, b *pgbouncer.Bouncer) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b, err := pgbouncer.Start(ctx, upstream, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("stop PgBouncer: %v", err)
			}
		})
		return b.URL() + "&default_query_exec_mode=exec", b
	}
	connect := func(t *testing.T, url string) *pgx.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	// inTx returns a transaction on a new client connection, holding a
	// server connection.
	inTx := func(t *testing.T, url string) pgx.Tx {
		t.Helper()
		ctx := context.Background()
		tx, err := connect(t, url).Begin(ctx)
		if err == nil {
			_, err = tx.Exec(ctx, "SELECT 1")
		}
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	check := func(t *testing.T, err error, transient bool) *pgconn.PgError {
		t.Helper()
		t.Logf("%v", err)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "08P01" {
			t.Fatalf("%v, want a PgBouncer error (SQLSTATE 08P01)", err)
		}
		if IsTransient(err) != transient {
			t.Errorf("IsTransient(%v) = %v, want %v", err, !transient, transient)
		}
		return pgErr
	}
	// proxied returns the URL of the test server through a TCP proxy.
	proxied := func(t *testing.T) (string, *faultproxy.Proxy) {
		t.Helper()
		cc, err := pgx.ParseConfig(direct)
		if err != nil {
			t.Fatal(err)
		}
		target := net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
		proxy, err := faultproxy.Start(faultproxy.Config{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		return strings.Replace(direct, target, proxy.Addr(), 1), proxy
	}
	ctx := context.Background()

	t.Run("ServerConnectionBroken", func(t *testing.T) {
		upstream, proxy := proxied(t)
		url, _ := bouncer(t, upstream, pgbouncer.Options{})
		tx := inTx(t, url)
		// The server connection breaks without a word from the server:
		// "server conn crashed?".
		if proxy.Reset() == 0 {
			t.Fatal("no connection through the proxy to cut")
		}
		_, err := tx.Exec(ctx, "SELECT 1")
		check(t, err, true)
	})
	t.Run("QueryWaitTimeout", func(t *testing.T) {
		url, _ := bouncer(t, direct, pgbouncer.Options{DefaultPoolSize: 1, Settings: []string{"query_wait_timeout = 1"}})
		inTx(t, url) // holds the one server connection
		_, err := connect(t, url).Exec(ctx, "SELECT 1")
		check(t, err, true)
	})
	t.Run("MaxClientConn", func(t *testing.T) {
		url, _ := bouncer(t, direct, pgbouncer.Options{MaxClientConn: 1})
		connect(t, url)
		_, err := pgx.Connect(ctx, url)
		check(t, err, true)
	})
	t.Run("Killed", func(t *testing.T) {
		url, b := bouncer(t, direct, pgbouncer.Options{})
		tx := inTx(t, url)
		admin := connect(t, b.AdminURL())
		// KILL drops the database's connections: "database removed".
		if _, err := admin.Exec(ctx, "KILL "+pgx.Identifier{connect(t, direct).Config().Database}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		_, err := tx.Exec(ctx, "SELECT 1")
		check(t, err, true)
	})
	t.Run("ServerDown", func(t *testing.T) {
		upstream, proxy := proxied(t)
		url, _ := bouncer(t, upstream, pgbouncer.Options{ServerLoginRetry: time.Minute,
			Settings: []string{"query_wait_timeout = 1"}})
		if _, err := connect(t, url).Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		// The server goes away: the client that makes PgBouncer try a new
		// server connection waits for one (query_wait_timeout); once the
		// login failed, clients fail at once for server_login_retry.
		proxy.Close()
		var pgErr *pgconn.PgError
		for i := 0; i < 5 && (pgErr == nil || !strings.HasPrefix(pgErr.Message, "server login has been failing")); i++ {
			conn, err := pgx.Connect(ctx, url)
			if err == nil {
				_, err = conn.Exec(ctx, "SELECT 1")
				conn.Close(ctx)
			}
			pgErr = check(t, err, true)
		}
		if !strings.HasPrefix(pgErr.Message, "server login has been failing") {
			t.Errorf("no client failed with %q", "server login has been failing")
		}
	})
	t.Run("InvalidServerParameter", func(t *testing.T) {
		// PgBouncer takes the client's TimeZone at login and sets it on the
		// server connection it hands over: that SET fails. The same message
		// comes when the server connection dies during the SET, which is why
		// it counts as transient (see pgbouncerTransient).
		url, _ := bouncer(t, direct, pgbouncer.Options{})
		_, err := connect(t, url+"&timezone=No/Such_Zone").Exec(ctx, "SELECT 1")
		check(t, err, true)
	})
	t.Run("NoSuchUser", func(t *testing.T) {
		_, b := bouncer(t, direct, pgbouncer.Options{})
		_, err := pgx.Connect(ctx, b.URL()+"&user=no_such_role_here")
		check(t, err, false)
	})
	t.Run("UnsupportedStartupParameter", func(t *testing.T) {
		url, _ := bouncer(t, direct, pgbouncer.Options{})
		_, err := pgx.Connect(ctx, url+"&statement_timeout=1s")
		check(t, err, false)
	})
}
