package memory

import (
	"sort"
	"sync"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// Store is the shared in-process state that stands in for etcd: the leases,
// and per cluster the member records, the leader, the waiting campaigns,
// the controls and the watchers. Every Coordinator of the process that should
// see the same clusters uses the same Store. A Store is safe for concurrent
// use and needs no closing: it holds no goroutine of its own (lease expiry
// and the end of failover waits run on clock timers that only take its
// lock).
type Store struct {
	clock clock.Clock

	mu        sync.Mutex
	rev       int64 // store-wide revision, increased by every write
	nextLease int64
	leases    map[int64]*lease
	clusters  map[coordinator.Cluster]*cluster
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithClock makes the store (and every Coordinator using it) tell time with
// c. The default is clock.Real().
func WithClock(c clock.Clock) StoreOption {
	return func(s *Store) { s.clock = c }
}

// NewStore returns an empty store.
func NewStore(opts ...StoreOption) *Store {
	s := &Store{
		clock:    clock.Real(),
		leases:   make(map[int64]*lease),
		clusters: make(map[coordinator.Cluster]*cluster),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// lease is one session's lease in the store.
type lease struct {
	id        int64
	ttl       time.Duration
	expiry    time.Time
	renewedAt time.Time
	timer     clock.Timer // fires at expiry
	owner     *Coordinator
	cl        *cluster
}

// record is a member record bound to a lease.
type record struct {
	m     coordinator.Member
	lease *lease
}

// waiter is one campaign waiting in a cluster's queue.
type waiter struct {
	c     *Coordinator
	at    time.Time     // when the campaign started
	ready chan struct{} // closed when won or abandoned
	won   *term
}

type slotKey struct {
	job  string
	slot int64 // UnixNano of the slot
}

// cluster is the store's state of one cluster. Guarded by Store.mu.
type cluster struct {
	name         coordinator.Cluster
	members      map[string]*record
	leader       *term // nil when vacant
	waiters      []*waiter
	paused       bool
	switchTo     string
	switchLease  *lease
	switchForced bool // the request is a forced one (Failover)
	watchers     map[*watcher]struct{}
	slots        map[slotKey]time.Time // forget after
	history      []coordinator.Term    // the last terms, oldest first (history.go)
	handover     bool                  // electLocked runs for a Resign: a grant is a handover
	// lastPosition is the latest position a master's record had while it
	// led (nil: none had one); it outlives the master, as a key without a
	// lease would.
	lastPosition *int64
	vacantSince  time.Time   // when the leadership was last seen vacant
	rankTimer    clock.Timer // decides again when a failover wait ends (rank.go)
}

func (s *Store) clusterLocked(name coordinator.Cluster) *cluster {
	cl, ok := s.clusters[name]
	if !ok {
		cl = &cluster{
			name:        name,
			members:     make(map[string]*record),
			watchers:    make(map[*watcher]struct{}),
			slots:       make(map[slotKey]time.Time),
			vacantSince: s.clock.Now(),
		}
		s.clusters[name] = cl
	}
	return cl
}

// grantLeaseLocked creates a lease for c in cl.
func (s *Store) grantLeaseLocked(c *Coordinator, cl *cluster, ttl time.Duration) *lease {
	s.nextLease++
	now := s.clock.Now()
	l := &lease{id: s.nextLease, ttl: ttl, expiry: now.Add(ttl), renewedAt: now, owner: c, cl: cl}
	l.timer = s.clock.AfterFunc(ttl, s.expireDue)
	s.leases[l.id] = l
	return l
}

// alive reports whether l is still in the store.
func (s *Store) aliveLocked(l *lease) bool { return s.leases[l.id] == l }

// renewAtLocked records a renewal of l made at time at, which must be
// before its expiry, and re-arms the expiry timer.
func (s *Store) renewAtLocked(l *lease, at time.Time) {
	l.renewedAt = at
	l.expiry = at.Add(l.ttl)
	l.timer.Reset(l.expiry.Sub(s.clock.Now()))
	l.owner.lastAck = at
}

// catchUpLocked applies the renewals that l's owner, connected and alive,
// made on schedule (every RenewInterval after the last one) up to now. In
// one process the renewals of a connected member always arrive, whenever
// the goroutines that carry them run; so a jump of a fake clock, or a
// stalled goroutine, never expires a connected member's lease.
func (s *Store) catchUpLocked(l *lease, now time.Time) {
	o := l.owner
	if o.err != nil || o.cut {
		return
	}
	ri := o.cfg.RenewInterval
	if now.Before(l.renewedAt.Add(ri)) {
		return
	}
	n := now.Sub(l.renewedAt) / ri
	s.renewAtLocked(l, l.renewedAt.Add(n*ri))
}

// expireDue is the lease timers' function.
func (s *Store) expireDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked()
}

// expireDueLocked applies the on-schedule renewals of connected members,
// then expires every lease whose expiry has passed on the store's clock.
// Every operation calls it first, so that the store never acts on a lease
// that has expired, whenever its timer goroutine runs.
func (s *Store) expireDueLocked() {
	now := s.clock.Now()
	var due []*lease
	for _, l := range s.leases {
		s.catchUpLocked(l, now)
		if !now.Before(l.expiry) {
			due = append(due, l)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	for _, l := range due {
		s.endLeaseLocked(l, coordinator.ErrSessionExpired)
	}
}

// endLeaseLocked removes l and everything bound to it (expiry or
// revocation). The owner's session and term end first, with why, so that
// the owner's leadership is over before anybody else can be granted it.
func (s *Store) endLeaseLocked(l *lease, why error) {
	if !s.aliveLocked(l) {
		return
	}
	delete(s.leases, l.id)
	l.timer.Stop()
	l.owner.endLocked(why, why)
	cl := l.cl
	if t := cl.leader; t != nil && t.lease == l {
		s.vacateLocked(cl)
		s.endTermLocked(cl, t, why)
	}
	ids := make([]string, 0, len(cl.members))
	for id, r := range cl.members {
		if r.lease == l {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := cl.members[id]
		delete(cl.members, id)
		s.rev++
		s.emitLocked(cl, coordinator.Event{Type: coordinator.EventMemberLeft, Member: copyMember(r.m)})
	}
	if cl.switchLease == l {
		s.clearSwitchoverLocked(cl)
	}
	s.dropWaitersLocked(cl, l.owner)
	s.electLocked(cl)
}

// vacateLocked deletes the leader key of cl. The term must have been ended
// by the caller.
func (s *Store) vacateLocked(cl *cluster) {
	cl.leader = nil
	cl.vacantSince = s.clock.Now()
	s.rev++
	s.emitLocked(cl, coordinator.Event{Type: coordinator.EventNoLeader})
}

func (s *Store) clearSwitchoverLocked(cl *cluster) {
	if cl.switchTo == "" {
		return
	}
	cl.switchTo, cl.switchLease, cl.switchForced = "", nil, false
	s.rev++
	s.emitLocked(cl, coordinator.Event{Type: coordinator.EventSwitchoverCleared})
}

// dropWaitersLocked abandons every waiting campaign of c.
func (s *Store) dropWaitersLocked(cl *cluster, c *Coordinator) {
	kept := cl.waiters[:0]
	for _, w := range cl.waiters {
		if w.c == c {
			close(w.ready)
			continue
		}
		kept = append(kept, w)
	}
	for i := len(kept); i < len(cl.waiters); i++ {
		cl.waiters[i] = nil
	}
	cl.waiters = kept
}

// electLocked grants the vacant leadership of cl to the waiting campaign
// decide picks (rank.go): none while paused; only the target's while a
// switchover request stands; otherwise by the ranking, which with no
// positions and equal priorities is the longest waiting. When a failover
// wait must pass first, it arms the timer that decides again.
//
// The one-leader rule is kept here: a grant only while cl.leader is nil,
// under the store's lock.
func (s *Store) electLocked(cl *cluster) {
	if cl.leader != nil || cl.paused {
		s.armRankTimerLocked(cl, time.Time{})
		return
	}
	idx, retry := decide(s.vacancyLocked(cl))
	s.armRankTimerLocked(cl, retry)
	if idx >= 0 {
		s.grantLocked(cl, idx)
	}
}

// grantLocked makes the waiting campaign cl.waiters[idx] the leader of
// the vacant cl.
func (s *Store) grantLocked(cl *cluster, idx int) {
	w := cl.waiters[idx]
	cl.waiters = append(cl.waiters[:idx], cl.waiters[idx+1:]...)
	s.rev++
	t := &term{c: w.c, lease: w.c.lease, token: s.rev, done: make(chan struct{})}
	cl.leader = t
	s.beginTermLocked(cl, t, cl.handover, cl.switchTo != "")
	w.c.term = t
	w.won = t
	close(w.ready)
	if r, ok := cl.members[w.c.id]; ok && r.lease == w.c.lease && r.m.Position != nil {
		p := *r.m.Position
		cl.lastPosition = &p
	}
	s.emitLocked(cl, coordinator.Event{Type: coordinator.EventLeaderChanged, Leader: coordinator.Leader{ID: w.c.id, Token: t.token}})
	if cl.switchTo != "" {
		s.clearSwitchoverLocked(cl)
	}
	w.c.log.Info("leadership won", "token", t.token)
}

// emitLocked queues ev for every watcher of cl.
func (s *Store) emitLocked(cl *cluster, ev coordinator.Event) {
	for w := range cl.watchers {
		w.queue = append(w.queue, ev)
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

// stateLocked returns the events that describe the current state of cl, in
// the order the coordinator contract gives.
func (s *Store) stateLocked(cl *cluster) []coordinator.Event {
	var leader *coordinator.Leader
	if cl.leader != nil {
		leader = &coordinator.Leader{ID: cl.leader.c.id, Token: cl.leader.token}
	}
	evs := coordinator.StateEvents(membersLocked(cl), leader, cl.paused, cl.switchTo)
	if cl.switchForced {
		evs[len(evs)-1].Forced = true // the EventSwitchover, last
	}
	return evs
}

func membersLocked(cl *cluster) []coordinator.Member {
	ms := make([]coordinator.Member, 0, len(cl.members))
	for _, r := range cl.members {
		ms = append(ms, copyMember(r.m))
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms
}

func copyMember(m coordinator.Member) coordinator.Member {
	if m.Ports != nil {
		m.Ports = append([]int{}, m.Ports...) // empty stays empty, not nil: "ports":[]
	}
	return m
}
