package etcd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// retryDelay is the pause between attempts after a failed request.
const retryDelay = 100 * time.Millisecond

// Campaign blocks until this member leads, ctx is done (it returns
// ctx.Err(), and removes the leader key if a request in flight created it),
// or the session ends (coordinator.ErrSessionClosed). See the package
// comment for the algorithm.
func (c *Coordinator) Campaign(ctx context.Context) (_ coordinator.Leadership, err error) {
	if err := c.check("campaign"); err != nil {
		return nil, err
	}
	c.campaign.Lock()
	defer c.campaign.Unlock()
	c.mu.Lock()
	if l := c.leader; l != nil {
		c.mu.Unlock()
		return l, nil
	}
	c.mu.Unlock()

	// The campaign's requests stop when the session ends, so that a session
	// lost while a request hangs on a silent connection is reported at once
	// (ctx alone would leave it to the caller's deadline).
	rctx, cancelRequests := context.WithCancel(ctx)
	defer cancelRequests()
	defer context.AfterFunc(c.bg, cancelRequests)()

	var w *waiter
	var turn clock.Timer    // this member's turn to try, while the leadership or the heir's place is vacant
	var recount clock.Timer // when to count the member records again
	ready := false          // the turn has come
	delayed := false        // it came after a herd delay
	claimed := false        // a claim of the heir's place was sent: give it up unless leading
	uncertain := false      // the campaign ends on a failed request to lead: it may have created the leader key
	defer func() {
		if w != nil {
			w.stop()
		}
		if turn != nil {
			turn.Stop()
		}
		if recount != nil {
			recount.Stop()
		}
		if err != nil && (claimed || uncertain) {
			c.abandon(uncertain)
		}
	}()
	var st electionState
	stale := true    // st must be read from etcd
	known := false   // st holds the leader key as of st.rev (a waiter that is not first does not watch it)
	counted := false // the member records were counted (c.counted)
	for {
		if err := c.campaignDone(ctx); err != nil {
			return nil, err
		}
		if stale {
			if w != nil {
				w.stop()
				w = nil
			}
			var err error
			if st, err = c.readElection(rctx, !counted); err != nil {
				if err := c.campaignDone(ctx); err != nil {
					return nil, err
				}
				c.log.Warn("campaign: read election", "err", err)
				if err := c.backoff(ctx, retryDelay); err != nil {
					return nil, err
				}
				continue
			}
			// Counted once per campaign here, then now and then while it
			// waits (recountDelay): a count walks every record.
			counted = true
			stale, known = false, true
		}
		if st.leader != nil && clientv3.LeaseID(st.leader.Lease) == c.lease && !c.ended(st.leader.CreateRevision) {
			// A resigning leader handed over to this member, or an earlier
			// attempt's request won but its answer was lost.
			if st.heirIs(c.lease) {
				// Handed over: the place is left after the term began, so
				// that the others, who wake for it, do not stand between
				// the handover and this member.
				c.spawn(c.leaveHeir)
			}
			return c.won(st.leader.CreateRevision, st.heirIs(c.lease), false)
		}
		first := c.first(st) // no other waiter goes before this one
		move := c.next(st)
		if move == moveNone {
			if turn != nil {
				turn.Stop()
				turn = nil
			}
			ready = false
		} else if !ready && turn == nil {
			if d := c.herdDelay(); d > 0 && !first {
				turn = c.clk.NewTimer(d)
			} else {
				ready = true
			}
		}
		if ready {
			ready = false
			if delayed {
				delayed = false
				if c.recheck(rctx, &st) {
					known = true
					if c.next(st) != move {
						continue // somebody else moved while this one waited
					}
				}
			}
			var ok bool
			var token int64
			var err error
			if move == moveLead {
				token, ok, err = c.tryLead(rctx, &st)
			} else {
				claimed = true
				ok, err = c.claimHeir(rctx, &st)
			}
			if err != nil {
				if errors.Is(err, rpctypes.ErrLeaseNotFound) {
					return nil, c.sessionErr("campaign", err)
				}
				if err := c.campaignDone(ctx); err != nil {
					uncertain = move == moveLead
					return nil, err
				}
				c.log.Warn("campaign: transaction", "err", err)
				if err := c.backoff(ctx, retryDelay); err != nil {
					return nil, err
				}
				stale = true
				continue
			}
			if ok && move == moveLead {
				return c.won(token, false, st.switchover != nil && string(st.switchover.Value) == c.cfg.ID)
			}
			// Claimed the heir's place, or somebody else moved first: st
			// holds the state the transaction saw.
			known = true
			continue
		}
		if w != nil && w.all != first {
			w.stop()
			w = nil
		}
		if w == nil {
			if first && !known {
				stale = true // a watch of the leader key starts from a read of it
				continue
			}
			w = c.newWaiter(st.rev, first)
		}
		if recount == nil {
			recount = c.clk.NewTimer(c.recountDelay())
		}
		var due <-chan time.Time
		if turn != nil {
			due = turn.C()
		}
		what, err := w.next(ctx, &st, due, recount.C())
		if err != nil {
			return nil, err
		}
		switch what {
		case wakeChanged:
			known = known && w.all
		case wakeStale:
			stale = true
		case wakeTurn:
			turn, ready, delayed = nil, true, true
		case wakeRecount:
			recount = nil
			if st.leader != nil {
				// Never while the leadership is vacant: the herd is
				// racing then.
				c.recount()
			}
		}
	}
}

