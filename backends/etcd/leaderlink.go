package etcd

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Renewals to etcd's leader: a keep-alive request that reaches an etcd
// follower is forwarded to the leader, one HTTP request each (etcd renews
// leases only on its leader), which with thousands of sessions costs the
// follower and the leader more than the renewal itself. So the sessions of
// one client keep their keep-alive streams on a connection of their own to
// the leader's endpoint, found with a Status request to each endpoint. The
// link is only a preference: while the leader is not known (at first, after
// a pinned stream broke) the streams use the client's own connection, as
// before; a keep-alive answer from a newer raft term than the one the
// leader was found in makes the link look again, at most every
// probeInterval (every probeRetry while no leader was found: etcd may be
// electing one), each endpoint given probeTimeout to answer.
const (
	probeInterval = 5 * time.Second
	probeRetry    = time.Second
	probeTimeout  = 2 * time.Second
)

// leaderLink is the connection to etcd's leader shared by the sessions of
// one client.
type leaderLink struct {
	cli    *clientv3.Client
	refs   int // under links.mu
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	conn    *grpc.ClientConn   // to the leader's endpoint; nil: not known
	term    uint64             // raft term in which conn's endpoint led
	old     []*grpc.ClientConn // earlier conns, closed with the link
	probing bool
	lastTry time.Time
}

// links holds the leader link of every client in use.
var links = struct {
	mu sync.Mutex
	m  map[*clientv3.Client]*leaderLink
}{m: map[*clientv3.Client]*leaderLink{}}

// acquireLink returns the leader link of cli, creating it on first use;
// release it when the session ends. With a single endpoint it never
// connects: there is no other member to prefer.
func acquireLink(cli *clientv3.Client) *leaderLink {
	links.mu.Lock()
	defer links.mu.Unlock()
	l := links.m[cli]
	if l == nil {
		ctx, cancel := context.WithCancel(context.Background())
		l = &leaderLink{cli: cli, ctx: ctx, cancel: cancel}
		links.m[cli] = l
	}
	l.refs++
	return l
}

// release drops one reference; the last closes the link's connections.
func (l *leaderLink) release() {
	links.mu.Lock()
	l.refs--
	last := l.refs == 0
	if last {
		delete(links.m, l.cli)
	}
	links.mu.Unlock()
	if !last {
		return
	}
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, conn := range append(l.old, l.conn) {
		if conn != nil {
			conn.Close()
		}
	}
	l.conn, l.old = nil, nil
}

// get returns the connection to the leader and the raft term it was found
// in, or nil when it is not known (and starts looking for it).
func (l *leaderLink) get() (*grpc.ClientConn, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		l.probeLocked()
	}
	return l.conn, l.term
}

// broken reports that a stream on conn broke: the leader is looked for
// again, and until it is found the streams use the client's connection.
func (l *leaderLink) broken(conn *grpc.ClientConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if conn != nil && conn == l.conn {
		l.retireLocked()
		l.probeLocked()
	}
}

// seen reports a keep-alive answer of raft term term: from a newer term
// than the leader was found in, the leader may have changed.
func (l *leaderLink) seen(term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && term > l.term {
		l.probeLocked()
	}
}

func (l *leaderLink) retireLocked() {
	l.old = append(l.old, l.conn)
	l.conn = nil
	if len(l.old) > 4 {
		// Long unused: streams move to the newest conn at their next
		// renewal.
		l.old[0].Close()
		l.old = l.old[1:]
	}
}

// probeLocked starts looking for the leader unless a probe runs or ran
// less than an interval ago.
func (l *leaderLink) probeLocked() {
	if l.probing || time.Since(l.lastTry) < probeInterval || len(l.cli.Endpoints()) < 2 || l.ctx.Err() != nil {
		return
	}
	l.probing = true
	l.lastTry = time.Now()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		ep, term := l.findLeader()
		var conn *grpc.ClientConn
		if ep != "" {
			var err error
			if conn, err = l.cli.Dial(ep); err != nil {
				conn = nil
			}
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.probing = false
		if conn == nil {
			l.lastTry = time.Now().Add(probeRetry - probeInterval)
			return
		}
		if l.ctx.Err() != nil {
			conn.Close()
			return
		}
		if l.conn != nil {
			l.retireLocked()
		}
		l.conn, l.term = conn, term
	}()
}

// findLeader asks every endpoint for its status and returns the endpoint
// of the member that reports itself the leader, with the raft term.
func (l *leaderLink) findLeader() (string, uint64) {
	eps := l.cli.Endpoints()
	ctx, cancel := context.WithTimeout(l.ctx, probeTimeout)
	defer cancel()
	type found struct {
		ep   string
		term uint64
	}
	ch := make(chan found, len(eps))
	for _, ep := range eps {
		go func() {
			st, err := l.cli.Status(ctx, ep)
			if err != nil || st.Header == nil || st.Leader == 0 || st.Header.MemberId != st.Leader {
				ch <- found{}
				return
			}
			ch <- found{ep, st.RaftTerm}
		}()
	}
	for range eps {
		if f := <-ch; f.ep != "" {
			return f.ep, f.term
		}
	}
	return "", 0
}
