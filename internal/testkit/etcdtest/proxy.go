package etcdtest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy from a loopback address to one etcd endpoint. A test
// points a client at Endpoint and then cuts, delays or heals the path.
//
// Cut silences the path in both directions while leaving every connection
// open, as a partition does: bytes are held, not dropped, and nothing is
// closed, so neither side sees an error. Heal delivers what was held and
// resumes. SetDelay holds every chunk for a fixed time before passing it on.
// Reset closes the open connections.
type Proxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	cond  *sync.Cond
	cut   bool
	delay time.Duration
	done  bool
	conns map[net.Conn]struct{}

	bytes atomic.Int64
	last  time.Time // when bytes last passed; guarded by mu
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target (a URL such as http://127.0.0.1:2379 or
// a host:port) and stops it in tb.Cleanup.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	target = strings.TrimPrefix(strings.TrimPrefix(target, "http://"), "https://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("etcdtest: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Endpoint returns the proxy's client URL (http://127.0.0.1:port).
func (p *Proxy) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Cut silences the path: from now on no byte goes through in either
// direction, and connections stay open.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

// Heal ends a Cut: held bytes are delivered and traffic flows again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// SetDelay makes every chunk of bytes wait d before it is passed on (zero
// for none). It applies to chunks read from now on.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Reset closes every open connection, as a crashed middlebox would; new
// connections are accepted as before (or held, while cut).
func (p *Proxy) Reset() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Bytes returns the number of bytes passed on so far, both directions
// together.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// LastActivity returns when bytes last passed through the proxy, in either
// direction (the zero time if never). While cut, it stands still: for a
// lease kept alive through the proxy, LastActivity + TTL is then a bound
// that the server's expiry of the lease does not exceed.
func (p *Proxy) LastActivity() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Close stops the proxy, closes every connection and waits for its
// goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	for c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.done {
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.conns[in] = struct{}{}
		p.conns[out] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies from src to dst, honouring cut and delay, and closes both
// connections when either side ends. A reader stamps each chunk with its
// arrival time; the writer passes it on delay after that, so that delays do
// not add up.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 256)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		src.Close()
		dst.Close()
		for range q { // let the reader finish
		}
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	for c := range q {
		p.mu.Lock()
		delay := p.delay
		p.mu.Unlock()
		if wait := time.Until(c.at.Add(delay)); wait > 0 {
			t := time.NewTimer(wait)
			<-t.C
		}
		p.mu.Lock()
		for p.cut && !p.done {
			p.cond.Wait()
		}
		done := p.done
		p.mu.Unlock()
		if done {
			return
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
		p.bytes.Add(int64(len(c.b)))
		p.mu.Lock()
		p.last = time.Now()
		p.mu.Unlock()
	}
}