// move is what a campaign does next.
type move int

const (
	moveNone  move = iota // wait for a change
	moveLead              // try to create the leader key
	moveClaim             // try to take the heir's place
)

// first reports whether no other waiter goes before this member in st:
// it holds the heir's place, or a switchover names it. Such a member
// watches the leader key and tries without a herd delay.
func (c *Coordinator) first(st electionState) bool {
	return st.heirIs(c.lease) || st.switchTo == c.cfg.ID
}

// next returns what this member does in st. Only the first tries to lead
// while another member holds the heir's place; any member tries when the
// place is vacant (the leadership, if it is vacant as well, else the
// place).
func (c *Coordinator) next(st electionState) move {
	switch {
	case st.open(c.cfg.ID) && (c.first(st) || st.heirID == ""):
		return moveLead
	case st.heirID == "" && !st.open(c.cfg.ID):
		return moveClaim
	}
	return moveNone
}

// recountDelay returns when a waiting campaign counts the member records
// again: a random time in [P/2, P), P growing with the latest count (a
// count walks every record's index entry, so the counts of N members cost
// etcd about N*N/P entries per second) from recountMin to recountMax.
func (c *Coordinator) recountDelay() time.Duration {
	p := min(max(time.Duration(c.counted.Load())*recountPerMember, c.recountMin), c.recountMax)
	return p/2 + rand.N(p/2+1)
}

// Recounting the member records while a campaign waits: see recountDelay.
const (
	recountPerMember = 100 * time.Millisecond
	recountMin       = 5 * time.Minute
	recountMax       = time.Hour
)

// recount counts the member records into c.counted in the background, so
// that a slow count never delays a campaign; on failure the old count
// stays until the next time.
func (c *Coordinator) recount() {
	if !c.counting.CompareAndSwap(false, true) {
		return
	}
	if !c.spawn(func() {
		defer c.counting.Store(false)
		ctx, cancel := context.WithTimeout(c.bg, c.cfg.DialTimeout)
		defer cancel()
		resp, err := c.cli.Get(ctx, c.keys.members, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			c.log.Debug("campaign: count members", "err", err)
			return
		}
		c.counted.Store(resp.Count)
	}) {
		c.counting.Store(false)
	}
}

// Spreading the herd: while the heir's place is vacant (or the leadership
// with nobody in that place), each campaign waits a random delay in
// [0, herdWindow) before it sends its transaction, then rechecks, and
// sends nothing if the recheck or its watch shows somebody moved. The
// window is herdPerMember per other member (at most herdMaxWindow), so
// that about C/herdPerMember transactions reach etcd per vacancy, C being
// the time one takes to commit, however large the cluster (see the package
// comment). About herdAtOnce of the waiters do not wait at all (each with
// probability herdAtOnce/others), so that a vacancy is tried at once
// whatever the size of the cluster, and a cluster of at most herdAtOnce+1
// members has no window: the delay and the recheck cost more than a
// millisecond (1.3 ms of a 3 ms handover between two members, measured
// before the heir's place existed), and those few transactions cost etcd
// less.
const (
	herdPerMember = 250 * time.Microsecond
	herdMaxWindow = time.Minute
	herdAtOnce    = 8
)

