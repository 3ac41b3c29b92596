package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// Compile-time checks of the interfaces Coordinator implements.
var (
	_ coordinator.Coordinator    = (*Coordinator)(nil)
	_ coordinator.LeaseReporter  = (*Coordinator)(nil)
	_ coordinator.SlotClaimer    = (*Coordinator)(nil)
	_ coordinator.Reopener       = (*Coordinator)(nil)
	_ coordinator.ExpiryReporter = (*Coordinator)(nil)
	_ coordinator.Failoverer     = (*Coordinator)(nil)
	_ coordinator.LastPositioner = (*Coordinator)(nil)
)

// fenceGrace is how long Close waits for the record of a fenced term
// (history.go) that could not be written yet.
const fenceGrace = time.Second

// Coordinator is one member's handle on one cluster, backed by etcd. It
// owns a session (a lease that it keeps alive itself, see the package
// comment) and runs the election, the registry and the watches on it.
// Create it with New or NewWithClient; call Close when done, also after
// the session was lost, to release its resources.
type Coordinator struct {
	cfg        Config
	cli        *clientv3.Client
	ownsClient bool
	log        *slog.Logger
	clk        clock.Clock
	keys       keys
	s          *session // the lease; its context and Done end everything below

	closeOnce sync.Once
	closeErr  error
	campaign  sync.Mutex // one Campaign at a time

	// herdPerMember and herdMax size the delay before a campaign's attempt
	// (herdWindow); always the package's constants but in tests.
	herdPerMember, herdMax time.Duration
	// recountMin and recountMax bound the time between two counts of the
	// member records by a waiting campaign (recountDelay); counted is the
	// latest count, counting is set while one runs.
	recountMin, recountMax time.Duration
	counted                atomic.Int64
	// plainRule turns the ranking off (decide.go, self.plain): in the
	// benchmarks only, for a comparison.
	plainRule  bool
	counting   atomic.Bool
	rejects    rejectLog  // keys read from etcd that failed the checks (keys.go)
	slotLeases slotLeases // the leases of the slot claims (see slots.go)

	mu        sync.Mutex
	leader    *leadership // the current term, if any
	lastEnded int64       // token of the latest term this handle ended

	// fenceStop stops the writing of a fenced term's record; fenced is
	// closed when it is over (history.go). Nil unless the session ended
	// by fencing while leading.
	fenceStop context.CancelFunc
	fenced    chan struct{}

	warnMu sync.Mutex
	warned map[string]int64 // history records warned about (history.go)
}

// New connects to etcd with cfg's connection fields, opens a session and
// returns the member's handle. The handle owns the client and closes it in
// Close. Errors wrap coordinator.ErrInvalidConfig or
// coordinator.ErrUnavailable.
func New(ctx context.Context, cfg Config) (*Coordinator, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	cli, err := NewClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c, err := newCoordinator(ctx, cli, cfg, true)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return c, nil
}

// NewWithClient opens a session on a client the caller owns (and closes
// after every handle using it is closed), so that many members can share one
// connection. The connection fields of cfg are ignored.
func NewWithClient(ctx context.Context, cli *clientv3.Client, cfg Config) (*Coordinator, error) {
	if cli == nil {
		return nil, invalid("nil client")
	}
	return newCoordinator(ctx, cli, cfg, false)
}

func newCoordinator(ctx context.Context, cli *clientv3.Client, cfg Config, owns bool) (*Coordinator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:        cfg,
		cli:        cli,
		ownsClient: owns,
		log:        cfg.Logger.With("member", cfg.ID, "cluster", cfg.Cluster.String()),
		clk:        cfg.Clock,
		keys:       newKeys(cfg.Prefix, cfg.Cluster),

		herdPerMember: herdPerMember,
		herdMax:       herdMaxWindow,
		recountMin:    recountMin,
		recountMax:    recountMax,
	}
	if c.s, err = openSession(ctx, cli, cfg, c.log, c.sessionEnded); err != nil {
		return nil, err
	}
	if err := c.claimID(ctx); err != nil { // registry.go
		c.Close()
		return nil, err
	}
	return c, nil
}

