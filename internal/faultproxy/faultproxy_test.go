package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oddsledger/oddsledger/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func start(t *testing.T, cfg faultproxy.Config) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func dial(t *testing.T, p *faultproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

// waitLive waits until the proxy forwards n connections.
func waitLive(t *testing.T, p *faultproxy.Proxy, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); p.Stats().Live != n; {
		if time.Now().After(deadline) {
			t.Fatalf("live connections: %d, want %d", p.Stats().Live, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCut(t *testing.T) {
	p := start(t, faultproxy.Config{Target: echoServer(t)})
	c1, c2 := dial(t, p), dial(t, p)
	echo(t, c1, "hello")
	echo(t, c2, "world")
	waitLive(t, p, 2)

	if n := p.Cut(); n != 2 {
		t.Errorf("Cut() = %d, want 2", n)
	}
	for _, c := range []net.Conn{c1, c2} {
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("read after Cut: %v, want EOF", err)
		}
	}
	waitLive(t, p, 0)

	// The proxy still takes new connections.
	echo(t, dial(t, p), "again")
	if s := p.Stats(); s.Accepted != 3 || s.Cut != 2 || s.BudgetCut != 0 {
		t.Errorf("Stats() = %+v, want 3 accepted, 2 cut", s)
	}
}

func TestReset(t *testing.T) {
	p := start(t, faultproxy.Config{Target: echoServer(t)})
	c := dial(t, p)
	echo(t, c, "hello")
	waitLive(t, p, 1)
	if n := p.Reset(); n != 1 {
		t.Errorf("Reset() = %d, want 1", n)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after Reset: %v, want ECONNRESET", err)
	}
}

func TestBudget(t *testing.T) {
	// Each message costs 20 bytes of budget, out and back: the echo of the
	// second is cut after its first 3 bytes.
	p := start(t, faultproxy.Config{Target: echoServer(t), Budget: func() int64 { return 33 }})
	c := dial(t, p)
	echo(t, c, "0123456789")
	if _, err := c.Write([]byte("abcdefghij")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte("abc")) {
		t.Errorf("read %q after the budget, want %q", got, "abc")
	}
	waitLive(t, p, 0)
	if s := p.Stats(); s.BudgetCut != 1 {
		t.Errorf("Stats() = %+v, want 1 cut by budget", s)
	}
}

func TestClose(t *testing.T) {
	p, err := faultproxy.Start(faultproxy.Config{Target: echoServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	echo(t, c, "hello")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read after Close: %v, want EOF", err)
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Error("dial after Close succeeded")
	}
}

func TestStartRequiresTarget(t *testing.T) {
	if _, err := faultproxy.Start(faultproxy.Config{}); err == nil {
		t.Error("Start without Target succeeded")
	}
}