// herdWindow returns the window of the delay before an attempt, given the
// number of member records (this member's included), the window per other
// member and the largest window: none up to herdAtOnce other members.
func herdWindow(members int64, perMember, maxWindow time.Duration) time.Duration {
	if members-1 <= herdAtOnce || perMember <= 0 {
		return 0
	}
	if members-1 >= int64(maxWindow/perMember) {
		return maxWindow
	}
	return time.Duration(members-1) * perMember
}

// herdDelay returns the delay before an attempt on a vacancy, for the
// latest count of members: 0 for about herdAtOnce of the waiters, else
// random in [0, herdWindow(...)).
func (c *Coordinator) herdDelay() time.Duration {
	n := c.counted.Load()
	w := herdWindow(n, c.herdPerMember, c.herdMax)
	if w <= 0 || rand.Int64N(n-1) < herdAtOnce {
		return 0
	}
	return rand.N(w)
}

// recheck reads the election and control keys from the etcd member the
// client talks to (a serializable read: no raft round, no leader) and
// replaces st with what it read if that is newer; it reports whether it
// did. After a herd delay this is how a waiter learns of the winner
// before the winner's key reaches it through the watch, which with
// thousands of watchers takes as long as etcd needs to send one event to
// each of them: without it, every waiter whose delay ends within that time
// sends a transaction (a raft write) that can only fail.
func (c *Coordinator) recheck(ctx context.Context, st *electionState) bool {
	fresh, err := c.getState(ctx, clientv3.WithSerializable())
	if err != nil || fresh.rev <= st.rev {
		return false
	}
	*st = fresh
	return true
}

// getState reads the election and control keys with opts.
func (c *Coordinator) getState(ctx context.Context, opts ...clientv3.OpOption) (electionState, error) {
	resp, err := c.cli.Get(ctx, c.keys.waitFrom, append(opts, clientv3.WithRange(c.keys.waitEnd))...)
	if err != nil {
		return electionState{}, err
	}
	return c.stateOf(resp.Header.Revision, (*pb.RangeResponse)(resp)), nil
}

// campaignDone returns the error a campaign ends with when ctx is done or
// the session has ended, nil otherwise.
func (c *Coordinator) campaignDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.check("campaign")
}

// backoff waits d before a retry, or less when ctx is done or the session
// ends.
func (c *Coordinator) backoff(ctx context.Context, d time.Duration) error {
	t := c.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.check("campaign")
	}
}

// electionState is what a campaign follows: the election and control keys
// at one revision (a waiter that watches only the heir's place and the
// control keys keeps the leader key as it last read it).
//
// Keys that fail the checks (Layout) count as absent in every decision;
// their revisions still go into the conditions of the transactions, which
// would otherwise never hold while such a key exists: heir and switchover
// are the keys as read, heirID and switchTo what they say if they pass;
// bogus are the keys under election/ that are not a leader's.
type electionState struct {
	rev        int64
	leader     *mvccpb.KeyValue // the leader key, if one passes the checks
	bogus      []*mvccpb.KeyValue
	heir       *mvccpb.KeyValue
	heirID     string // the member in the heir's place; "" if none
	pause      *mvccpb.KeyValue
	switchover *mvccpb.KeyValue
	switchTo   string // the target of the switchover request; "" if none
}

// open reports whether member id may try to lead: the leadership is vacant,
// the cluster not paused and no switchover names another member.
func (st *electionState) open(id string) bool {
	return st.leader == nil && st.pause == nil && (st.switchTo == "" || st.switchTo == id)
}

// heirIs reports whether the session with this lease holds the heir's
// place.
func (st *electionState) heirIs(lease clientv3.LeaseID) bool {
	return st.heirID != "" && clientv3.LeaseID(st.heir.Lease) == lease
}

// readOp reads the election and control keys.
func (c *Coordinator) readOp() clientv3.Op {
	return clientv3.OpGet(c.keys.waitFrom, clientv3.WithRange(c.keys.waitEnd))
}

// stateOf returns the state that a read of readOp's range at revision rev
// returned.
func (c *Coordinator) stateOf(rev int64, r *pb.RangeResponse) electionState {
	st := electionState{rev: rev}
	for _, kv := range r.GetKvs() {
		st.set(c, string(kv.Key), kv)
	}
	return st
}

