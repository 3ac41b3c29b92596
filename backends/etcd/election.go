package etcd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// retryDelay is the pause between attempts after a failed request.
const retryDelay = 100 * time.Millisecond

// Campaign blocks until this member leads, ctx is done (it returns
// ctx.Err(), and removes the leader key if a request in flight created it),
// or the session ends (coordinator.ErrSessionClosed). Each round, it takes
// the state from its follower, asks decide what to do and the pacer when,
// and sends that transaction or waits for a change (see decide.go).
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
	defer context.AfterFunc(c.s.ctx, cancelRequests)()

	// The member records are counted once per campaign, with its first
	// read, then now and then while it waits (pacer): a count walks every
	// record. The first read also puts the candidate key (rank.go).
	counted, candidate := false, false
	f := c.newFollower("campaign", func(ctx context.Context) (electionState, error) {
		st, err := c.readElection(ctx, !counted, !candidate && !c.never())
		counted = counted || err == nil
		candidate = candidate || (err == nil && !c.never())
		return st, err
	})
	p := c.newPacer()
	claimed := false   // a claim of the heir's place was sent: give it up unless leading
	uncertain := false // the campaign ends on a failed request to lead: it may have created the leader key
	var rk standing    // this member's standing at the current vacancy
	defer func() {
		f.stop()
		p.stop()
		if err != nil && (claimed || uncertain || candidate) {
			c.abandon(uncertain)
		}
	}()
	for {
		if err := c.campaignDone(ctx); err != nil {
			return nil, err
		}
		st, err := f.current(ctx, rctx, c.campaignDone)
		if err != nil {
			return nil, err
		}
		if !rk.holds(st) {
			rk = standing{}
		}
		me := c.self()
		me.rank = rk
		d := decide(st, me)
		if d.act == actAdopt {
			handedOver := st.heirIs(c.s.lease)
			// The place is left after the term began, so that the
			// others, who wake for it, do not stand between the
			// handover and this member.
			c.spawn(func() { c.adopted(handedOver) })
			return c.won(st.leader.CreateRevision, handedOver, false)
		}
		if (d.first || d.wait) && d.act == actLead && !f.known {
			// This member did not follow the leader key: read it before
			// trying (a handover may have created this member's key).
			f.invalidate()
			continue
		}
		if try, recheck := p.now(d); try {
			if d.act == actRank || (recheck && d.wait) {
				// The ranking, read once per vacancy, and again when a
				// turn comes after the failover wait.
				fresh, r, err := c.readRanking(rctx)
				if err != nil {
					if err := c.retry(ctx, "campaign: read ranking", err); err != nil {
						return nil, err
					}
					f.invalidate()
					continue
				}
				f.replace(fresh)
				rk = r.standing(c.cfg.ID, fresh.heirID, modRev(fresh.heir), c.cfg.Ranking)
				if d.act == actRank {
					continue
				}
				me.rank = rk
				if decide(fresh, me).act != d.act {
					continue
				}
				st = fresh
			} else if recheck {
				if fresh, ok := c.recheck(rctx, st); ok {
					f.replace(fresh)
					if decide(fresh, me).act != d.act {
						continue // somebody else moved while this one waited
					}
					st = fresh
				}
			}
			claimed = claimed || d.act == actClaim
			var l coordinator.Leadership
			if l, uncertain, err = c.attempt(ctx, rctx, d.act, &st, rk); l != nil || err != nil {
				return l, err
			}
			if st.rev == 0 {
				f.invalidate() // the request failed: read again
			} else {
				f.replace(st) // the state the transaction saw
				if d.act == actPass {
					if st.heirID == rk.best && st.passed() {
						rk.heirRev = modRev(st.heir) // passed by this member: the standing holds
					} else {
						rk = standing{} // the best's keys changed: rank again
					}
				}
			}
			continue
		}
		turn, recount := p.timers()
		what, err := f.wait(ctx, d.first || d.wait, turn, recount)
		if err != nil {
			return nil, err
		}
		p.fired(what, f.st)
	}
}

// never reports whether this member has priority 0.
func (c *Coordinator) never() bool { return c.cfg.Ranking.EffectivePriority() == 0 }

// adopted gives up, after a term was adopted, the candidate key and, if
// the term was handed over, the heir's place.
func (c *Coordinator) adopted(handedOver bool) {
	ops := []clientv3.Op{c.leaveCandidateOp()}
	if handedOver {
		ops = append(ops, c.leaveHeirOp())
	}
	c.drop(false, "leadership: give up the heir's place and the candidate key", ops...)
}

// retry logs a failed request of a campaign and pauses, or returns the
// error that ends the campaign.
func (c *Coordinator) retry(ctx context.Context, what string, err error) error {
	if err := c.campaignDone(ctx); err != nil {
		return err
	}
	c.log.Warn(what, "err", err)
	return c.backoff(ctx, retryDelay)
}