// sessionEnded ends the current term as the session ends, before the
// session's Done closes.
func (c *Coordinator) sessionEnded(err error, why string) {
	c.mu.Lock()
	l := c.leader
	c.leader = nil
	if l != nil && errors.Is(err, coordinator.ErrLeaseDeadline) {
		// Say in the history, once etcd answers again, that this term
		// ended by fencing rather than by a crash.
		var fctx context.Context
		fctx, c.fenceStop = context.WithCancel(context.Background())
		c.fenced = make(chan struct{})
		c.s.wg.Add(1) // before Done closes, so before Close waits
		go func(token int64, at time.Time) {
			defer c.s.wg.Done()
			defer close(c.fenced)
			c.recordFenced(fctx, token, at)
		}(l.token, c.clk.Now())
	}
	c.mu.Unlock()
	if l != nil && l.end(err) {
		c.log.Log(context.Background(), endLevel(err), "leadership lost", "token", l.token, "reason", why)
	}
}

// ID returns this member's id.
func (c *Coordinator) ID() string { return c.cfg.ID }

// Cluster returns the cluster of this handle.
func (c *Coordinator) Cluster() coordinator.Cluster { return c.cfg.Cluster }

// LeaseID returns the id of the session's etcd lease.
func (c *Coordinator) LeaseID() clientv3.LeaseID { return c.s.lease }

// Done is closed when the session has ended (closed or lost).
func (c *Coordinator) Done() <-chan struct{} { return c.s.done }

// Err returns nil while the session lives, then why it ended:
// coordinator.ErrSessionClosed after Close, coordinator.ErrLeaseDeadline
// when no renewal was acknowledged in time, coordinator.ErrSessionExpired
// when etcd reported the lease gone.
func (c *Coordinator) Err() error { return c.s.Err() }

// LeaseRemaining returns the time left before the session is given up for
// lack of renewal (zero once it has ended).
func (c *Coordinator) LeaseRemaining() time.Duration { return c.s.remaining() }

// remaining returns the time left before the deadline (zero once the
// session has ended or is closing).
func (s *session) remaining() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closing {
		return 0
	}
	return max(s.deadline.Sub(s.clk.Now()), 0)
}

// LeaseExpiresIn returns how long from now until etcd could first expire
// the session's lease: the session's deadline plus the margin. It keeps its
// meaning after the session was given up for lack of renewal; it is zero
// when etcd reported the lease gone or the session was closed.
func (c *Coordinator) LeaseExpiresIn() time.Duration { return c.s.expiresIn() }

// expiresIn returns how long from now until etcd could first expire the
// lease (see Coordinator.LeaseExpiresIn).
func (s *session) expiresIn() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || errors.Is(s.err, coordinator.ErrSessionExpired) || errors.Is(s.err, coordinator.ErrSessionClosed) {
		return 0
	}
	return s.deadline.Add(s.cfg.Margin).Sub(s.clk.Now())
}

// Reopen opens a new session for this member on the same client once this
// one has ended (see coordinator.Reopener): it revokes the old lease if etcd
// still has it, so that neither the old record nor a leader key of the old
// session outlives it, then opens the new session. The new handle owns the
// client if this one did; close this one as usual.
func (c *Coordinator) Reopen(ctx context.Context) (coordinator.Coordinator, error) {
	ended, closing := c.s.ended()
	switch {
	case closing:
		return nil, fmt.Errorf("reopen %s: %w", c.cfg.ID, coordinator.ErrSessionClosed)
	case !ended:
		return nil, fmt.Errorf("reopen %s: the session lives", c.cfg.ID)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	_, err := c.cli.Revoke(rctx, c.s.lease)
	cancel()
	if err != nil && !isLeaseNotFound(err) {
		return nil, fmt.Errorf("reopen %s: revoke lease %x: %w", c.cfg.ID, int64(c.s.lease), unavailable(c.cli.Endpoints(), err))
	}
	n, err := newCoordinator(ctx, c.cli, c.cfg, false)
	if err != nil {
		return nil, fmt.Errorf("reopen %s: %w", c.cfg.ID, err)
	}
	c.mu.Lock()
	n.ownsClient, c.ownsClient = c.ownsClient, false
	c.mu.Unlock()
	n.log.Info("session reopened", "lease", fmt.Sprintf("%x", int64(n.s.lease)), "old_lease", fmt.Sprintf("%x", int64(c.s.lease)))
	return n, nil
}

// check returns an error wrapping coordinator.ErrSessionClosed once the
// session has ended or is closing.
func (c *Coordinator) check(op string) error { return c.s.check(op) }

// Close resigns any leadership, revokes the session's lease (which deletes
// the member record and the leader key at once) and ends the session. After
// a loss it only releases resources: the lease is dead or about to be. It is
// idempotent; every call returns the first call's error.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		lost := c.s.beginClose()
		c.mu.Lock()
		l := c.leader
		c.leader = nil
		c.mu.Unlock()
		if l != nil {
			l.end(coordinator.ErrResigned)
			if !lost {
				// Closed while leading without a Resign: the lease's
				// revocation below releases the leadership.
				ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DialTimeout)
				if _, err := c.cli.Txn(ctx).Then(c.historyResignOp(l.token)).Commit(); err != nil {
					c.log.Warn("history: record the term's end", "token", l.token, "err", err)
				}
				cancel()
			}
		}
		c.mu.Lock()
		fenceStop, fenced := c.fenceStop, c.fenced
		c.mu.Unlock()
		if fenceStop != nil {
			// Real time, not the clock: Close returns within fenceGrace
			// whatever drives the session.
			t := time.NewTimer(fenceGrace)
			select {
			case <-fenced:
			case <-t.C:
			}
			t.Stop()
			fenceStop()
		}
		c.closeErr = c.s.close(lost)
		c.mu.Lock()
		owns := c.ownsClient
		c.mu.Unlock()
		if owns {
			c.cli.Close()
		}
		c.log.Debug("session closed")
	})
	return c.closeErr
}