// readElection reads the election and control keys and, if count, counts
// the member records in the same read-only transaction (no raft write).
func (c *Coordinator) readElection(ctx context.Context, count bool) (electionState, error) {
	ops := []clientv3.Op{c.readOp()}
	if count {
		ops = append(ops, clientv3.OpGet(c.keys.members, clientv3.WithPrefix(), clientv3.WithCountOnly()))
	}
	resp, err := c.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return electionState{}, err
	}
	if len(resp.Responses) != len(ops) {
		return electionState{}, fmt.Errorf("read election: got %d responses; want %d", len(resp.Responses), len(ops))
	}
	if count {
		c.counted.Store(resp.Responses[1].GetResponseRange().GetCount())
	}
	return c.stateOf(resp.Header.Revision, resp.Responses[0].GetResponseRange()), nil
}

// apply records the events of a watch response that are newer than st.
func (st *electionState) apply(c *Coordinator, events []*clientv3.Event) {
	seen := st.rev // events of one transaction share a revision
	for _, ev := range events {
		kv := ev.Kv
		if kv.ModRevision <= seen {
			continue
		}
		if ev.Type == mvccpb.DELETE {
			kv = nil
		}
		st.set(c, string(ev.Kv.Key), kv)
		st.rev = ev.Kv.ModRevision
	}
}

// set records kv (nil: deleted) as the value of key, if key is one of the
// keys a campaign follows.
func (st *electionState) set(c *Coordinator, key string, kv *mvccpb.KeyValue) {
	k := c.keys
	var d decoded
	if kv != nil {
		d = c.decodeKV(kv)
	}
	switch {
	case strings.HasPrefix(key, k.leaders):
		st.bogus = slices.DeleteFunc(st.bogus, func(b *mvccpb.KeyValue) bool { return string(b.Key) == key })
		if kv != nil && d.err != nil {
			st.bogus = append(st.bogus, kv)
			kv = nil // no leader's key
		}
		// At most one leader key exists; the events of a handover delete
		// one and create another in one revision.
		if kv != nil || (st.leader != nil && string(st.leader.Key) == key) {
			st.leader = kv
		}
		return
	}
	switch key {
	case k.heir:
		st.heir, st.heirID = kv, ""
		if kv != nil && d.err == nil {
			st.heirID = d.id
		}
	case k.pause:
		st.pause = kv
	case k.switchover:
		st.switchover, st.switchTo = kv, ""
		if kv != nil && d.err == nil {
			st.switchTo = d.id
		}
	}
}

// vacantLeaders returns the conditions under which no leader key exists
// under election/ but the keys of st.bogus, each as st saw it, and the
// operations that delete those: a key that is not a leader's neither
// blocks a term nor outlives the start of one.
func (c *Coordinator) vacantLeaders(st *electionState) ([]clientv3.Cmp, []clientv3.Op) {
	if len(st.bogus) == 0 {
		return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(c.keys.leaders), "=", 0).WithPrefix()}, nil
	}
	bogus := slices.Clone(st.bogus)
	slices.SortFunc(bogus, func(a, b *mvccpb.KeyValue) int { return strings.Compare(string(a.Key), string(b.Key)) })
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	from := c.keys.leaders
	for _, b := range bogus {
		key := string(b.Key)
		// Nothing in [from, key), and key as it was read.
		cmps = append(cmps,
			clientv3.Compare(clientv3.CreateRevision(from), "=", 0).WithRange(key),
			clientv3.Compare(clientv3.ModRevision(key), "=", b.ModRevision))
		ops = append(ops, clientv3.OpDelete(key))
		from = key + "\x00"
	}
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(from), "=", 0).WithRange(c.keys.waitEnd))
	return cmps, ops
}

