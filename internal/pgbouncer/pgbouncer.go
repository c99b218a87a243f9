// Package pgbouncer starts a throwaway PgBouncer in front of a PostgreSQL
// server, for tests: transaction pooling and a small server pool by default,
// listening on a free 127.0.0.1 port, with its configuration and log in a
// temporary directory that Close removes.
//
// It runs the local pgbouncer binary (Debian's pgbouncer package; its
// system service is neither needed nor used). PgBouncer refuses to run as
// root: when this process is root, it runs as an unprivileged user
// ("postgres", or "nobody" where that user does not exist), as
// internal/pgserver runs PostgreSQL.
//
// Clients are not authenticated (auth_type trust); PgBouncer logs in to the
// server as the client's user: the upstream URL's with its password, if
// any; another role with the password PgBouncer's auth_query finds for it
// on the server, which works when the server trusts it (as internal/pgserver
// does) but not with a SCRAM secret.
package pgbouncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oddsledger/oddsledger/internal/pgserver"
)

// ErrNoBinary is returned by Start when no pgbouncer binary can be found.
// The message says what to install.
var ErrNoBinary = errors.New("pgbouncer: no pgbouncer binary found (install Debian's pgbouncer package, " +
	"put pgbouncer on PATH or set PGBOUNCER to its path)")

// Options tune the throwaway PgBouncer. The zero value is transaction
// pooling with four server connections per database and user.
type Options struct {
	// PoolMode is pool_mode: "session", "transaction" or "statement".
	// Defaults to "transaction".
	PoolMode string
	// DefaultPoolSize is default_pool_size, the server connections per
	// database and user. Defaults to 4.
	DefaultPoolSize int
	// MaxClientConn is max_client_conn. Defaults to 200.
	MaxClientConn int
	// ServerLoginRetry is server_login_retry: after a failed server login,
	// how long PgBouncer fails new clients at once instead of trying again.
	// Defaults to 1s (PgBouncer's own default is 15s).
	ServerLoginRetry time.Duration
	// Settings are extra "name = value" lines for the [pgbouncer] section.
	Settings []string
}

// Bouncer is a running throwaway PgBouncer.
type Bouncer struct {
	dir      string
	port     int
	user     string
	database string // of the upstream URL
	cmd      *exec.Cmd
	log      *os.File
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // valid once exited is closed

	closeOnce sync.Once
	closeErr  error
}