// session is one member's etcd lease, kept alive by its own renewals,
// and the local deadline past which it is given up (see the package
// comment, Self-fencing). Its end is reported in one place: Done closes,
// then Err says why; onEnd, given by what uses the session (the election),
// runs first, so that a term ends before the session's Done closes. The
// election, the registry and the watches take the session as etcd's
// concurrency.NewElection takes a Session: they run their requests under
// its context and their goroutines with spawn, and stop with it.
type session struct {
	cfg   Config
	cli   *clientv3.Client
	log   *slog.Logger
	clk   clock.Clock
	link  *leaderLink // where keep-alive streams go (see leaderlink.go); nil without a lease
	lease clientv3.LeaseID
	onEnd func(err error, why string)

	// ctx is cancelled when the session ends; the session's own requests
	// (keep-alives) and those of what uses it (leadership monitors,
	// watches) run under it.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup // the keep-alive loop and what spawn started

	renewedBy atomic.Uint64 // the etcd member that answered the latest keep-alive

	mu       sync.Mutex
	err      error       // why the session ended; nil while it lives
	closing  bool        // close has begun
	deadline time.Time   // when the session is given up without renewal
	timer    clock.Timer // fires at deadline
}

// newSession returns a session with no lease, not ended (an Observer's:
// it only scopes requests and goroutines).
func newSession(cfg Config, log *slog.Logger) *session {
	s := &session{cfg: cfg, log: log, clk: cfg.Clock, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// openSession grants a lease of cfg.TTL on cli and keeps it alive; onEnd
// runs when the session ends, before Done closes.
func openSession(ctx context.Context, cli *clientv3.Client, cfg Config, log *slog.Logger, onEnd func(err error, why string)) (*session, error) {
	s := newSession(cfg, log)
	s.cli, s.onEnd, s.link = cli, onEnd, acquireLink(cli)
	gctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	// Open the keep-alive stream before the lease exists: opening may take
	// a while (with authentication, the client authenticates again), and
	// the lease's clock starts with the grant.
	streams := new(sync.WaitGroup)
	ks := s.openStream(streams, nil, 0)
	select {
	case <-ks.ready:
	case <-gctx.Done():
	}
	sent := s.clk.Now()
	resp, err := cli.Grant(gctx, int64(cfg.TTL/time.Second))
	if err != nil {
		s.cancel()
		streams.Wait()
		s.link.release()
		return nil, fmt.Errorf("open session of %s: %w", cfg.ID, unavailable(cli.Endpoints(), err))
	}
	s.lease = resp.ID
	s.mu.Lock()
	s.deadline = s.expiry(sent, resp.TTL)
	s.timer = s.clk.AfterFunc(s.deadline.Sub(s.clk.Now()), s.onDeadline)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.keepAlive(ks, streams)
	s.log.Debug("session opened", "lease", fmt.Sprintf("%x", int64(s.lease)), "ttl", cfg.TTL)
	return s, nil
}

// expiry returns when the session must be given up, given a renewal sent
// at sent and acknowledged with ttl seconds.
func (s *session) expiry(sent time.Time, ttl int64) time.Time {
	d := min(time.Duration(ttl)*time.Second, s.cfg.TTL)
	return sent.Add(d - s.cfg.Margin)
}

// check returns an error wrapping coordinator.ErrSessionClosed once the
// session has ended or is closing.
func (s *session) check(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closing {
		return fmt.Errorf("%s %s: %w", op, s.cfg.ID, coordinator.ErrSessionClosed)
	}
	return nil
}

// Err returns nil while the session lives, then why it ended.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ended reports whether the session has ended, and whether it is closing.
func (s *session) ended() (ended, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil, s.closing
}

// add counts one more goroutine that close waits for, unless the session
// is closing or has ended; it reports whether it did.
func (s *session) add() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// spawn runs f in a goroutine that close waits for, unless the session is
// closing or has ended; it reports whether it did.
func (s *session) spawn(f func()) bool {
	if !s.add() {
		return false
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// keepAlive sends a keep-alive request every RenewInterval on a
// keep-alive stream of its own, opening a new stream as soon as the last one
// broke. A renewal that could not be sent (the stream was opening or broke)
// stays due and is sent the moment a stream is open, and a stream that broke
// lost the requests it had unanswered, so the first request on the next one
// goes at once: after an outage the session is renewed one round trip after
// etcd answers again, not a renew interval later. Requests and answers on
// one stream are in order, so each answer is matched with the send time of
// the oldest unanswered request. When the leader link knows etcd's leader
// and the stream is elsewhere, it opens a stream to the leader and moves to
// it once it is open.
func (s *session) keepAlive(ks *kaStream, streams *sync.WaitGroup) {
	defer s.wg.Done()
	defer streams.Wait()
	var next *kaStream // opening on the leader's connection
	waited := 0        // renewals sent while next was opening
	defer func() {
		for _, s := range []*kaStream{ks, next} {
			if s != nil {
				s.cancel()
			}
		}
	}()
	t := s.clk.NewTimer(s.cfg.RenewInterval)
	defer t.Stop()
	due := false          // a renewal is due and not sent yet
	var pause clock.Timer // before the next stream, after one that broke at once
	defer func() {
		if pause != nil {
			pause.Stop()
		}
	}()
	for {
		var opened, broke <-chan struct{}
		var pauseC <-chan time.Time
		if ks != nil {
			broke = ks.brokeCh
			if due {
				opened = ks.ready
			}
		}
		if pause != nil {
			pauseC = pause.C()
		}
		tick := false
		select {
		case <-s.ctx.Done():
			return
		case <-t.C():
			t.Reset(s.cfg.RenewInterval)
			due, tick = true, true
		case <-opened:
		case <-broke:
			due = true // what it carried unanswered is lost
		case <-pauseC:
			pause = nil
		}
		if ks != nil && ks.broken() {
			ks.cancel()
			if s.clk.Now().Sub(ks.opened) < retryDelay && pause == nil {
				// Broke as soon as it was opened: pause before the
				// next, so that a stream etcd refuses at once is not
				// reopened in a busy loop.
				pause = s.clk.NewTimer(retryDelay)
			}
			ks = nil
		}
		conn, term := s.link.get()
		if tick && next != nil {
			ks, next = s.promote(ks, next, &waited)
		}
		switch {
		case ks == nil && pause == nil:
			// A new stream starts on the client's connection, which
			// reaches every endpoint; it moves to the leader's once a
			// stream there is open.
			ks = s.openStream(streams, nil, 0)
		case ks != nil && tick && conn != nil && ks.conn != conn && next == nil:
			next, waited = s.openStream(streams, conn, term), 0
		}
		if due && ks != nil && ks.send(s) {
			due = false
		}
	}
}

// promote, at a renewal, replaces ks by next (the stream opening on the
// leader's connection) once next is open, drops next if it broke, and
// gives it up when it is still opening after a few renewals (waited
// counts them): opening waits for a connection, for ever if the endpoint
// is gone. It returns the stream to use and the one still opening.
func (s *session) promote(ks, next *kaStream, waited *int) (*kaStream, *kaStream) {
	select {
	case <-next.ready:
		if next.broken() {
			next.cancel()
			return ks, nil
		}
		if ks != nil {
			ks.cancel()
		}
		return next, nil
	default:
		if *waited++; *waited > 2 {
			next.cancel()
			s.link.broken(next.conn)
			return ks, nil
		}
		return ks, next
	}
}

// kaStream is one keep-alive stream and the send times of its unanswered
// requests.
type kaStream struct {
	cancel  context.CancelFunc
	ready   chan struct{}    // closed once the stream is open or failed to open
	brokeCh chan struct{}    // closed when the stream broke or failed to open
	conn    *grpc.ClientConn // the leader link's connection; nil: the client's
	opened  time.Time        // when it was asked for

	mu        sync.Mutex
	stream    pb.Lease_LeaseKeepAliveClient // nil while opening
	sent      []time.Time
	err       error // set when the stream broke
	brokeOnce sync.Once
}

// openStream opens a keep-alive stream on conn (nil: the client's
// connection) in a goroutine (opening waits for a connection) that then
// receives its answers until it breaks. term is the raft term in which
// conn's endpoint was found leading.
func (s *session) openStream(wg *sync.WaitGroup, conn *grpc.ClientConn, term uint64) *kaStream {
	ctx, cancel := context.WithCancel(s.ctx)
	ks := &kaStream{cancel: cancel, ready: make(chan struct{}), brokeCh: make(chan struct{}), conn: conn, opened: s.clk.Now()}
	if conn == nil {
		conn = s.cli.ActiveConnection()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		stream, err := pb.NewLeaseClient(conn).LeaseKeepAlive(ctx, grpc.WaitForReady(true))
		if err != nil {
			ks.fail(s, err, ctx.Err() != nil)
			close(ks.ready)
			return
		}
		ks.mu.Lock()
		ks.stream = stream
		ks.mu.Unlock()
		close(ks.ready)
		s.log.Debug("keep-alive stream open")
		for {
			resp, err := stream.Recv()
			if err != nil {
				ks.fail(s, err, ctx.Err() != nil)
				return
			}
			ks.mu.Lock()
			if len(ks.sent) == 0 {
				ks.mu.Unlock()
				continue
			}
			sent := ks.sent[0]
			ks.sent = ks.sent[1:]
			ks.mu.Unlock()
			if resp.TTL <= 0 {
				s.lose(coordinator.ErrSessionExpired, "etcd reports the lease gone")
				return
			}
			s.extend(sent, resp.TTL)
			if resp.Header != nil {
				s.renewedBy.Store(resp.Header.MemberId)
			}
			if ks.conn != nil && resp.Header != nil && resp.Header.RaftTerm > term {
				s.link.seen(resp.Header.RaftTerm)
			}
		}
	}()
	return ks
}

// fail records that the stream broke; cancelled says it was closed on
// purpose (replaced, or the session ended).
func (ks *kaStream) fail(s *session, err error, cancelled bool) {
	ks.mu.Lock()
	ks.err = err
	ks.mu.Unlock()
	ks.brokeOnce.Do(func() { close(ks.brokeCh) })
	if !cancelled {
		s.link.broken(ks.conn)
		s.log.Warn("keep-alive stream broke", "err", err)
	}
}

func (ks *kaStream) broken() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.err != nil
}

// send sends one keep-alive request, recording its send time first, and
// reports whether it was sent: not while the stream is opening or broken.
func (ks *kaStream) send(s *session) bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.stream == nil || ks.err != nil {
		return false
	}
	ks.sent = append(ks.sent, s.clk.Now())
	if err := ks.stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(s.lease)}); err != nil {
		ks.sent = ks.sent[:len(ks.sent)-1]
		ks.err = err
		ks.brokeOnce.Do(func() { close(ks.brokeCh) })
		return false
	}
	return true
}