// tryLead creates the leader key if the state read still holds (giving up
// the heir's place if this member holds it). It returns the fencing token
// when it did; when it did not, st holds the keys as the transaction saw
// them.
func (c *Coordinator) tryLead(ctx context.Context, st *electionState) (int64, bool, error) {
	own := c.keys.leaderOf(c.cfg.ID)
	if i := slices.IndexFunc(st.bogus, func(b *mvccpb.KeyValue) bool { return string(b.Key) == own }); i >= 0 {
		// Something else was put at this member's leader key. One
		// transaction cannot delete a key and create it again (a put
		// would keep its create revision, the token): delete it first.
		_, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(own), "=", st.bogus[i].ModRevision)).
			Then(clientv3.OpDelete(own)).Commit()
		if err != nil {
			return 0, false, err
		}
		fresh, err := c.getState(ctx)
		if err != nil {
			return 0, false, err
		}
		*st = fresh
		return 0, false, nil
	}
	var swRev, heirRev int64
	if st.switchover != nil {
		swRev = st.switchover.ModRevision
	}
	if st.heir != nil {
		heirRev = st.heir.ModRevision
	}
	vacant, clear := c.vacantLeaders(st)
	ops := append(clear, clientv3.OpPut(own, c.cfg.ID, clientv3.WithLease(c.lease)))
	if st.switchover != nil {
		// The request is fulfilled by this term.
		ops = append(ops, clientv3.OpDelete(c.keys.switchover))
	}
	if st.heirIs(c.lease) {
		ops = append(ops, clientv3.OpDelete(c.keys.heir))
	}
	resp, err := c.cli.Txn(ctx).If(append(vacant,
		clientv3.Compare(clientv3.CreateRevision(c.keys.pause), "=", 0),
		clientv3.Compare(clientv3.ModRevision(c.keys.switchover), "=", swRev),
		clientv3.Compare(clientv3.ModRevision(c.keys.heir), "=", heirRev),
	)...).Then(ops...).Else(c.readOp()).Commit()
	if err != nil {
		return 0, false, err
	}
	if !resp.Succeeded {
		*st = c.stateOf(resp.Header.Revision, resp.Responses[0].GetResponseRange())
	}
	return resp.Header.Revision, resp.Succeeded, nil
}

// claimHeir takes the heir's place if it is vacant (or holds a key that
// is not a member's, unchanged since st), and reports whether it did; st
// then holds the keys as the transaction saw them.
func (c *Coordinator) claimHeir(ctx context.Context, st *electionState) (bool, error) {
	var heirRev int64
	if st.heir != nil {
		heirRev = st.heir.ModRevision
	}
	resp, err := c.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.ModRevision(c.keys.heir), "=", heirRev),
	).Then(
		clientv3.OpPut(c.keys.heir, c.cfg.ID, clientv3.WithLease(c.lease)), c.readOp(),
	).Else(c.readOp()).Commit()
	if err != nil {
		return false, err
	}
	*st = c.stateOf(resp.Header.Revision, resp.Responses[len(resp.Responses)-1].GetResponseRange())
	return resp.Succeeded, nil
}

// abandon removes what a campaign that ends without leading may have
// left: the heir's place, so that the others need not wait until the
// session ends; and its leader key, if a request whose answer was not seen
// created it (uncertain: then even while the session closes), or a
// resigning leader handed over as the campaign ended.
func (c *Coordinator) abandon(uncertain bool) {
	c.drop(uncertain, "campaign: give up the heir's place and the leader key", c.leaveHeirOp(), c.leaderKeyOp())
}

// leaveHeir gives the heir's place up if this session holds it.
func (c *Coordinator) leaveHeir() {
	c.drop(false, "leadership: give up the heir's place", c.leaveHeirOp())
}

// leaveHeirOp deletes the heir's place if this session holds it.
func (c *Coordinator) leaveHeirOp() clientv3.Op {
	return c.deleteOwnOp(c.keys.heir)
}

// leaderKeyOp deletes this member's leader key if this session holds it.
func (c *Coordinator) leaderKeyOp() clientv3.Op {
	return c.deleteOwnOp(c.keys.leaderOf(c.cfg.ID))
}

// deleteOwnOp deletes key if it is bound to this session's lease.
func (c *Coordinator) deleteOwnOp(key string) clientv3.Op {
	return clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(key), "=", c.lease)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)
}

// drop sends ops in one transaction, logging a failure as what. Unless
// always, only while the session lives: once it has ended, its lease takes
// its keys with it.
func (c *Coordinator) drop(always bool, what string, ops ...clientv3.Op) {
	parent := c.bg
	if always {
		parent = context.Background()
	} else if c.check("campaign") != nil {
		return
	}
	ctx, cancel := context.WithTimeout(parent, c.cfg.DialTimeout)
	defer cancel()
	if _, err := c.cli.Txn(ctx).Then(ops...).Commit(); err != nil && parent.Err() == nil {
		c.log.Warn(what, "err", err)
	}
}

