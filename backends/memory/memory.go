package memory

import (
	"context"
	"errors"
	"fmt"
	"github.com/ccctl/ccctl/backends/memory/internal/faults"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

var (
	_ coordinator.Coordinator    = (*Coordinator)(nil)
	_ coordinator.LeaseReporter  = (*Coordinator)(nil)
	_ coordinator.SlotClaimer    = (*Coordinator)(nil)
	_ coordinator.Reopener       = (*Coordinator)(nil)
	_ coordinator.ExpiryReporter = (*Coordinator)(nil)
	_ coordinator.Failoverer     = (*Coordinator)(nil)
	_ coordinator.LastPositioner = (*Coordinator)(nil)
	_ coordinator.Leadership     = (*term)(nil)
)

// DefaultTTL is the session TTL when Config.TTL is zero.
const DefaultTTL = 10 * time.Second

// Config configures one member's Coordinator.
type Config struct {
	// Cluster is the cluster the member belongs to.
	Cluster coordinator.Cluster
	// ID is the member's id (see coordinator.ValidateName).
	ID string
	// TTL is the session lease's time to live. Zero means DefaultTTL.
	TTL time.Duration
	// Margin is how long before the lease could expire in the store the
	// member gives up its session and leadership when no renewal was
	// acknowledged (self-fencing). Zero means TTL/10.
	Margin time.Duration
	// RenewInterval is how often the lease is renewed. Zero means TTL/3.
	// It must be shorter than TTL - Margin, so that a renewal is tried
	// before the member fences itself.
	RenewInterval time.Duration
	// Logger receives one line per session or leadership change, with the
	// member id and the cluster. Nil means slog.Default().
	Logger *slog.Logger
	// HistorySize is how many master terms the cluster's history keeps
	// when this member's term begins. Zero means
	// coordinator.DefaultHistorySize.
	HistorySize int
	// Ranking is this member's priority and how it ranks the others at a
	// vacancy (coordinator.Ranking; the zero value: priority 1, no lag
	// limit, the default failover wait).
	Ranking coordinator.Ranking
}

// withDefaults returns cfg with zero durations replaced by their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Margin == 0 {
		cfg.Margin = cfg.TTL / 10
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = cfg.TTL / 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = coordinator.DefaultHistorySize
	}
	return cfg
}

// validate checks cfg after defaults were applied.
func (cfg Config) validate() error {
	if err := cfg.Cluster.Validate(); err != nil {
		return err
	}
	if err := coordinator.ValidateName("member id", cfg.ID); err != nil {
		return err
	}
	if err := coordinator.CheckTTL(cfg.TTL); err != nil {
		return err
	}
	switch {
	case cfg.Margin < 0:
		return fmt.Errorf("margin %v: want >= 0", cfg.Margin)
	case cfg.HistorySize < 0 || cfg.HistorySize > coordinator.MaxHistorySize:
		return fmt.Errorf("history size %d: want 1 to %d", cfg.HistorySize, coordinator.MaxHistorySize)
	case cfg.RenewInterval < 0:
		return fmt.Errorf("renew interval %v: want > 0", cfg.RenewInterval)
	case cfg.Margin >= cfg.TTL:
		return fmt.Errorf("margin %v: want less than the ttl %v", cfg.Margin, cfg.TTL)
	case cfg.RenewInterval+cfg.Margin >= cfg.TTL:
		return fmt.Errorf("ttl %v: want more than renew interval %v + margin %v", cfg.TTL, cfg.RenewInterval, cfg.Margin)
	case cfg.Ranking.Priority > coordinator.MaxPriority:
		return fmt.Errorf("priority %d: want 0 to %d", cfg.Ranking.Priority, coordinator.MaxPriority)
	case cfg.Ranking.MaxLag < 0:
		return fmt.Errorf("maximum lag %d: want >= 0 (0: no limit)", cfg.Ranking.MaxLag)
	case cfg.Ranking.FailoverWait < 0:
		return fmt.Errorf("failover wait %v: want >= 0 (0: a quarter of the ttl)", cfg.Ranking.FailoverWait)
	}
	return nil
}