// Binary finds the pgbouncer binary: $PGBOUNCER, pgbouncer on PATH, or
// /usr/sbin/pgbouncer (where Debian installs it, often not on a user's PATH).
func Binary() (string, error) {
	if p := os.Getenv("PGBOUNCER"); p != "" {
		if isExec(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: PGBOUNCER=%s is not an executable file", ErrNoBinary, p)
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if p := "/usr/sbin/pgbouncer"; isExec(p) {
		return p, nil
	}
	return "", ErrNoBinary
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start starts PgBouncer in front of the server of upstream, a PostgreSQL
// connection URL (internal/pgserver's Server.URL, or a DATABASE_URL). Every
// database name is passed through to that server. It returns once
// PgBouncer listens.
func Start(ctx context.Context, upstream string, opts Options) (*Bouncer, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	up, err := pgconn.ParseConfig(upstream)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: upstream: %w", err)
	}
	if opts.PoolMode == "" {
		opts.PoolMode = "transaction"
	}
	if opts.DefaultPoolSize == 0 {
		opts.DefaultPoolSize = 4
	}
	if opts.MaxClientConn == 0 {
		opts.MaxClientConn = 200
	}
	if opts.ServerLoginRetry == 0 {
		opts.ServerLoginRetry = time.Second
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = pgserver.Unprivileged(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "oddsledger-pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	if cred != nil {
		// PgBouncer reads its files as that user; MkdirTemp made dir 0700 for root.
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgbouncer: chown %s: %w", dir, err)
		}
	}
	// The port is free when chosen, not necessarily when PgBouncer binds it:
	// on "address in use", try another.
	for try := 1; ; try++ {
		b, err := start(ctx, bin, dir, cred, up, opts)
		if err == nil {
			return b, nil
		}
		if try == 3 || !strings.Contains(err.Error(), "in use") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func start(ctx context.Context, bin, dir string, cred *syscall.Credential, up *pgconn.Config, opts Options) (*Bouncer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &Bouncer{dir: dir, port: port, user: up.User, database: up.Database, exited: make(chan struct{})}
	if b.database == "" {
		b.database = up.User
	}
	if err := b.writeConfig(cred, up, opts); err != nil {
		return nil, err
	}
	if b.log, err = os.Create(filepath.Join(dir, "pgbouncer.log")); err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	// In the foreground, PgBouncer logs to stderr.
	b.cmd = exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	b.cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	// Pdeathsig: should this process die without Close, PgBouncer goes too.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM}
	if err := b.cmd.Start(); err != nil {
		b.log.Close()
		return nil, fmt.Errorf("pgbouncer: start %s: %w", bin, err)
	}
	go func() {
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	if err := b.waitListening(ctx); err != nil {
		b.stop()
		b.log.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bouncer) writeConfig(cred *syscall.Credential, up *pgconn.Config, opts Options) error {
	target := fmt.Sprintf("host=%s port=%d", up.Host, up.Port)
	ini := []string{
		"[databases]",
		"* = " + target,
		"",
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		"listen_port = " + strconv.Itoa(b.port),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + filepath.Join(b.dir, "userlist.txt"),
		// Other roles (a test's least-privileged writer) are looked up on the
		// server with auth_query, as the upstream user.
		"auth_user = " + up.User,
		"admin_users = " + up.User,
		"pool_mode = " + opts.PoolMode,
		"default_pool_size = " + strconv.Itoa(opts.DefaultPoolSize),
		"max_client_conn = " + strconv.Itoa(opts.MaxClientConn),
		"server_login_retry = " + strconv.FormatFloat(opts.ServerLoginRetry.Seconds(), 'f', -1, 64),
		"log_connections = 0",
	}
	if up.TLSConfig != nil {
		ini = append(ini, "server_tls_sslmode = prefer")
	}
	ini = append(ini, opts.Settings...)
	files := map[string]string{
		"pgbouncer.ini": strings.Join(ini, "\n") + "\n",
		// Plain text: PgBouncer logs in to the server with it (trust, md5 or
		// SCRAM, whatever the server asks for).
		"userlist.txt": quote(up.User) + " " + quote(up.Password) + "\n",
	}
	for name, content := range files {
		path := filepath.Join(b.dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return fmt.Errorf("pgbouncer: %w", err)
		}
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("pgbouncer: chown %s: %w", path, err)
			}
		}
	}
	return nil
}

// quote quotes s for auth_file: in double quotes, a double quote doubled.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// waitListening waits until PgBouncer logs that it listens on its port, or
// exits.
func (b *Bouncer) waitListening(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := []byte(fmt.Sprintf("listening on 127.0.0.1:%d", b.port))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if log, _ := os.ReadFile(b.log.Name()); bytes.Contains(log, want) {
			return nil
		}
		select {
		case <-b.exited:
			return fmt.Errorf("pgbouncer: exited at start (%v):\n%s", b.waitErr, b.LogTail())
		case <-ctx.Done():
			return fmt.Errorf("pgbouncer: not listening on port %d: %w:\n%s", b.port, ctx.Err(), b.LogTail())
		case <-tick.C:
		}
	}
}

// URL is the connection string of the upstream URL's database through
// PgBouncer.
func (b *Bouncer) URL() string { return b.DatabaseURL(b.database) }

// DatabaseURL is the connection string of database db through PgBouncer.
func (b *Bouncer) DatabaseURL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(b.user), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// AdminURL is the connection string of PgBouncer's admin console (the
// "pgbouncer" database), which takes SHOW, RECONNECT, PAUSE and the like.
// It speaks only the simple query protocol: the URL says so to pgx.
func (b *Bouncer) AdminURL() string {
	return b.DatabaseURL("pgbouncer") + "&default_query_exec_mode=simple_protocol"
}

// Port is the TCP port PgBouncer listens on.
func (b *Bouncer) Port() int { return b.port }

// LogTail is the end of PgBouncer's log, for messages.
func (b *Bouncer) LogTail() string {
	log, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	return string(log)
}

// Close stops PgBouncer (an immediate shutdown: client and server
// connections are closed) and removes its directory. It is idempotent.
func (b *Bouncer) Close() error {
	b.closeOnce.Do(func() {
		b.closeErr = b.stop()
		b.log.Close()
		os.RemoveAll(b.dir)
	})
	return b.closeErr
}

// stop sends SIGTERM (PgBouncer's immediate shutdown) and waits for the
// process; after 10s it kills it.
func (b *Bouncer) stop() error {
	select {
	case <-b.exited:
		return fmt.Errorf("pgbouncer: exited before Close (%v):\n%s", b.waitErr, b.LogTail())
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-b.exited:
		return nil
	case <-t.C:
		_ = b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("pgbouncer: killed after not stopping in 10s on SIGTERM:\n%s", b.LogTail())
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgbouncer: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