// extend moves the deadline to what an answer to a request sent at sent,
// granting ttl seconds, proves.
func (s *session) extend(sent time.Time, ttl int64) {
	deadline := s.expiry(sent, ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || !deadline.After(s.deadline) {
		return
	}
	s.deadline = deadline
	s.timer.Reset(deadline.Sub(s.clk.Now()))
}

// onDeadline runs when the deadline timer fires.
func (s *session) onDeadline() {
	if !selfFencing {
		return
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if left := s.deadline.Sub(s.clk.Now()); left > 0 {
		// Extended after the timer fired.
		s.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.lose(coordinator.ErrLeaseDeadline, "no renewal acknowledged in time")
}

// lose ends the session for err: onEnd first (the leadership's Done),
// then the session's Done.
func (s *session) lose(err error, why string) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if s.closing {
		// Close is revoking the lease: the end is a close, not a loss.
		err, why = coordinator.ErrSessionClosed, "closed"
	}
	s.err = err
	s.mu.Unlock()
	if s.onEnd != nil {
		s.onEnd(err, why)
	}
	s.log.Log(context.Background(), endLevel(err), "session ended", "reason", why)
	s.cancel()
	close(s.done)
}

// endLevel is the level of the log lines that say a session or a term
// ended for err: an error unless it was closed.
func endLevel(err error) slog.Level {
	if errors.Is(err, coordinator.ErrSessionClosed) {
		return slog.LevelDebug
	}
	return slog.LevelError
}

// beginClose marks the session as closing (no term, no goroutine starts
// from then on) and reports whether it had already ended.
func (s *session) beginClose() (ended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	return s.err != nil
}

// end ends the session for err unless it has ended: Done closes, its
// context is cancelled.
func (s *session) end(err error) {
	s.mu.Lock()
	first := s.err == nil
	if first {
		s.err = err
	}
	s.mu.Unlock()
	if first {
		s.cancel()
		close(s.done)
	}
}

// close revokes the lease unless the session ended (lost: the lease is
// dead or about to be), ends the session and waits for its goroutines.
func (s *session) close(lost bool) error {
	var err error
	if !lost {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
		_, rerr := s.cli.Revoke(ctx, s.lease)
		cancel()
		if rerr != nil && !errors.Is(rerr, rpctypes.ErrLeaseNotFound) {
			err = fmt.Errorf("close %s: revoke lease: %w", s.cfg.ID, rerr)
		}
	}
	s.end(coordinator.ErrSessionClosed)
	s.mu.Lock()
	t := s.timer
	s.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	s.wg.Wait()
	if s.link != nil {
		s.link.release()
	}
	return err
}

// keys are the etcd keys of one cluster.
type keys struct {
	base        string // <prefix>/<env>/<service>/
	members     string
	leaders     string // election/: the leader's key is election/<id>
	heir        string
	waitFrom    string // start of the range campaigns watch
	waitEnd     string // its end
	heirEnd     string // the end of the range without the leader key
	pause       string
	switchover  string
	slots       string
	controlPref string
	history     string
	candidates  string // candidates/: a key per campaigning member (rank.go)
	lastPos     string // the last master's position (rank.go)
}

func newKeys(prefix string, c coordinator.Cluster) keys {
	base := strings.Join([]string{prefix, c.Environment, c.Service}, "/") + "/"
	return keys{
		base:        base,
		members:     base + "members/",
		leaders:     base + "election/",
		heir:        base + "election-heir", // outside election/: etcdctl elect -l shows the leader
		waitFrom:    base + "control/",
		waitEnd:     base + "election0", // '0' follows '/': the end of election/
		heirEnd:     base + "election/", // control/..., election-heir: no leader key
		pause:       base + "control/pause",
		switchover:  base + "control/switchover",
		slots:       base + "slots/",
		controlPref: base + "control/",
		history:     base + "history/",
		candidates:  base + "candidates/",
		lastPos:     base + "last_position",
	}
}

// leaderOf returns the key member id holds while it leads.
func (k keys) leaderOf(id string) string { return k.leaders + id }

// sessionErr maps an error of a request made with the session's lease:
// a lease etcd does not know means the session is over.
func (c *Coordinator) sessionErr(op string, err error) error {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		c.s.lose(coordinator.ErrSessionExpired, "etcd reports the lease gone")
		return fmt.Errorf("%s %s: %w", op, c.cfg.ID, coordinator.ErrSessionClosed)
	}
	if err := c.check(op); err != nil {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, c.cfg.ID, err)
}

// spawn runs f in a goroutine that Close waits for, unless the session is
// closing or has ended; it reports whether it did.
func (c *Coordinator) spawn(f func()) bool { return c.s.spawn(f) }

func isLeaseNotFound(err error) bool { return errors.Is(err, rpctypes.ErrLeaseNotFound) }