// Coordinator is one member's handle on one cluster of a Store. It
// implements coordinator.Coordinator, coordinator.LeaseReporter,
// coordinator.SlotClaimer, coordinator.Failoverer and
// coordinator.LastPositioner. Create it with New; end it with Close.
type Coordinator struct {
	store *Store
	cfg   Config
	id    string
	cl    *cluster
	lease *lease
	log   *slog.Logger
	done  chan struct{} // closed by endLocked
	stop  chan struct{} // closed by Close, after the session ended

	renewTimer    clock.Timer // owned by keepAlive; reset under store.mu
	deadlineTimer clock.Timer // owned by keepAlive

	// Guarded by store.mu.
	err     error     // why the session ended
	lastAck time.Time // time of the last acknowledged renewal
	cut     bool      // renewals and calls do not reach the store
	crashed bool      // the member is dead: nothing reaches the store any more
	term    *term     // the current term, if leading

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // keep-alive and watch goroutines
}

// New opens a session for member cfg.ID in cfg.Cluster of store, and starts
// renewing it. The member is not registered yet.
func New(store *Store, cfg Config) (*Coordinator, error) {
	if store == nil {
		return nil, fmt.Errorf("new memory coordinator: %w: nil store", coordinator.ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new memory coordinator: %w: %w", coordinator.ErrInvalidConfig, err)
	}
	c := &Coordinator{
		store: store,
		cfg:   cfg,
		id:    cfg.ID,
		log:   cfg.Logger.With("member", cfg.ID, "cluster", cfg.Cluster.String()),
		done:  make(chan struct{}),
		stop:  make(chan struct{}),
	}
	store.mu.Lock()
	store.expireDueLocked()
	c.cl = store.clusterLocked(cfg.Cluster)
	c.lease = store.grantLeaseLocked(c, c.cl, cfg.TTL)
	c.lastAck = c.lease.renewedAt
	c.renewTimer = store.clock.NewTimer(cfg.RenewInterval)
	c.deadlineTimer = store.clock.NewTimer(cfg.TTL - cfg.Margin)
	c.wg.Add(1)
	store.mu.Unlock()
	go c.keepAlive()
	return c, nil
}

// keepAlive renews the lease every RenewInterval and fences the member when
// no renewal was acknowledged for TTL - Margin.
func (c *Coordinator) keepAlive() {
	defer c.wg.Done()
	defer c.deadlineTimer.Stop()
	defer c.renewTimer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.done:
			return
		case <-c.renewTimer.C():
			c.renew()
		case <-c.deadlineTimer.C():
			next, ended := c.checkDeadline()
			if ended {
				return
			}
			c.deadlineTimer.Reset(next)
		}
	}
}

// renew makes the renewals that are due and re-arms the renewal timer.
func (c *Coordinator) renew() {
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	c.renewTimer.Reset(c.cfg.RenewInterval)
	if c.err != nil || c.cut {
		return
	}
	s.expireDueLocked() // renews c's lease on schedule, or expires it
	if !s.aliveLocked(c.lease) {
		c.endLocked(coordinator.ErrSessionExpired, coordinator.ErrSessionExpired)
		return
	}
	c.releaseStaleLocked()
}

// releaseStaleLocked deletes the leader key of a term of this member that
// has ended while the key could not be deleted (a Resign while cut off), as
// a real client retries the deletion once it is connected again.
func (c *Coordinator) releaseStaleLocked() {
	s, cl := c.store, c.cl
	if c.cut || !s.aliveLocked(c.lease) {
		return
	}
	if t := cl.leader; t != nil && t.c == c && t.err != nil {
		s.vacateLocked(cl)
		s.endTermLocked(cl, t, coordinator.ErrResigned)
		s.electLocked(cl)
	}
}

// checkDeadline ends the session when the lease could have expired in the
// store (minus the margin); otherwise it returns the time left.
func (c *Coordinator) checkDeadline() (time.Duration, bool) {
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked()
	if c.err != nil {
		return 0, true
	}
	left := c.lastAck.Add(c.cfg.TTL - c.cfg.Margin).Sub(s.clock.Now())
	if left > 0 {
		return left, false
	}
	c.endLocked(coordinator.ErrLeaseDeadline, coordinator.ErrLeaseDeadline)
	return 0, true
}

// endLocked ends the session: the term first (with termWhy), then the
// session (with why), then the member's waiting campaigns. It changes
// nothing else in the store: the lease, the record and the leader key stay
// until the lease is revoked or expires.
func (c *Coordinator) endLocked(why, termWhy error) {
	if c.err != nil {
		return
	}
	if c.term != nil {
		c.term.endLocked(termWhy)
	}
	c.err = why
	close(c.done)
	c.store.dropWaitersLocked(c.cl, c)
	if errors.Is(why, coordinator.ErrSessionClosed) {
		c.log.Info("session closed")
	} else {
		c.log.Warn("session lost", "reason", why)
	}
}

