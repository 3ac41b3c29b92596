package etcd

import (
	"context"
	"fmt"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// electionState is the election and control keys at one revision: what a
// campaign decides by (decide), what a term's monitor follows, and the
// leader, pause and switchover a Watch reports (clusterState). A follower
// keeps it current; set is the one parser of those keys.
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
	forced     bool   // the request was forced (Failover)
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

// passed reports whether the heir's place was passed (rank.go) rather
// than claimed: a claim creates the key, a pass puts over it. Its holder
// takes a passed place up without ranking again, so that two stale
// views cannot pass it back and forth.
func (st *electionState) passed() bool {
	return st.heirID != "" && st.heir.Version > 1
}

// leaderInfo returns the leader st holds, nil if none.
func (st *electionState) leaderInfo() *coordinator.Leader {
	if st.leader == nil {
		return nil
	}
	// set keeps only a key that passed the checks: its value is its id.
	return &coordinator.Leader{ID: string(st.leader.Value), Token: st.leader.CreateRevision}
}

// apply records the events of a watch response that are newer than st.
func (st *electionState) apply(c *Coordinator, events []*clientv3.Event) {
	seen := st.rev // events of one transaction share a revision
	for _, ev := range events {
		if ev.Kv.ModRevision <= seen {
			continue
		}
		st.set(c.decodeEvent(ev))
		st.rev = ev.Kv.ModRevision
	}
}

// change is one key as a read or a watch event left it.
type change struct {
	key     string
	kv      *mvccpb.KeyValue // nil: deleted
	d       decoded          // the key decoded (for a deletion, its kind only)
	present bool             // put, and passes the checks
}

// decodeEvent decodes the key of ev (a rejected put is logged once).
func (c *Coordinator) decodeEvent(ev *clientv3.Event) change {
	if ev.Type == mvccpb.DELETE {
		// The kind only: a deletion carries no value.
		return change{key: string(ev.Kv.Key), d: c.keys.decode(ev.Kv)}
	}
	return c.decodeRead(ev.Kv)
}

// decodeRead decodes a key that a read returned.
func (c *Coordinator) decodeRead(kv *mvccpb.KeyValue) change {
	d := c.decodeKV(kv)
	return change{key: string(kv.Key), kv: kv, d: d, present: d.err == nil}
}

// set records ch, if its key is one of the election and control keys. It
// is the one rule for a leader key: a key under election/ that passes the
// checks is the leader's (at most one exists; the events of a handover
// delete one and create another in one revision), and the leader is gone
// when its own key is deleted or overwritten by one that fails them; any
// other key under election/ that fails them is bogus.
func (st *electionState) set(ch change) {
	switch ch.d.kind {
	case kindLeader:
		st.bogus = slices.DeleteFunc(st.bogus, func(b *mvccpb.KeyValue) bool { return string(b.Key) == ch.key })
		switch {
		case ch.present:
			st.leader = ch.kv
		case st.leader != nil && string(st.leader.Key) == ch.key:
			st.leader = nil
		}
		if ch.kv != nil && !ch.present {
			st.bogus = append(st.bogus, ch.kv)
		}
	case kindHeir:
		st.heir, st.heirID = ch.kv, ""
		if ch.present {
			st.heirID = ch.d.id
		}
	case kindPause:
		st.pause = ch.kv
	case kindSwitchover:
		st.switchover, st.switchTo, st.forced = ch.kv, "", false
		if ch.present {
			st.switchTo, st.forced = ch.d.id, ch.d.forced
		}
	}
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
		st.set(c.decodeRead(kv))
	}
	return st
}

// getState reads the election and control keys with opts.
func (c *Coordinator) getState(ctx context.Context, opts ...clientv3.OpOption) (electionState, error) {
	resp, err := c.cli.Get(ctx, c.keys.waitFrom, append(opts, clientv3.WithRange(c.keys.waitEnd))...)
	if err != nil {
		return electionState{}, err
	}
	return c.stateOf(resp.Header.Revision, (*pb.RangeResponse)(resp)), nil
}