// won records a new term with the given token and starts its monitor;
// the history records it in the background (handedOver: a resigning
// leader handed over; switchover: a switchover named this member).
func (c *Coordinator) won(token int64, handedOver, switchover bool) (coordinator.Leadership, error) {
	mctx, cancel := context.WithCancel(c.bg)
	l := &leadership{c: c, token: token, done: make(chan struct{}), cancel: cancel}
	c.mu.Lock()
	if c.err != nil || c.closing {
		c.mu.Unlock()
		cancel()
		c.abandon(true)
		return nil, fmt.Errorf("campaign %s: %w", c.cfg.ID, coordinator.ErrSessionClosed)
	}
	c.leader = l
	c.wg.Add(1) // under c.mu, so never after Close began waiting
	c.mu.Unlock()
	go l.monitor(mctx)
	c.log.Info("leadership won", "token", token)
	c.spawn(func() { c.recordBegin(token, handedOver, switchover) })
	return l, nil
}

// waiter watches the election and control keys for a campaign: all of
// them, or all but the leader key (a waiter that is not first wakes on a
// vacant heir's place and on control requests only).
type waiter struct {
	c      *Coordinator
	all    bool
	cancel context.CancelFunc
	ch     clientv3.WatchChan
}

func (c *Coordinator) newWaiter(rev int64, all bool) *waiter {
	ctx, cancel := context.WithCancel(c.bg)
	w := &waiter{c: c, all: all, cancel: cancel}
	end := c.keys.waitEnd
	if !all {
		end = c.keys.heirEnd
	}
	w.ch = c.cli.Watch(clientv3.WithRequireLeader(ctx), c.keys.waitFrom,
		clientv3.WithRange(end), clientv3.WithRev(rev+1))
	return w
}

func (w *waiter) stop() { w.cancel() }

// wake says why waiter.next returned.
type wake int

const (
	wakeChanged wake = iota // the watched keys changed; st holds the changes
	wakeStale               // the watch broke: st must be read again
	wakeTurn                // due fired
	wakeRecount             // recount fired
)

// next waits for the next changes of the watched keys and applies them to
// st, or for due or recount to fire (a nil channel never fires), and says
// which. The watch breaks on compaction, without an etcd leader, or when
// closed. It fails when ctx is done or the session ends.
func (w *waiter) next(ctx context.Context, st *electionState, due, recount <-chan time.Time) (wake, error) {
	c := w.c
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.done:
		return 0, c.check("campaign")
	case <-due:
		return wakeTurn, nil
	case <-recount:
		return wakeRecount, nil
	case resp, ok := <-w.ch:
		if !ok || resp.Canceled || resp.Err() != nil {
			if err := c.backoff(ctx, retryDelay); err != nil {
				return 0, err
			}
			return wakeStale, nil
		}
		st.apply(c, resp.Events)
		return wakeChanged, nil
	}
}

// leadership is one term.
type leadership struct {
	c      *Coordinator
	token  int64
	done   chan struct{}
	cancel context.CancelFunc // stops the monitor

	once sync.Once
	mu   sync.Mutex
	err  error
	view electionState // the keys as the monitor last saw them (rev 0: not yet)
}

// Token returns the term's fencing token: the etcd revision that created the
// leader key.
func (l *leadership) Token() int64 { return l.token }

// Done is closed when the term has ended.
func (l *leadership) Done() <-chan struct{} { return l.done }

// Err returns nil while the term lasts, then why it ended.
func (l *leadership) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// end ends the term for err (once) and reports whether this call ended it.
func (l *leadership) end(err error) bool {
	ended := false
	l.once.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.done)
		l.cancel()
		ended = true
	})
	return ended
}

// detach ends the term for err and forgets it as the session's current one.
func (l *leadership) detach(err error) bool {
	c := l.c
	c.mu.Lock()
	if c.leader == l {
		c.leader = nil
	}
	c.lastEnded = max(c.lastEnded, l.token)
	c.mu.Unlock()
	return l.end(err)
}

// Resign ends the term (Done is closed first) and deletes the leader key if
// it is still this term's. It is idempotent and never touches a later term.
func (l *leadership) Resign(ctx context.Context) error {
	if l.detach(coordinator.ErrResigned) {
		l.c.log.Info("leadership resigned", "token", l.token)
	}
	if l.c.check("resign") != nil {
		return nil // the lease is revoked or dead, and the key with it
	}
	l.mu.Lock()
	view := l.view
	l.mu.Unlock()
	if err := l.c.release(ctx, l.token, view); err != nil {
		// The key would stay as long as the session lives: keep trying.
		l.c.spawn(func() { l.c.releaseLater(l.token) })
		return fmt.Errorf("resign %s (token %d): %w", l.c.cfg.ID, l.token, err)
	}
	return nil
}