// checkLocked returns the error of an operation on an ended or cut-off
// session, or nil.
func (c *Coordinator) checkLocked(op string) error {
	c.store.expireDueLocked()
	if c.err != nil {
		return fmt.Errorf("%s %s: %w", op, c.id, coordinator.ErrSessionClosed)
	}
	if c.cut {
		return fmt.Errorf("%s %s: %w", op, c.id, coordinator.ErrUnavailable)
	}
	return nil
}

// ID returns the member's id.
func (c *Coordinator) ID() string { return c.id }

// Cluster returns the member's cluster.
func (c *Coordinator) Cluster() coordinator.Cluster { return c.cfg.Cluster }

// Done is closed when the session has ended: closed, expired in the store,
// or given up by the member for lack of acknowledged renewals.
func (c *Coordinator) Done() <-chan struct{} { return c.done }

// Err returns nil while the session lives, then why it ended:
// ErrSessionClosed, ErrSessionExpired or ErrLeaseDeadline.
func (c *Coordinator) Err() error {
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	return c.err
}

// LeaseRemaining returns how long the session lasts without another
// acknowledged renewal before the member gives it up (zero when ended).
func (c *Coordinator) LeaseRemaining() time.Duration {
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked()
	if c.err != nil {
		return 0
	}
	left := c.lastAck.Add(c.cfg.TTL - c.cfg.Margin).Sub(s.clock.Now())
	return max(left, 0)
}

// LeaseExpiresIn returns how long from now until the store could first
// expire the lease: TTL after the last acknowledged renewal. It keeps its
// meaning after the member gave the session up for lack of renewal; it is
// zero when the session was closed or expired in the store.
func (c *Coordinator) LeaseExpiresIn() time.Duration {
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked()
	if c.err != nil && !errors.Is(c.err, coordinator.ErrLeaseDeadline) {
		return 0
	}
	return c.lastAck.Add(c.cfg.TTL).Sub(s.clock.Now())
}

// Reopen opens a new session for the same member once this one has ended
// (see coordinator.Reopener). While the member is cut off (Partition) or
// crashed it fails with ErrUnavailable; otherwise it revokes the old lease
// if the store still has it, then opens the new session. Close this handle
// as usual.
func (c *Coordinator) Reopen(ctx context.Context) (coordinator.Coordinator, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reopen %s: %w", c.id, err)
	}
	s := c.store
	s.mu.Lock()
	s.expireDueLocked()
	switch {
	case c.err == nil:
		s.mu.Unlock()
		return nil, fmt.Errorf("reopen %s: the session lives", c.id)
	case errors.Is(c.err, coordinator.ErrSessionClosed):
		s.mu.Unlock()
		return nil, fmt.Errorf("reopen %s: %w", c.id, coordinator.ErrSessionClosed)
	case c.cut:
		s.mu.Unlock()
		return nil, fmt.Errorf("reopen %s: %w", c.id, coordinator.ErrUnavailable)
	}
	if s.aliveLocked(c.lease) {
		s.endLeaseLocked(c.lease, coordinator.ErrSessionClosed)
	}
	s.mu.Unlock()
	return New(s, c.cfg)
}

func init() {
	faults.Crash = func(c any) { c.(*Coordinator).crash() }
	faults.Partition = func(c any, cut bool) { c.(*Coordinator).partition(cut) }
}

// crash simulates the death of the member's process (memorytest.Crash).
func (c *Coordinator) crash() {
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked() // the renewals made before the crash count
	c.crashed = true
	c.cut = true
}

// partition cuts the member off from the store or reconnects it
// (memorytest.Partition).
func (c *Coordinator) partition(cut bool) {
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.crashed {
		return
	}
	if cut || !c.cut {
		s.expireDueLocked() // the renewals made before the cut count
		c.cut = cut
		return
	}
	// Reconnecting: the first renewal goes out now, if the lease is still
	// alive; none was made while cut off.
	s.expireDueLocked()
	c.cut = false
	if c.err != nil {
		return
	}
	if !s.aliveLocked(c.lease) {
		c.endLocked(coordinator.ErrSessionExpired, coordinator.ErrSessionExpired)
		return
	}
	s.renewAtLocked(c.lease, s.clock.Now())
	c.releaseStaleLocked()
}