// readElection reads the election and control keys and, if count, counts
// the member records in the same read-only transaction (no raft write);
// with candidate, the same transaction also puts this member's candidate
// key (rank.go).
func (c *Coordinator) readElection(ctx context.Context, count, candidate bool) (electionState, error) {
	ops := []clientv3.Op{c.readOp()}
	if count {
		ops = append(ops, clientv3.OpGet(c.keys.members, clientv3.WithPrefix(), clientv3.WithCountOnly()))
	}
	if candidate {
		ops = append(ops, c.candidateOp())
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

// follower keeps an electionState current: it reads the keys, then
// follows them with a watch from the revision read, and reads them again
// when the watch breaks (compaction, no etcd leader, an error). It watches
// all the election and control keys, or all but the leader key (a waiter
// that is not first wakes on a vacant heir's place and on control
// requests only; it then keeps the leader key as it last read it).
type follower struct {
	c *Coordinator
	// read reads the state; op names it in a warning when it fails ("":
	// no warning).
	read func(ctx context.Context) (electionState, error)
	op   string
	// anyLeader: the watch goes on while the etcd member it is on has no
	// leader (a term's monitor: no change can be committed then anyway),
	// rather than breaking at once (a campaign's, which reads again).
	anyLeader bool

	st    electionState
	stale bool // st must be read again
	known bool // st holds the leader key as of st.rev
	w     *waiter
}

// newFollower returns a follower whose first current reads the state.
func (c *Coordinator) newFollower(op string, read func(ctx context.Context) (electionState, error)) *follower {
	return &follower{c: c, op: op, read: read, stale: true}
}

// current returns the state, reading it first if it is stale: rctx bounds
// the reads, which are retried until one succeeds or done returns an
// error (then returned).
func (f *follower) current(ctx, rctx context.Context, done func(ctx context.Context) error) (electionState, error) {
	for f.stale {
		f.stop()
		st, err := f.read(rctx)
		if err != nil {
			if err := done(ctx); err != nil {
				return electionState{}, err
			}
			if f.op != "" {
				f.c.log.Warn(f.op+": read election", "err", err)
			}
			if err := f.c.backoff(ctx, retryDelay); err != nil {
				return electionState{}, err
			}
			if err := done(ctx); err != nil {
				return electionState{}, err
			}
			continue
		}
		f.st, f.stale, f.known = st, false, true
	}
	return f.st, nil
}

// replace takes st, read by a transaction or a recheck, as the state.
func (f *follower) replace(st electionState) {
	f.st, f.known = st, true
}

// invalidate makes the next current read the state again.
func (f *follower) invalidate() { f.stale = true }

// wait waits for the next change of the keys (all of them, or all but the
// leader key), or for due or recount to fire (a nil channel never fires),
// and says which. A watch of the leader key starts from a read of it: if
// st does not hold it, wait returns wakeStale at once.
func (f *follower) wait(ctx context.Context, all bool, due, recount <-chan time.Time) (wake, error) {
	if f.w != nil && f.w.all != all {
		f.stop()
	}
	if f.w == nil {
		if all && !f.known {
			f.stale = true
			return wakeStale, nil
		}
		f.w = f.c.newWaiter(f.st.rev, all, !f.anyLeader)
	}
	what, err := f.w.next(ctx, &f.st, due, recount)
	if err != nil {
		return 0, err
	}
	switch what {
	case wakeChanged:
		f.known = f.known && f.w.all
	case wakeStale:
		f.stale = true
	}
	return what, nil
}

// stop stops the watch, if one runs.
func (f *follower) stop() {
	if f.w != nil {
		f.w.stop()
		f.w = nil
	}
}

// waiter is a follower's watch.
type waiter struct {
	c      *Coordinator
	all    bool
	cancel context.CancelFunc
	ch     clientv3.WatchChan
}

// newWaiter watches the keys from revision rev+1: all of them, or all but
// the leader key; requireLeader breaks the watch when the etcd member it
// is on has no leader.
func (c *Coordinator) newWaiter(rev int64, all, requireLeader bool) *waiter {
	ctx, cancel := context.WithCancel(c.s.ctx)
	w := &waiter{c: c, all: all, cancel: cancel}
	end := c.keys.waitEnd
	if !all {
		end = c.keys.heirEnd
	}
	wctx := ctx
	if requireLeader {
		wctx = clientv3.WithRequireLeader(ctx)
	}
	w.ch = c.cli.Watch(wctx, c.keys.waitFrom, clientv3.WithRange(end), clientv3.WithRev(rev+1))
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
	case <-c.s.done:
		return 0, c.check("campaign")
	case <-due:
		return wakeTurn, nil
	case <-recount:
		return wakeRecount, nil
	case resp, ok := <-w.ch:
		if ok && resp.CompactRevision != 0 {
			return wakeStale, nil // read again at once: the read cannot be compacted
		}
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
