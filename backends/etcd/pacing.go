package etcd

import (
	"context"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/clock"
)

// pacer answers, for one campaign, when it may do what decide says: at
// once, or after a delay (then after a recheck of the state); and when to
// count the member records again. It never answers whether: a
// transaction sent at any time succeeds only if its conditions hold.
//
// Its inputs are decide's decision (a first member never waits; one that
// ranked eligible but not best waits the failover wait first, and a few
// milliseconds more per place below the second) and the latest count of
// members (herdDelay).
type pacer struct {
	c       *Coordinator
	turn    clock.Timer // this member's turn to try, while a vacancy lasts
	ready   bool        // the turn has come
	delayed bool        // it came after a delay
	ranked  bool        // the turn is a failover wait's (decision.wait)
	recount clock.Timer // when to count the member records again
}

func (c *Coordinator) newPacer() *pacer { return &pacer{c: c} }

// now reports whether to try d now, and if so whether to recheck the
// state first (the turn came after a delay: see recheck). A decision to
// wait cancels the turn, and a first one tries at once; any other starts
// a turn, unless one of its kind (a failover wait or not) is running,
// which then goes on (what to try may change while the vacancy lasts).
func (p *pacer) now(d decision) (try, recheck bool) {
	if d.act == actWait || d.act == actAdopt {
		p.cancel()
		return false, false
	}
	if d.first {
		p.cancel()
		return true, false
	}
	if p.turn != nil && p.ranked != d.wait {
		p.cancel()
	}
	if !p.ready && p.turn == nil {
		p.ranked = d.wait
		if delay := p.delay(d); delay > 0 {
			p.turn = p.c.clk.NewTimer(delay)
		} else {
			p.ready = true
		}
	}
	if !p.ready {
		return false, false
	}
	recheck = p.delayed
	p.ready, p.delayed = false, false
	return true, recheck
}

// delay returns how long to wait before trying d: nothing for a first
// member, else the herd delay, after the failover wait and rankStep per
// place below the second for a member that ranked eligible but not best.
func (p *pacer) delay(d decision) time.Duration {
	if d.first {
		return 0
	}
	herd := p.c.herdDelay()
	if d.wait {
		return p.c.cfg.Ranking.Wait(p.c.cfg.TTL) + time.Duration(max(d.place-1, 0))*rankStep + herd
	}
	return herd
}

// rankStep is how much later than the one above it an eligible member
// that is not best tries after the failover wait: about the time a
// transaction takes to commit and reach the others' watches, so that the
// second best, if it lives, leads before the third tries.
const rankStep = 20 * time.Millisecond

// cancel drops the turn.
func (p *pacer) cancel() {
	if p.turn != nil {
		p.turn.Stop()
		p.turn = nil
	}
	p.ready, p.delayed = false, false
}

// timers returns the channels of the turn and of the next recount (nil
// for no turn), starting the recount's timer if none runs.
func (p *pacer) timers() (turn, recount <-chan time.Time) {
	if p.recount == nil {
		p.recount = p.c.clk.NewTimer(p.c.recountDelay())
	}
	if p.turn != nil {
		turn = p.turn.C()
	}
	return turn, p.recount.C()
}

// fired takes note that the timer of w fired; st is the state then.
func (p *pacer) fired(w wake, st electionState) {
	switch w {
	case wakeTurn:
		p.turn, p.ready, p.delayed = nil, true, true
	case wakeRecount:
		p.recount = nil
		if st.leader != nil {
			// Never while the leadership is vacant: the herd is
			// racing then.
			p.c.recount()
		}
	}
}

// stop stops the timers.
func (p *pacer) stop() {
	p.cancel()
	if p.recount != nil {
		p.recount.Stop()
		p.recount = nil
	}
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
		ctx, cancel := context.WithTimeout(c.s.ctx, c.cfg.DialTimeout)
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
// returns what it read if that is newer than st. After a herd delay this
// is how a waiter learns of the winner before the winner's key reaches it
// through the watch, which with thousands of watchers takes as long as
// etcd needs to send one event to each of them: without it, every waiter
// whose delay ends within that time sends a transaction (a raft write)
// that can only fail.
func (c *Coordinator) recheck(ctx context.Context, st electionState) (electionState, bool) {
	fresh, err := c.getState(ctx, clientv3.WithSerializable())
	if err != nil || fresh.rev <= st.rev {
		return st, false
	}
	return fresh, true
}
