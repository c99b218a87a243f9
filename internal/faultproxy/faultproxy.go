// Package faultproxy is a TCP proxy for fault-injection tests: it sits
// between a client (pgx, say) and a server, forwards bytes both ways, and
// cuts connections on demand or once they have carried a byte budget. It is
// not part of oddsledger's API.
//
// A cut closes both sides of a connection at once, wherever the
// conversation is: in the startup handshake, halfway through a message, or
// between a COMMIT reaching the server and its answer reaching the client.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Proxy.
type Config struct {
	// Target is the host:port connections are forwarded to. Required.
	Target string
	// Budget, when not nil, is called for every accepted connection and
	// returns the number of bytes (both directions together) the proxy
	// forwards on it before cutting it; a result <= 0 means no limit.
	// Defaults to nil: connections are cut only by Cut and Reset.
	Budget func() int64
}

// Stats counts what a Proxy did.
type Stats struct {
	// Accepted counts the client connections accepted.
	Accepted int64
	// Cut counts the connections closed by Cut or Reset.
	Cut int64
	// BudgetCut counts the connections cut because they used up their Budget.
	BudgetCut int64
	// Live is the number of connections currently forwarded.
	Live int
}

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	cfg    Config
	ln     net.Listener
	ctx    context.Context // cancelled by Close: aborts dials in progress
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool               // guarded by mu
	links  map[*link]struct{} // guarded by mu
	wg     sync.WaitGroup     // every goroutine of the proxy

	accepted, cut, budgetCut atomic.Int64
}

// link is one proxied connection: the client's side and the server's.
type link struct {
	client, server net.Conn
	budget         int64 // <= 0: unlimited
	used           atomic.Int64
	once           sync.Once
}

// Start listens on a free loopback port and forwards every connection to
// cfg.Target. Call Close to stop it.
func Start(cfg Config) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("faultproxy: Config.Target is required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{cfg: cfg, ln: ln, ctx: ctx, cancel: cancel, links: make(map[*link]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's listening port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Cut closes every live connection, both sides, and returns how many it
// closed. The peers see an orderly end of stream (FIN) mid-conversation.
func (p *Proxy) Cut() int { return p.cutAll(false) }

// Reset is Cut with an abortive close: the client sees the connection reset
// (RST), and whatever the proxy had not yet delivered is discarded.
func (p *Proxy) Reset() int { return p.cutAll(true) }

func (p *Proxy) cutAll(reset bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for l := range p.links {
		if l.close(reset) {
			n++
		}
	}
	p.cut.Add(int64(n))
	return n
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	live := len(p.links)
	p.mu.Unlock()
	return Stats{Accepted: p.accepted.Load(), Cut: p.cut.Load(), BudgetCut: p.budgetCut.Load(), Live: live}
}

// Close stops listening, closes every connection and returns once every
// goroutine of the proxy has exited. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	p.cancel()
	for l := range p.links {
		l.close(false)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Anything else (out of file descriptors, say): back off briefly,
			// unless the proxy is closing.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c)
	}
}

// serve dials the target for client and forwards both ways until either
// side ends or the link is cut.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: 10 * time.Second}
	server, err := d.DialContext(p.ctx, "tcp", p.cfg.Target)
	if err != nil {
		_ = client.Close()
		return
	}
	l := &link{client: client, server: server}
	if p.cfg.Budget != nil {
		l.budget = p.cfg.Budget()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close(false)
		return
	}
	p.links[l] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()

	go func() {
		defer p.wg.Done()
		p.forward(l, server, client)
	}()
	p.forward(l, client, server)

	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// forward copies src to dst until one fails, then closes the link, which
// ends the other direction too.
func (p *Proxy) forward(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			out := buf[:n]
			over := false
			if l.budget > 0 {
				if used := l.used.Add(int64(n)); used >= l.budget {
					// Deliver up to the budget, then cut: possibly halfway
					// through a protocol message.
					keep := int64(n) - (used - l.budget)
					out, over = buf[:max(keep, 0)], true
				}
			}
			if len(out) > 0 {
				if _, werr := dst.Write(out); werr != nil {
					l.close(false)
					return
				}
			}
			if over {
				if l.close(false) {
					p.budgetCut.Add(1)
				}
				return
			}
		}
		if err != nil {
			l.close(false)
			return
		}
	}
}

// close closes both sides, once, and reports whether this call did it.
// reset makes the client's side an abortive close (RST).
func (l *link) close(reset bool) bool {
	did := false
	l.once.Do(func() {
		did = true
		if tc, ok := l.client.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0)
		}
		_ = l.client.Close()
		_ = l.server.Close()
	})
	return did
}