// release deletes the leader key if the term token created it. If view
// (the keys as the term's monitor saw them) shows a member in the heir's
// place that may lead (not paused, no switchover naming another), the same
// transaction creates that member's leader key, bound to its lease: the
// heir learns that it leads from its watch, and no member makes a request
// between the two terms. The heir then leaves the place itself (the
// others wake for it, and would stand between the handover and the heir
// if this transaction left it). When the place changed since, or the
// heir's lease is gone, the key is only deleted, with the place if this
// member still holds it (a term handed over whose holder did not leave it
// yet).
func (c *Coordinator) release(ctx context.Context, token int64, view electionState) error {
	own := c.keys.leaderOf(c.cfg.ID)
	if h, to := view.heir, view.heirID; to != "" && view.pause == nil && to != c.cfg.ID &&
		(view.switchTo == "" || view.switchTo == to) {
		var swRev int64
		ops := []clientv3.Op{
			c.historyEndOp(token, endReason(view)),
			clientv3.OpDelete(own),
			clientv3.OpPut(c.keys.leaderOf(to), to, clientv3.WithLease(clientv3.LeaseID(h.Lease))),
		}
		if view.switchover != nil {
			swRev = view.switchover.ModRevision
			ops = append(ops, clientv3.OpDelete(c.keys.switchover)) // fulfilled
		}
		resp, err := c.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(own), "=", token),
			clientv3.Compare(clientv3.ModRevision(c.keys.heir), "=", h.ModRevision),
			clientv3.Compare(clientv3.CreateRevision(c.keys.pause), "=", 0),
			clientv3.Compare(clientv3.ModRevision(c.keys.switchover), "=", swRev),
		).Then(ops...).Commit()
		switch {
		case err == nil && resp.Succeeded:
			c.log.Info("leadership handed over", "token", token, "to", to)
			return nil
		case err != nil && ctx.Err() != nil:
			return err
		}
		// The place changed, or the heir's lease is gone.
	}
	_, err := c.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(own), "=", token),
	).Then(clientv3.OpDelete(own), c.leaveHeirOp(), c.historyResignOp(token)).Commit()
	return err
}

// releaseLater retries release until it succeeds or the session ends.
func (c *Coordinator) releaseLater(token int64) {
	for {
		if err := c.backoff(c.bg, retryDelay); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(c.bg, c.cfg.DialTimeout)
		err := c.release(ctx, token, electionState{})
		cancel()
		if err == nil {
			return
		}
		if c.bg.Err() != nil {
			return
		}
		c.log.Warn("resign: release leader key", "token", token, "err", err)
	}
}

// ended reports whether the term with this token was ended by this handle
// (its key may linger while a release is retried): it is never adopted
// again, so that a new term always has a new token.
func (c *Coordinator) ended(token int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return token != 0 && token == c.lastEnded
}

// monitor ends the term when its leader key is deleted or replaced by
// anything but this term (an operator, a bug elsewhere), and keeps the
// view of the heir's place and the control keys that Resign hands over by.
func (l *leadership) monitor(ctx context.Context) {
	c := l.c
	defer c.wg.Done()
	own := c.keys.leaderOf(c.cfg.ID)
	// follow ends the term unless st shows its key, else keeps st as the
	// view.
	follow := func(st electionState) bool {
		if st.leader == nil || string(st.leader.Key) != own || st.leader.CreateRevision != l.token {
			if l.detach(coordinator.ErrLeadershipLost) {
				c.log.Error("leadership lost", "token", l.token, "reason", "leader key deleted or replaced")
			}
			return false
		}
		l.mu.Lock()
		l.view = st
		l.mu.Unlock()
		return true
	}
	for ctx.Err() == nil {
		// Read the keys, then follow them from there; again when the watch
		// ends (compaction, error).
		st, err := c.getState(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			_ = c.backoff(ctx, retryDelay) // the loop checks ctx
			continue
		}
		if !follow(st) {
			return
		}
		wch := c.cli.Watch(ctx, c.keys.waitFrom, clientv3.WithRange(c.keys.waitEnd), clientv3.WithRev(st.rev+1))
		for wr := range wch {
			if wr.CompactRevision != 0 || wr.Err() != nil {
				break
			}
			st.apply(c, wr.Events)
			if !follow(st) {
				return
			}
		}
	}
}