// Close resigns any leadership, deletes the member record and revokes the
// lease, so that another member can take over at once. It is idempotent and
// safe for concurrent use; every call returns the first call's error. When
// the member is cut off, nothing reaches the store: Close ends the session
// locally and returns an error wrapping ErrUnavailable, and the lease
// expires on its own. After a crash (memorytest.Crash), Close only releases the handle.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		s := c.store
		s.mu.Lock()
		s.expireDueLocked()
		c.endLocked(coordinator.ErrSessionClosed, coordinator.ErrResigned)
		if s.aliveLocked(c.lease) {
			switch {
			case c.crashed:
			case c.cut:
				c.closeErr = fmt.Errorf("close %s: revoke lease: %w", c.id, coordinator.ErrUnavailable)
			default:
				s.endLeaseLocked(c.lease, coordinator.ErrSessionClosed)
			}
		}
		s.mu.Unlock()
		close(c.stop)
		c.wg.Wait()
	})
	return c.closeErr
}

// Register creates or replaces the member's record, bound to its lease.
// The record's Priority is the member's Ranking's effective priority,
// whatever m says; its Position is kept, and while the member leads it is
// also the cluster's last master position (LastPosition). At a vacancy the
// waiting members rank again with the new record.
func (c *Coordinator) Register(ctx context.Context, m coordinator.Member) error {
	if m.ID == "" {
		m.ID = c.id
	}
	if m.ID != c.id {
		return fmt.Errorf("register %s: record id %q: want the handle's id", c.id, m.ID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("register %s: %w", c.id, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("register"); err != nil {
		return err
	}
	typ := coordinator.EventMemberJoined
	if _, ok := c.cl.members[c.id]; ok {
		typ = coordinator.EventMemberUpdated
	}
	m = copyMember(m)
	m.Priority = c.cfg.Ranking.EffectivePriority()
	c.cl.members[c.id] = &record{m: m, lease: c.lease}
	if t := c.cl.leader; t != nil && t.c == c && t.err == nil && m.Position != nil {
		p := *m.Position
		c.cl.lastPosition = &p
	}
	s.rev++
	s.emitLocked(c.cl, coordinator.Event{Type: typ, Member: copyMember(m)})
	s.electLocked(c.cl)
	return nil
}

// Members returns every registered member of the cluster, sorted by id.
func (c *Coordinator) Members(ctx context.Context) ([]coordinator.Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("members %s: %w", c.id, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("members"); err != nil {
		return nil, err
	}
	return membersLocked(c.cl), nil
}

// Campaign blocks until the member leads, ctx is done, or the session ends.
// A vacant leadership goes to the best waiting member by the ranking (see
// coordinator.Rank and Config.Ranking): at once to the best, after its
// failover wait to another eligible one, never to one of priority 0 or
// too far behind; among members equally placed, campaigns win in the
// order they started. A switchover request names the only member that
// may win. When ctx is done at the moment the campaign wins, the
// leadership is returned.
func (c *Coordinator) Campaign(ctx context.Context) (coordinator.Leadership, error) {
	s := c.store
	s.mu.Lock()
	if err := c.checkLocked("campaign"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if c.term != nil {
		t := c.term
		s.mu.Unlock()
		return t, nil
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("campaign %s: %w", c.id, err)
	}
	w := &waiter{c: c, at: s.clock.Now(), ready: make(chan struct{})}
	c.cl.waiters = append(c.cl.waiters, w)
	s.electLocked(c.cl)
	s.mu.Unlock()

	select {
	case <-w.ready:
	case <-ctx.Done():
	case <-c.done:
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if w.won != nil && w.won.err == nil {
		return w.won, nil
	}
	s.removeWaiterLocked(c.cl, w)
	if c.err != nil {
		return nil, fmt.Errorf("campaign %s: %w", c.id, coordinator.ErrSessionClosed)
	}
	return nil, fmt.Errorf("campaign %s: %w", c.id, ctx.Err())
}

func (s *Store) removeWaiterLocked(cl *cluster, w *waiter) {
	for i, x := range cl.waiters {
		if x == w {
			cl.waiters = append(cl.waiters[:i], cl.waiters[i+1:]...)
			return
		}
	}
}

// Leader returns the cluster's current leader, or an error wrapping
// ErrNoLeader.
func (c *Coordinator) Leader(ctx context.Context) (coordinator.Leader, error) {
	if err := ctx.Err(); err != nil {
		return coordinator.Leader{}, fmt.Errorf("leader %s: %w", c.id, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("leader"); err != nil {
		return coordinator.Leader{}, err
	}
	if c.cl.leader == nil {
		return coordinator.Leader{}, fmt.Errorf("leader of %s: %w", c.cl.name, coordinator.ErrNoLeader)
	}
	return coordinator.Leader{ID: c.cl.leader.c.id, Token: c.cl.leader.token}, nil
}

// Pause suspends automatic takeover in the cluster. Pausing a paused
// cluster changes nothing.
func (c *Coordinator) Pause(ctx context.Context) error { return c.setPaused(ctx, "pause", true) }

// Resume allows automatic takeover again; a waiting campaign may win at
// once. Resuming a cluster that is not paused changes nothing.
func (c *Coordinator) Resume(ctx context.Context) error { return c.setPaused(ctx, "resume", false) }

func (c *Coordinator) setPaused(ctx context.Context, op string, paused bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, c.cl.name, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked(op); err != nil {
		return err
	}
	if c.cl.paused == paused {
		return nil
	}
	c.cl.paused = paused
	if !paused && c.cl.leader == nil {
		c.cl.vacantSince = s.clock.Now() // the waiting members see the vacancy anew
	}
	s.rev++
	typ := coordinator.EventResumed
	if paused {
		typ = coordinator.EventPaused
	}
	s.emitLocked(c.cl, coordinator.Event{Type: typ})
	c.log.Info(op, "paused", paused)
	s.electLocked(c.cl)
	return nil
}

// Paused reports whether the cluster is paused.
func (c *Coordinator) Paused(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("paused %s: %w", c.cl.name, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("paused"); err != nil {
		return false, err
	}
	return c.cl.paused, nil
}

// Switchover asks the leader to hand over to the registered member to (or,
// when to is empty, to coordinator.Best of this member's Ranking, the
// leader excluded), and returns the target. A member the ranking does not
// let lead (priority 0, too far behind, stopping) is refused with an error
// wrapping ErrIneligible: Failover forces it. The request is bound to the
// target's session; it replaces any earlier request. When the target
// already leads there is nothing to ask: no request is recorded.
func (c *Coordinator) Switchover(ctx context.Context, to string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("switchover %s: %w", c.cl.name, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("switchover"); err != nil {
		return "", err
	}
	cl := c.cl
	leaderID := ""
	if cl.leader != nil {
		leaderID = cl.leader.c.id
	}
	v := s.vacancyLocked(cl)
	heir := heirOf(v.waiters, leaderID)
	if to == "" {
		to = coordinator.Best(v.members, leaderID, heir, v.last, c.cfg.Ranking)
		if to == "" {
			if len(cl.members) == 0 || len(cl.members) == 1 && cl.members[leaderID] != nil {
				return "", fmt.Errorf("switchover %s: no member to hand over to: %w", cl.name, coordinator.ErrUnknownMember)
			}
			return "", fmt.Errorf("switchover %s: no member may take over by the ranking: %w; force one with ccctl failover --to ID --force", cl.name, coordinator.ErrIneligible)
		}
	}
	r, ok := cl.members[to]
	if !ok {
		return "", fmt.Errorf("switchover %s to %s: %w", cl.name, to, coordinator.ErrUnknownMember)
	}
	if to == leaderID {
		return to, nil
	}
	others := v.members
	if leaderID != "" {
		others = slices.DeleteFunc(slices.Clone(v.members), func(m coordinator.Member) bool { return m.ID == leaderID })
	}
	if rk := coordinator.Rank(others, heir, v.last, c.cfg.Ranking); !isEligible(rk, to) {
		return "", fmt.Errorf("switchover %s to %s: %s: %w; force it with ccctl failover --to %s --force", cl.name, to, reason(rk, to), coordinator.ErrIneligible, to)
	}
	s.requestLocked(cl, to, r.lease, false)
	c.log.Info("switchover requested", "to", to)
	return to, nil
}

// Failover asks that member to to lead next, whatever the ranking says
// (see coordinator.Failoverer): a switchover request marked forced, which
// Watch reports as EventSwitchover with Forced set. With a sitting leader,
// it hands over to to as for a switchover; with none, to takes the vacancy
// as soon as it campaigns, even if of priority 0 or too far behind. The
// request is bound to to's session and replaces any earlier one; when to
// already leads, none is recorded.
func (c *Coordinator) Failover(ctx context.Context, to string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("failover %s: %w", c.cl.name, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("failover"); err != nil {
		return err
	}
	cl := c.cl
	r, ok := cl.members[to]
	if !ok {
		return fmt.Errorf("failover %s to %q: %w", cl.name, to, coordinator.ErrUnknownMember)
	}
	if cl.leader != nil && cl.leader.c.id == to {
		return nil
	}
	s.requestLocked(cl, to, r.lease, true)
	c.log.Warn("failover forced", "to", to)
	return nil
}

// requestLocked records a switchover request for to, bound to l, reports
// it to the watchers and lets a waiting target take a vacant leadership.
func (s *Store) requestLocked(cl *cluster, to string, l *lease, forced bool) {
	cl.switchTo, cl.switchLease, cl.switchForced = to, l, forced
	s.rev++
	s.emitLocked(cl, coordinator.Event{Type: coordinator.EventSwitchover, SwitchoverTo: to, Forced: forced})
	s.electLocked(cl)
}

// isEligible reports whether id is eligible in ranking.
func isEligible(ranking []coordinator.Standing, id string) bool {
	_, ok := standing(ranking, id)
	return ok
}

// LastPosition returns the latest position the record of a master of the
// cluster had while it led (nil if none had one). It is kept when that
// master goes away.
func (c *Coordinator) LastPosition(ctx context.Context) (*int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("last position %s: %w", c.cl.name, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("last position"); err != nil {
		return nil, err
	}
	if c.cl.lastPosition == nil {
		return nil, nil
	}
	p := *c.cl.lastPosition
	return &p, nil
}

// ClaimSlot records (job, slot) as taken by this member if nobody took it
// within retention, and reports whether this call took it. retention must
// be positive.
func (c *Coordinator) ClaimSlot(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error) {
	if retention <= 0 {
		return false, fmt.Errorf("claim slot %s at %v: retention %v: want > 0", job, slot, retention)
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("claim slot %s at %v: %w", job, slot, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("claim slot"); err != nil {
		return false, err
	}
	now := s.clock.Now()
	for k, forget := range c.cl.slots {
		if !now.Before(forget) {
			delete(c.cl.slots, k)
		}
	}
	k := slotKey{job: job, slot: slot.UnixNano()}
	if _, taken := c.cl.slots[k]; taken {
		return false, nil
	}
	c.cl.slots[k] = now.Add(retention)
	s.rev++
	return true, nil
}

// term is one term of leadership; it implements coordinator.Leadership.
type term struct {
	c     *Coordinator
	lease *lease
	token int64
	done  chan struct{}
	err   error // guarded by store.mu
}

// endLocked ends the term with why, once.
func (t *term) endLocked(why error) {
	if t.err != nil {
		return
	}
	t.err = why
	close(t.done)
	if t.c.term == t {
		t.c.term = nil
	}
	t.c.log.Info("leadership ended", "token", t.token, "reason", why)
}

// Token returns the term's fencing token.
func (t *term) Token() int64 { return t.token }

// Done is closed when the term ends.
func (t *term) Done() <-chan struct{} { return t.done }

// Err returns nil while the term lasts, then why it ended.
func (t *term) Err() error {
	t.c.store.mu.Lock()
	defer t.c.store.mu.Unlock()
	return t.err
}

// Resign ends the term (Done is closed first) and deletes the leader key,
// so that a waiting member can take over at once: coordinator.Best of the
// member's Ranking when it is waiting, else whom the vacancy's ranking
// picks (Campaign); a standing switchover request still decides first. It is idempotent. When
// the member is cut off, the term ends but the key stays until the lease
// expires, and Resign returns an error wrapping ErrUnavailable.
func (t *term) Resign(ctx context.Context) error {
	s := t.c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked()
	t.endLocked(coordinator.ErrResigned)
	cl := t.c.cl
	if cl.leader != t {
		return nil
	}
	if t.c.cut {
		return fmt.Errorf("resign %s: %w", t.c.id, coordinator.ErrUnavailable)
	}
	s.vacateLocked(cl)
	s.endTermLocked(cl, t, coordinator.ErrResigned)
	cl.handover = true
	if i := s.handoverLocked(cl, t.c); i >= 0 {
		s.grantLocked(cl, i)
	} else {
		s.electLocked(cl)
	}
	cl.handover = false
	return nil
}