// self returns what decide knows of this member.
func (c *Coordinator) self() self {
	c.mu.Lock()
	defer c.mu.Unlock()
	return self{id: c.cfg.ID, lease: c.s.lease, ended: c.lastEnded, never: c.never(),
		many: c.counted.Load() > rankMaxMembers, plain: c.plainRule}
}

// attempt sends the transaction of act (actLead, actClaim or actPass, to
// the best of s) for st. It
// returns the term if it led; nil and nil if it did not, st then holding
// the state the transaction saw (rev 0 after a failed request, retried
// after a pause); or the error that ends the campaign, uncertain if that
// came as a request to lead failed (it may have created the leader key).
func (c *Coordinator) attempt(ctx, rctx context.Context, act action, st *electionState, s standing) (_ coordinator.Leadership, uncertain bool, _ error) {
	var ok bool
	var token int64
	var err error
	switchover := st.switchTo == c.cfg.ID
	switch act {
	case actLead:
		token, ok, err = c.tryLead(rctx, st)
	case actPass:
		ok, err = c.passHeir(rctx, st, s)
	default:
		ok, err = c.claimHeir(rctx, st)
	}
	switch {
	case err == nil && ok && act == actLead:
		l, err := c.won(token, false, switchover)
		return l, false, err
	case err == nil:
		return nil, false, nil
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return nil, false, c.sessionErr("campaign", err)
	}
	if err := c.campaignDone(ctx); err != nil {
		return nil, act == actLead, err
	}
	c.log.Warn("campaign: transaction", "err", err)
	if err := c.backoff(ctx, retryDelay); err != nil {
		return nil, false, err
	}
	*st = electionState{}
	return nil, false, nil
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
	case <-c.s.done:
		return c.check("campaign")
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
	ops := append(clear, clientv3.OpPut(own, c.cfg.ID, clientv3.WithLease(c.s.lease)), c.leaveCandidateOp())
	if st.switchover != nil {
		// The request is fulfilled by this term.
		ops = append(ops, clientv3.OpDelete(c.keys.switchover))
	}
	if st.heirIs(c.s.lease) {
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
		clientv3.OpPut(c.keys.heir, c.cfg.ID, clientv3.WithLease(c.s.lease)), c.readOp(),
	).Else(c.readOp()).Commit()
	if err != nil {
		return false, err
	}
	*st = c.stateOf(resp.Header.Revision, resp.Responses[len(resp.Responses)-1].GetResponseRange())
	return resp.Succeeded, nil
}

// abandon removes what a campaign that ends without leading may have
// left: the heir's place (claimed or passed to it), so that the others
// need not wait until the session ends; its candidate key; and its leader
// key, if a request whose answer was not seen created it (uncertain: then
// even while the session closes), or a resigning leader handed over as
// the campaign ended.
func (c *Coordinator) abandon(uncertain bool) {
	c.drop(uncertain, "campaign: give up the heir's place, the candidate key and the leader key",
		c.leaveHeirOp(), c.leaveCandidateOp(), c.leaderKeyOp())
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
	return clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(key), "=", c.s.lease)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)
}

