package httpapi

import (
	"container/list"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// limitLogEvery is the least time between two log lines about the bound.
const limitLogEvery = time.Minute

// connLimiter bounds the open connections of a server the way nginx does
// when worker_connections is reached: a new connection takes the place of
// the oldest one that is waiting for a request (idle between keep-alive
// requests, or accepted and silent so far), which is closed. Only when
// every open connection is serving a request is the new one closed at
// once; each of those ends within the server's read and write timeouts.
//
// A limiting listener that blocks Accept (x/net/netutil.LimitListener)
// would leave a health check waiting in the kernel's backlog for as long
// as idle clients hold every slot; shedding the idle instead keeps the
// bound and lets /health in at once.
type connLimiter struct {
	net.Listener
	max    int
	logger *slog.Logger

	mu      sync.Mutex
	open    map[net.Conn]*list.Element // every tracked connection; nil: serving a request
	waiting *list.List                 // connections waiting for a request, oldest first
	shed    int                        // waiting connections closed to make room
	refused int                        // new connections closed because none was waiting
	logged  time.Time                  // when the bound was last logged
}

func newConnLimiter(ln net.Listener, max int, logger *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, logger: logger, open: make(map[net.Conn]*list.Element), waiting: list.New()}
}

// Accept returns the next connection, making room for it first.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.admit(c) {
			return c, nil
		}
		c.Close()
	}
}

// admit tracks c, closing the oldest waiting connection when the bound is
// reached; it returns false when c must be refused.
func (l *connLimiter) admit(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.open) >= l.max {
		if now := time.Now(); now.Sub(l.logged) >= limitLogEvery {
			l.logged = now
			l.logger.Warn("http connections at their bound: closing the oldest idle ones", "max_connections", l.max, "shed_total", l.shed, "refused_total", l.refused)
		}
		front := l.waiting.Front()
		if front == nil {
			l.refused++
			return false
		}
		old := l.waiting.Remove(front).(net.Conn)
		delete(l.open, old)
		l.shed++
		old.Close() // its serving goroutine sees the error and ends
	}
	l.open[c] = l.waiting.PushBack(c)
	return true
}

// connState is the server's ConnState hook: it keeps the waiting list.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.open[c]
	if !ok {
		return // shed already, or not from this listener
	}
	switch st {
	case http.StateActive:
		if e != nil {
			l.waiting.Remove(e)
			l.open[c] = nil
		}
	case http.StateIdle:
		if e != nil {
			l.waiting.Remove(e)
		}
		l.open[c] = l.waiting.PushBack(c)
	case http.StateHijacked, http.StateClosed:
		if e != nil {
			l.waiting.Remove(e)
		}
		delete(l.open, c)
	}
}
