// Package pgserver runs a throwaway PostgreSQL cluster from the local server
// binaries, for tests and examples. It is not part of oddsledger's API.
//
// The cluster lives in a temporary directory, listens on a free loopback TCP
// port and is removed by Close. initdb refuses to run as root, so when the
// process is root the server runs as an unprivileged user ("postgres", or
// "nobody" where that user does not exist).
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoBinaries is returned by Start when no PostgreSQL server binaries can be
// found. The message says what to install.
var ErrNoBinaries = errors.New("pgserver: no PostgreSQL server binaries found (install Debian's postgresql package, " +
	"put pg_config on PATH, set PGBIN to the directory holding initdb and pg_ctl, or set DATABASE_URL)")

// Options tune the throwaway server. The zero value is a fast, non-durable
// server for tests.
type Options struct {
	// Durable keeps fsync, synchronous_commit and full_page_writes on, as a
	// production server would run. Benchmarks that compare write strategies
	// want this; tests do not. Defaults to false.
	Durable bool
	// SharedBuffers is the shared_buffers setting. Defaults to "128MB".
	SharedBuffers string
	// MaxConnections is max_connections. Defaults to 200.
	MaxConnections int
	// Settings are extra "name=value" server settings.
	Settings []string
}

// Server is a running throwaway PostgreSQL cluster.
type Server struct {
	bin     string
	dir     string // owns the data directory and the log
	dataDir string
	port    int
	cred    *syscall.Credential
	opts    Options

	mu      sync.Mutex
	running bool
}

// BinDir finds the directory of the PostgreSQL server binaries: $PGBIN,
// `pg_config --bindir`, or the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	var candidates []string
	if d := os.Getenv("PGBIN"); d != "" {
		candidates = append(candidates, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(globbed, func(i, j int) bool { return versionOf(globbed[i]) > versionOf(globbed[j]) })
	candidates = append(candidates, globbed...)
	for _, d := range candidates {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start creates a cluster in a new temporary directory and starts it.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.SharedBuffers == "" {
		opts.SharedBuffers = "128MB"
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = 200
	}
	s := &Server{bin: bin, opts: opts}
	if os.Geteuid() == 0 {
		if s.cred, err = Unprivileged(); err != nil {
			return nil, err
		}
	}
	if s.dir, err = os.MkdirTemp("", "oddsledger-pg-"); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	s.dataDir = filepath.Join(s.dir, "data")
	if s.cred != nil {
		// The server user must own its directory; MkdirTemp made it 0700 for root.
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			s.removeDir()
			return nil, fmt.Errorf("pgserver: chown %s: %w", s.dir, err)
		}
	}
	if err := s.run(ctx, "initdb", "-D", s.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		s.removeDir()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.removeDir()
		return nil, err
	}
	return s, nil
}

// Unprivileged returns the credentials of the user that the server binaries
// (and internal/pgbouncer's PgBouncer) run as when this process is root,
// which both refuse to run as: postgres, else nobody.
func Unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgserver: running as root and no unprivileged user (postgres, nobody) to run the server binaries as")
}

// URL is the connection string of the cluster's "postgres" database.
func (s *Server) URL() string { return s.DatabaseURL("postgres") }

// DatabaseURL is the connection string of database db on the cluster.
func (s *Server) DatabaseURL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the TCP port the server listens on (kept across Stop and Restart).
func (s *Server) Port() int { return s.port }

// Stop shuts the server down (fast mode: open connections are terminated)
// and keeps the data directory, so that Restart can bring it back.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	if err := s.run(ctx, "pg_ctl", "stop", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return err
	}
	s.running = false
	return nil
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	return s.startLocked(ctx)
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Stop(context.Background())
	if err != nil {
		// Last resort: an immediate stop, so that no server outlives us.
		_ = s.run(context.Background(), "pg_ctl", "stop", "-D", s.dataDir, "-m", "immediate", "-w")
	}
	s.removeDir()
	return err
}

func (s *Server) removeDir() { _ = os.RemoveAll(s.dir) }

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	return s.startLocked(ctx)
}

func (s *Server) startLocked(ctx context.Context) error {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(s.port),
		"unix_socket_directories=" + s.dir,
		"max_connections=" + strconv.Itoa(s.opts.MaxConnections),
		"shared_buffers=" + s.opts.SharedBuffers,
		"max_wal_size=4GB",
		"log_min_messages=warning",
		"logging_collector=off",
	}
	if !s.opts.Durable {
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off")
	}
	settings = append(settings, s.opts.Settings...)
	var o strings.Builder
	for _, kv := range settings {
		o.WriteString(" -c " + kv)
	}
	err := s.run(ctx, "pg_ctl", "start", "-D", s.dataDir, "-w", "-t", "60",
		"-l", filepath.Join(s.dir, "server.log"), "-o", o.String())
	if err != nil {
		return fmt.Errorf("%w\nserver log:\n%s", err, s.logTail())
	}
	s.running = true
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// run runs one of the server binaries, as the unprivileged user when root.
func (s *Server) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	// A process group of its own: the terminal's Ctrl-C goes to the program
	// that owns the server, which then stops it in order, instead of
	// reaching the postmaster too and killing it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	// pg_ctl start leaves the postmaster running with our pipes as its
	// stdout/stderr unless -l is given; it is, so Wait returns.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgserver: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