// drop sends ops in one transaction, logging a failure as what. Unless
// always, only while the session lives: once it has ended, its lease takes
// its keys with it.
func (c *Coordinator) drop(always bool, what string, ops ...clientv3.Op) {
	parent := c.s.ctx
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
	mctx, cancel := context.WithCancel(c.s.ctx)
	l := &leadership{c: c, token: token, done: make(chan struct{}), cancel: cancel}
	c.mu.Lock()
	// Under c.mu, where the session's end takes the term (sessionEnded):
	// either the session still lives and its end will end this term, or
	// no term is granted.
	if !c.s.add() {
		c.mu.Unlock()
		cancel()
		c.abandon(true)
		return nil, fmt.Errorf("campaign %s: %w", c.cfg.ID, coordinator.ErrSessionClosed)
	}
	c.leader = l
	c.mu.Unlock()
	go l.monitor(mctx)
	c.log.Info("leadership won", "token", token)
	c.spawn(func() { c.recordBegin(token, handedOver, switchover) })
	return l, nil
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

// release deletes the leader key if the term token created it, and hands
// over if it can. With view (the keys as the term's monitor saw them)
// showing the cluster not paused and no switchover naming a member other
// than the one in the heir's place, the successor is the best eligible
// candidate of a ranking read now (bounded by DialTimeout), or the member
// a switchover names. The same transaction that deletes the leader's key
// creates the successor's, bound to the successor's lease: the successor
// learns that it leads from its watch, and no member makes a request
// between the two terms. A successor that is not in the heir's place is
// put there too, since it watches the place (not the leader key) and so
// wakes. The successor then leaves the place itself (the others wake for
// it, and would stand between the handover and the successor if this
// transaction left it). When the keys changed since, or the successor's
// lease is gone, or nobody is eligible, the key is only deleted, with the
// place if this member still holds it (a term handed over whose holder did
// not leave it yet).
func (c *Coordinator) release(ctx context.Context, token int64, view electionState) error {
	own := c.keys.leaderOf(c.cfg.ID)
	if view.rev != 0 && view.pause == nil && (view.switchTo == "" || view.switchTo == view.heirID) {
		if to, lease, cmps := c.successor(ctx, view); to != "" {
			var swRev int64
			ops := []clientv3.Op{
				c.historyEndOp(token, endReason(view)),
				clientv3.OpDelete(own),
				clientv3.OpPut(c.keys.leaderOf(to), to, clientv3.WithLease(lease)),
			}
			if to != view.heirID {
				ops = append(ops, clientv3.OpPut(c.keys.heir, to, clientv3.WithLease(lease)))
			}
			if view.switchover != nil {
				swRev = view.switchover.ModRevision
				ops = append(ops, clientv3.OpDelete(c.keys.switchover)) // fulfilled
			}
			resp, err := c.cli.Txn(ctx).If(append([]clientv3.Cmp{
				clientv3.Compare(clientv3.CreateRevision(own), "=", token),
				clientv3.Compare(clientv3.ModRevision(c.keys.heir), "=", modRev(view.heir)),
				clientv3.Compare(clientv3.CreateRevision(c.keys.pause), "=", 0),
				clientv3.Compare(clientv3.ModRevision(c.keys.switchover), "=", swRev),
			}, cmps...)...).Then(ops...).Commit()
			switch {
			case err == nil && resp.Succeeded:
				c.log.Info("leadership handed over", "token", token, "to", to)
				return nil
			case err != nil && ctx.Err() != nil:
				return err
			}
			// The keys changed, or the successor's lease is gone.
		}
	}
	_, err := c.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(own), "=", token),
	).Then(clientv3.OpDelete(own), c.leaveHeirOp(), c.historyResignOp(token)).Commit()
	return err
}

// successor returns whom release hands over to, the lease to bind the
// successor's key to and the conditions on the successor's keys: the
// member in the heir's place when a switchover names it or it ranks best
// (the place's lease); else the best eligible candidate of a ranking read
// now (its candidate key's lease, and its candidate key and record as
// read); "" when nobody is eligible or the read fails.
func (c *Coordinator) successor(ctx context.Context, view electionState) (string, clientv3.LeaseID, []clientv3.Cmp) {
	heir := view.heirID
	if heir == c.cfg.ID {
		heir = "" // a term handed over whose holder did not leave the place yet
	}
	if view.switchTo != "" || c.plainRule {
		if heir == "" {
			return "", 0, nil
		}
		return heir, clientv3.LeaseID(view.heir.Lease), nil
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	_, r, err := c.readRanking(rctx)
	if err != nil {
		c.log.Warn("resign: read ranking; the leader key is only deleted", "err", err)
		return "", 0, nil
	}
	to, cd := r.best(c.cfg.ID, heir, c.cfg.Ranking)
	switch {
	case to == "":
		return "", 0, nil
	case to == heir:
		return heir, clientv3.LeaseID(view.heir.Lease), nil
	}
	return to, cd.lease, []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(c.keys.candidates+to), "=", cd.rev),
		clientv3.Compare(clientv3.CreateRevision(c.keys.members+to), "=", cd.recRev),
	}
}

// releaseLater retries release until it succeeds or the session ends.
func (c *Coordinator) releaseLater(token int64) {
	for {
		if err := c.backoff(c.s.ctx, retryDelay); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(c.s.ctx, c.cfg.DialTimeout)
		err := c.release(ctx, token, electionState{})
		cancel()
		if err == nil {
			return
		}
		if c.s.ctx.Err() != nil {
			return
		}
		c.log.Warn("resign: release leader key", "token", token, "err", err)
	}
}

// monitor ends the term when its leader key is deleted or replaced by
// anything but this term (an operator, a bug elsewhere), and keeps the
// view of the heir's place and the control keys that Resign hands over by.
func (l *leadership) monitor(ctx context.Context) {
	c := l.c
	defer c.s.wg.Done()
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
	// The keys as read, then as the watch changes them; read again when
	// the watch ends (compaction, error). A read that fails is retried
	// quietly: the session's deadline, not the monitor, bounds a term
	// that etcd cannot confirm.
	f := c.newFollower("", func(ctx context.Context) (electionState, error) { return c.getState(ctx) })
	f.anyLeader = true
	defer f.stop()
	for {
		st, err := f.current(ctx, ctx, func(ctx context.Context) error { return ctx.Err() })
		if err != nil || !follow(st) {
			return
		}
		if _, err := f.wait(ctx, true, nil, nil); err != nil {
			return
		}
	}
}
