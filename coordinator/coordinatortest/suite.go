package coordinatortest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

// Timeouts of the suite. They bound waits for things that must happen; none
// of them is a time the suite waits for on purpose, except quietPeriod.
const (
	// waitTimeout bounds a wait for something the backend does promptly
	// (an event, a handover, a campaign won). It is generous so that a real
	// etcd on a loaded machine passes.
	waitTimeout = 15 * time.Second
	// handoverLimit is how long a graceful handover (Resign, Close) may take
	// at most: well under the shortest TTL a backend accepts (2 s), so that
	// a backend that waits for the lease to expire instead of releasing at
	// once fails.
	handoverLimit = 1500 * time.Millisecond
	// quietPeriod is how long the suite watches for something that must
	// NOT happen (a campaign won while paused). A short window cannot prove
	// a negative, but it catches a backend that ignores the rule.
	quietPeriod = 300 * time.Millisecond
)

// Run runs every property of the contract against the backend that
// newHarness builds. Each property is a subtest with a fresh harness, so a
// backend may give each one a new cluster (or a new server).
//
// The properties, by subtest name:
//
//	Register/VisibleToAll          every member sees every record
//	Register/UpdateReplacesRecord  registering again replaces the record
//	Register/ForeignIDRejected     a handle registers only its own id
//	Register/GoneOnClose           Close deletes the record
//	Register/GoneOnExpire          an expired session's record vanishes
//	Leader/VacantIsErrNoLeader     Leader reports ErrNoLeader when vacant
//	Campaign/ExactlyOne/N=2,5,50   of N simultaneous campaigns one wins
//	Campaign/WhileLeading          campaigning again returns the term
//	Campaign/CancelledLeavesNoTrace
//	Campaign/AfterClose            fails with ErrSessionClosed
//	Campaign/AfterExpire           fails with ErrSessionClosed
//	Campaign/SessionEndsWhileWaiting  a waiting Campaign returns ErrSessionClosed
//	Resign/HandsOver               a waiting member takes over at once
//	Resign/Idempotent
//	Expire/LeaderReplaced          loss reported before anybody else leads
//	Expire/OneOfManyTakesOver      of 5 waiting members exactly one takes over
//	Tokens/StrictlyIncrease        across resign, close and expiry
//	Watch/StartsWithCurrentState
//	Watch/LeaderChangesInOrder
//	Watch/MemberEvents             joined, updated, left
//	Watch/ClosedOnCancel
//	Watch/ClosedOnSessionEnd
//	Close/IdempotentAndReleases
//	Close/CallsFailAfterwards
//	Pause/StopsTakeover            and Resume restores it
//	Switchover/ToNamedMember
//	Switchover/UnknownMember
//	Switchover/PicksTarget         an empty target is coordinator.Best
//	Switchover/ClearedWhenTargetLeaves
//	LeaseRemaining                 when the backend is a LeaseReporter
//	ClaimSlot/Once                 when the backend is a SlotClaimer
//	History/Reasons                every reason a term begins and ends, when
//	                               the backend is a Historian
//	History/CloseResigns           Close of a leader records a resignation
//
// When the harness is a RankedHarness (coordinator.Ranking):
//
//	Ranking/PublishesPriority       the record says the ranking's priority
//	Ranking/CrashPicksMostCaughtUp  at 1000 (crashed), 900 and 500 (the plain
//	                                rule's pick), 900 takes over
//	Ranking/PriorityZeroNeverLeads  not at a crash, a handover or a
//	                                switchover, though most caught up
//	Ranking/SwitchoverToPriorityZero  refused with ErrIneligible
//	Ranking/MaxLagThenFailover      all too far behind: nobody takes over,
//	                                until a forced Failover (Failoverer)
//	Ranking/BestAbsentOthersWait    the best does not campaign: another
//	                                takes over after the failover wait
//	Ranking/ResignHandsToBest       not to the plain rule's pick
//	Ranking/LastPosition            kept after the master went away
//	                                (LastPositioner)
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	s := suite{newHarness: newHarness}
	t.Run("Register", func(t *testing.T) {
		t.Run("VisibleToAll", s.registerVisibleToAll)
		t.Run("UpdateReplacesRecord", s.registerUpdate)
		t.Run("ForeignIDRejected", s.registerForeignID)
		t.Run("GoneOnClose", s.registerGoneOnClose)
		t.Run("GoneOnExpire", s.registerGoneOnExpire)
	})
	t.Run("Leader", func(t *testing.T) {
		t.Run("VacantIsErrNoLeader", s.leaderVacant)
	})
	t.Run("Campaign", func(t *testing.T) {
		t.Run("ExactlyOne", func(t *testing.T) {
			for _, n := range []int{2, 5, 50} {
				t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) { s.campaignExactlyOne(t, n) })
			}
		})
		t.Run("WhileLeading", s.campaignWhileLeading)
		t.Run("CancelledLeavesNoTrace", s.campaignCancelled)
		t.Run("AfterClose", s.campaignAfterClose)
		t.Run("AfterExpire", s.campaignAfterExpire)
		t.Run("SessionEndsWhileWaiting", s.campaignSessionEnds)
	})
	t.Run("Resign", func(t *testing.T) {
		t.Run("HandsOver", s.resignHandsOver)
		t.Run("Idempotent", s.resignIdempotent)
	})
	t.Run("Expire", func(t *testing.T) {
		t.Run("LeaderReplaced", s.expireLeaderReplaced)
		t.Run("OneOfManyTakesOver", s.expireOneOfMany)
	})
	t.Run("Tokens", func(t *testing.T) {
		t.Run("StrictlyIncrease", s.tokensIncrease)
	})
	t.Run("Watch", func(t *testing.T) {
		t.Run("StartsWithCurrentState", s.watchStartsWithState)
		t.Run("LeaderChangesInOrder", s.watchLeaderChanges)
		t.Run("MemberEvents", s.watchMemberEvents)
		t.Run("ClosedOnCancel", s.watchClosedOnCancel)
		t.Run("ClosedOnSessionEnd", s.watchClosedOnSessionEnd)
	})
	t.Run("Close", func(t *testing.T) {
		t.Run("IdempotentAndReleases", s.closeReleases)
		t.Run("CallsFailAfterwards", s.closeCallsFail)
	})
	t.Run("Pause", func(t *testing.T) {
		t.Run("StopsTakeover", s.pauseStopsTakeover)
	})
	t.Run("Switchover", func(t *testing.T) {
		t.Run("ToNamedMember", s.switchoverToNamed)
		t.Run("UnknownMember", s.switchoverUnknown)
		t.Run("PicksTarget", s.switchoverPicks)
		t.Run("ClearedWhenTargetLeaves", s.switchoverTargetLeaves)
	})
	t.Run("LeaseRemaining", s.leaseRemaining)
	t.Run("Reopen", func(t *testing.T) {
		t.Run("RefusedWhileLive", s.reopenWhileLive)
		t.Run("AfterExpire", s.reopenAfterExpire)
	})
	t.Run("ClaimSlot", func(t *testing.T) {
		t.Run("Once", s.claimSlotOnce)
	})
	t.Run("History", func(t *testing.T) {
		t.Run("Reasons", s.historyReasons)
		t.Run("CloseResigns", s.historyCloseResigns)
	})
	t.Run("Ranking", func(t *testing.T) {
		t.Run("PublishesPriority", s.rankingPublishesPriority)
		t.Run("CrashPicksMostCaughtUp", s.rankingCrashPicksMostCaughtUp)
		t.Run("PriorityZeroNeverLeads", s.rankingPriorityZeroNeverLeads)
		t.Run("SwitchoverToPriorityZero", s.rankingSwitchoverToPriorityZero)
		t.Run("MaxLagThenFailover", s.rankingMaxLagThenFailover)
		t.Run("BestAbsentOthersWait", s.rankingBestAbsentOthersWait)
		t.Run("ResignHandsToBest", s.rankingResignHandsToBest)
		t.Run("LastPosition", s.rankingLastPosition)
	})
}

type suite struct {
	newHarness func(t *testing.T) Harness
}

// cluster is one subtest's harness with helpers.
type cluster struct {
	t *testing.T
	h Harness
}

func (s suite) cluster(t *testing.T) cluster {
	t.Helper()
	return cluster{t: t, h: s.newHarness(t)}
}

// ctx returns a context bounded by waitTimeout, cancelled at cleanup.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// member opens a handle for id and registers it in state running.
func (c cluster) member(id string) coordinator.Coordinator {
	c.t.Helper()
	m := c.h.New(c.t, id)
	if m.ID() != id {
		c.t.Fatalf("New(%q).ID() = %q; want %q", id, m.ID(), id)
	}
	register(c.t, m, coordinator.StateRunning)
	return m
}

func register(t *testing.T, m coordinator.Coordinator, state coordinator.State) coordinator.Member {
	t.Helper()
	rec := record(m, state)
	if err := m.Register(testContext(t), rec); err != nil {
		t.Fatalf("Register(%s): %v", m.ID(), err)
	}
	return rec
}

// record is the record the suite registers for m in state.
func record(m coordinator.Coordinator, state coordinator.State) coordinator.Member {
	return coordinator.Member{
		ID:        m.ID(),
		Host:      "host-" + m.ID(),
		Address:   "10.0.0.1",
		Ports:     []int{5432},
		Role:      coordinator.RoleSlave,
		State:     state,
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Version:   "test",
	}
}

// campaignResult is what an asynchronous Campaign returned.
type campaignResult struct {
	id  string
	l   coordinator.Leadership
	err error
}

// campaign starts m.Campaign in a goroutine that the test waits for at
// cleanup. The returned channel receives the result once.
func campaign(t *testing.T, ctx context.Context, m coordinator.Coordinator) <-chan campaignResult {
	t.Helper()
	ch, _, _ := campaignWatched(t, ctx, m)
	return ch
}

// campaignWatched is campaign that also returns the campaign's context, to
// see when the campaign waits on it, and its cancel function.
func campaignWatched(t *testing.T, parent context.Context, m coordinator.Coordinator) (<-chan campaignResult, *watchedContext, context.CancelFunc) {
	t.Helper()
	ctx, cancel := newWatchedContext(parent)
	ch := make(chan campaignResult, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l, err := m.Campaign(ctx)
		ch <- campaignResult{id: m.ID(), l: l, err: err}
	}()
	t.Cleanup(func() {
		cancel()
		if !waitGroup(&wg, waitTimeout) {
			t.Errorf("Campaign of %s still running at cleanup", m.ID())
		}
	})
	return ch, ctx, cancel
}

// waiting waits until a campaign waits on its context.
func waiting(t *testing.T, ctx *watchedContext, who string) {
	t.Helper()
	waitFor(t, ctx.called, waitTimeout, "Campaign("+who+") waiting on its context")
}

func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// watchedContext is a context that reports when its Done channel was
// first asked for: a Campaign that waits must select on ctx.Done(), so once
// it did, the campaign is past its start. (A backend may also ask earlier,
// for instance to derive a context; then the signal comes early, and the
// property is tested at an earlier point of the campaign.)
type watchedContext struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func newWatchedContext(parent context.Context) (*watchedContext, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	return &watchedContext{Context: ctx, called: make(chan struct{})}, cancel
}

// Done returns the parent's Done channel and signals the first call.
func (c *watchedContext) Done() <-chan struct{} {
	c.once.Do(func() { close(c.called) })
	return c.Context.Done()
}

// lead campaigns synchronously and fails the test unless m wins.
func lead(t *testing.T, m coordinator.Coordinator) coordinator.Leadership {
	t.Helper()
	r := waitResult(t, campaign(t, testContext(t), m), m.ID(), waitTimeout)
	if r.err != nil {
		t.Fatalf("Campaign(%s): %v", m.ID(), r.err)
	}
	return r.l
}

// waitResult waits for a campaign's result, failing after d.
func waitResult(t *testing.T, ch <-chan campaignResult, who string, d time.Duration) campaignResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("Campaign(%s) did not return within %v", who, d)
		return campaignResult{}
	}
}

// waitWon waits for a campaign to be won by want.
func waitWon(t *testing.T, ch <-chan campaignResult, want string, d time.Duration) coordinator.Leadership {
	t.Helper()
	r := waitResult(t, ch, want, d)
	if r.err != nil {
		t.Fatalf("Campaign(%s): %v; want leadership", want, r.err)
	}
	if r.id != want {
		t.Fatalf("campaign won by %s; want %s", r.id, want)
	}
	return r.l
}

// notReturned fails if the campaign has already returned.
func notReturned(t *testing.T, ch <-chan campaignResult, why string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Campaign(%s) returned (leadership %v, err %v) %s; want still waiting", r.id, r.l != nil, r.err, why)
	default:
	}
}

// waitFor waits until ch is closed or receives, failing after timeout.
func waitFor(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not done within %v", what, timeout)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, waitTimeout, state)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a bounded poll
	}
}

func memberIDs(ms []coordinator.Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

func ids(ss ...string) string { return strings.Join(ss, ",") }

// waitMembers polls m.Members until the ids are want (sorted).
func waitMembers(t *testing.T, m coordinator.Coordinator, want ...string) []coordinator.Member {
	t.Helper()
	var got []coordinator.Member
	eventually(t, fmt.Sprintf("Members() seen by %s = [%s]", m.ID(), ids(want...)), func() (bool, string) {
		var err error
		got, err = m.Members(testContext(t))
		if err != nil {
			return false, err.Error()
		}
		return ids(memberIDs(got)...) == ids(want...), "[" + ids(memberIDs(got)...) + "]"
	})
	return got
}

func leaderOf(t *testing.T, m coordinator.Coordinator) (coordinator.Leader, error) {
	t.Helper()
	return m.Leader(testContext(t))
}

func wantLeader(t *testing.T, m coordinator.Coordinator, id string, token int64) {
	t.Helper()
	got, err := leaderOf(t, m)
	if err != nil {
		t.Fatalf("Leader() seen by %s: %v; want %s", m.ID(), err, id)
	}
	if got.ID != id || got.Token != token {
		t.Fatalf("Leader() seen by %s = %+v; want {ID:%s Token:%d}", m.ID(), got, id, token)
	}
}

func wantNoLeader(t *testing.T, m coordinator.Coordinator) {
	t.Helper()
	got, err := leaderOf(t, m)
	if !errors.Is(err, coordinator.ErrNoLeader) {
		t.Fatalf("Leader() seen by %s = %+v, %v; want ErrNoLeader", m.ID(), got, err)
	}
}

// lostErr reports whether err is one of the sentinels that say a session or
// a term was lost for lack of renewal.
func lostErr(err error) bool {
	return errors.Is(err, coordinator.ErrSessionExpired) || errors.Is(err, coordinator.ErrLeaseDeadline)
}

// watch starts a watch on m, cancelled at cleanup.
func watch(t *testing.T, m coordinator.Coordinator) (<-chan coordinator.Event, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := m.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch(%s): %v", m.ID(), err)
	}
	return ch, cancel
}

// next receives the next event, failing after waitTimeout.
func next(t *testing.T, ch <-chan coordinator.Event) coordinator.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed; want an event")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %v", waitTimeout)
		return coordinator.Event{}
	}
}

// until receives events until one satisfies match, returning it and the
// events skipped.
func until(t *testing.T, ch <-chan coordinator.Event, what string, match func(coordinator.Event) bool) (coordinator.Event, []coordinator.Event) {
	t.Helper()
	var skipped []coordinator.Event
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed waiting for %s; skipped %s", what, describe(skipped))
			}
			if match(ev) {
				return ev, skipped
			}
			skipped = append(skipped, ev)
		case <-timeout:
			t.Fatalf("no %s within %v; skipped %s", what, waitTimeout, describe(skipped))
		}
	}
}

func describe(evs []coordinator.Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		parts[i] = describeOne(ev)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func describeOne(ev coordinator.Event) string {
	switch ev.Type {
	case coordinator.EventMemberJoined, coordinator.EventMemberUpdated, coordinator.EventMemberLeft:
		return fmt.Sprintf("%v(%s)", ev.Type, ev.Member.ID)
	case coordinator.EventLeaderChanged:
		return fmt.Sprintf("%v(%s,%d)", ev.Type, ev.Leader.ID, ev.Leader.Token)
	case coordinator.EventSwitchover:
		return fmt.Sprintf("%v(%s)", ev.Type, ev.SwitchoverTo)
	default:
		return ev.Type.String()
	}
}

// waitClosed waits until the watch channel is closed, draining events.
func waitClosed(t *testing.T, ch <-chan coordinator.Event, what string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("%s: watch not closed within %v", what, waitTimeout)
		}
	}
}

// --- Register ---

func (s suite) registerVisibleToAll(t *testing.T) {
	c := s.cluster(t)
	a, b, d := c.member("a"), c.member("b"), c.member("d")
	for _, m := range []coordinator.Coordinator{a, b, d} {
		got := waitMembers(t, m, "a", "b", "d")
		for _, rec := range got {
			if rec.Host != "host-"+rec.ID || rec.State != coordinator.StateRunning || len(rec.Ports) != 1 || rec.Ports[0] != 5432 {
				t.Errorf("record of %s seen by %s = %+v; want the registered one", rec.ID, m.ID(), rec)
			}
			if !rec.StartedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("StartedAt of %s = %v; want 2026-01-02T03:04:05Z", rec.ID, rec.StartedAt)
			}
		}
	}
}

func (s suite) registerUpdate(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	register(t, a, coordinator.StateActive)
	eventually(t, "b sees a's new state", func() (bool, string) {
		ms, err := b.Members(testContext(t))
		if err != nil {
			return false, err.Error()
		}
		for _, m := range ms {
			if m.ID == "a" {
				return m.State == coordinator.StateActive, string(m.State)
			}
		}
		return false, "a missing"
	})
	waitMembers(t, b, "a", "b")
}

func (s suite) registerForeignID(t *testing.T) {
	c := s.cluster(t)
	a := c.h.New(t, "a")
	err := a.Register(testContext(t), coordinator.Member{ID: "someone-else", State: coordinator.StateRunning})
	if err == nil {
		t.Fatal("Register with another member's id: got nil error; want an error")
	}
	// An empty id means the handle's own.
	if err := a.Register(testContext(t), coordinator.Member{State: coordinator.StateRunning}); err != nil {
		t.Fatalf("Register with an empty id: %v; want nil", err)
	}
	got := waitMembers(t, a, "a")
	if got[0].ID != "a" {
		t.Errorf("record id = %q; want %q", got[0].ID, "a")
	}
}

func (s suite) registerGoneOnClose(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	waitMembers(t, b, "a", "b")
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitMembers(t, b, "b")
}

func (s suite) registerGoneOnExpire(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	waitMembers(t, b, "a", "b")
	c.h.Expire(t, a)
	waitMembers(t, b, "b")
	waitFor(t, a.Done(), waitTimeout, "Done of the expired session")
	if err := a.Err(); !lostErr(err) {
		t.Errorf("Err() of the expired session = %v; want ErrSessionExpired or ErrLeaseDeadline", err)
	}
}

// --- Leader ---

func (s suite) leaderVacant(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	wantNoLeader(t, a)
	l := lead(t, a)
	wantLeader(t, a, "a", l.Token())
	if err := l.Resign(testContext(t)); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	wantNoLeader(t, a)
}

// --- Campaign ---

func (s suite) campaignExactlyOne(t *testing.T, n int) {
	c := s.cluster(t)
	ms := make([]coordinator.Coordinator, n)
	for i := range ms {
		ms[i] = c.member(fmt.Sprintf("m%02d", i))
	}
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	results := make(chan campaignResult, n)
	ctxs := make(map[string]*watchedContext, n)
	for _, m := range ms {
		ctxs[m.ID()], _ = newWatchedContext(ctx) // cancelled with ctx
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := m.Campaign(ctxs[m.ID()])
			results <- campaignResult{id: m.ID(), l: l, err: err}
		}()
	}
	close(start)
	defer func() {
		cancel()
		if !waitGroup(&wg, waitTimeout) {
			t.Error("campaigns still running after cancel")
		}
	}()

	var winner campaignResult
	select {
	case winner = <-results:
	case <-time.After(waitTimeout):
		t.Fatalf("no campaign won within %v", waitTimeout)
	}
	if winner.err != nil {
		t.Fatalf("first campaign to return: %v; want leadership", winner.err)
	}
	// Wait until every other campaign is waiting on its context, so that
	// all N really competed.
	for id, wctx := range ctxs {
		if id != winner.id {
			waiting(t, wctx, id)
		}
	}
	select {
	case r := <-results:
		t.Fatalf("a second campaign returned (%s: leadership %v, err %v) while %s leads", r.id, r.l != nil, r.err, winner.id)
	default:
	}
	wantLeader(t, ms[0], winner.id, winner.l.Token())
	if isClosed(winner.l.Done()) {
		t.Fatalf("winner's Done closed: %v", winner.l.Err())
	}
	// Everybody else is still waiting: cancelling their campaigns must make
	// each return the context's error, never a leadership.
	cancel()
	for i := 1; i < n; i++ {
		var r campaignResult
		select {
		case r = <-results:
		case <-time.After(waitTimeout):
			t.Fatalf("%d of %d cancelled campaigns returned within %v", i-1, n-1, waitTimeout)
		}
		if r.err == nil {
			t.Fatalf("%s also won (token %d) while %s leads (token %d)", r.id, r.l.Token(), winner.id, winner.l.Token())
		}
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("cancelled Campaign(%s): %v; want context.Canceled", r.id, r.err)
		}
	}
	wantLeader(t, ms[n-1], winner.id, winner.l.Token())
}

func (s suite) campaignWhileLeading(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	l := lead(t, a)
	l2 := lead(t, a)
	if l2.Token() != l.Token() {
		t.Errorf("second Campaign while leading: token %d; want the current term's %d", l2.Token(), l.Token())
	}
	if isClosed(l.Done()) {
		t.Errorf("first term ended by a second Campaign: %v", l.Err())
	}
}

func (s suite) campaignCancelled(t *testing.T) {
	c := s.cluster(t)
	a, b, d := c.member("a"), c.member("b"), c.member("d")
	la := lead(t, a)
	chB, ctx, cancel := campaignWatched(t, context.Background(), b)
	waiting(t, ctx, "b")
	notReturned(t, chB, "while a leads")
	cancel()
	r := waitResult(t, chB, "b", waitTimeout)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled Campaign(b): leadership %v, err %v; want context.Canceled", r.l != nil, r.err)
	}
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatalf("Resign(a): %v", err)
	}
	// b's campaign left nothing behind: nobody leads, and the next
	// campaigner wins at once.
	wantNoLeader(t, d)
	begin := time.Now()
	ld := lead(t, d)
	if took := time.Since(begin); took > handoverLimit {
		t.Errorf("campaign into a vacant leadership took %v; want under %v", took, handoverLimit)
	}
	wantLeader(t, b, "d", ld.Token())
}

func (s suite) campaignAfterClose(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := waitResult(t, campaign(t, testContext(t), a), "a", waitTimeout)
	if !errors.Is(r.err, coordinator.ErrSessionClosed) {
		t.Fatalf("Campaign after Close: leadership %v, err %v; want ErrSessionClosed", r.l != nil, r.err)
	}
	wantNoLeader(t, b)
}

func (s suite) campaignAfterExpire(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	c.h.Expire(t, a)
	waitFor(t, a.Done(), waitTimeout, "Done of the expired session")
	r := waitResult(t, campaign(t, testContext(t), a), "a", waitTimeout)
	if !errors.Is(r.err, coordinator.ErrSessionClosed) {
		t.Fatalf("Campaign after expiry: leadership %v, err %v; want ErrSessionClosed", r.l != nil, r.err)
	}
	wantNoLeader(t, b)
	lb := lead(t, b)
	wantLeader(t, b, "b", lb.Token())
}

func (s suite) campaignSessionEnds(t *testing.T) {
	c := s.cluster(t)
	a, b, d := c.member("a"), c.member("b"), c.member("d")
	lead(t, a)
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	chD, ctxD, _ := campaignWatched(t, testContext(t), d)
	waiting(t, ctxB, "b")
	waiting(t, ctxD, "d")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, chB, "b", waitTimeout)
	if !errors.Is(r.err, coordinator.ErrSessionClosed) {
		t.Fatalf("waiting Campaign(b) when its session was closed: leadership %v, err %v; want ErrSessionClosed", r.l != nil, r.err)
	}
	c.h.Expire(t, d)
	r = waitResult(t, chD, "d", waitTimeout)
	if !errors.Is(r.err, coordinator.ErrSessionClosed) {
		t.Fatalf("waiting Campaign(d) when its session expired: leadership %v, err %v; want ErrSessionClosed", r.l != nil, r.err)
	}
	wantLeaderID(t, a, "a")
}

// --- Reopen ---

// reopener returns m as a coordinator.Reopener and c's harness as a
// Healer, or skips the test.
func (c cluster) reopener(m coordinator.Coordinator) (coordinator.Reopener, Healer) {
	c.t.Helper()
	r, ok := m.(coordinator.Reopener)
	if !ok {
		c.t.Skip("the backend does not implement coordinator.Reopener")
	}
	h, ok := c.h.(Healer)
	if !ok {
		c.t.Skip("the harness does not implement Healer")
	}
	return r, h
}

func (s suite) reopenWhileLive(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	r, _ := c.reopener(a)
	if n, err := r.Reopen(testContext(t)); err == nil {
		n.Close()
		t.Fatal("Reopen of a live session: got a new handle; want an error")
	}
	if err := a.Err(); err != nil {
		t.Fatalf("Err after a refused Reopen: got %v; want nil", err)
	}
}

func (s suite) reopenAfterExpire(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	r, h := c.reopener(a)
	la := lead(t, a)
	c.h.Expire(t, a)
	waitFor(t, a.Done(), waitTimeout, "Done of the expired session")
	h.Heal(t, a)
	n, err := r.Reopen(testContext(t))
	if err != nil {
		t.Fatalf("Reopen after expiry: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	if n.ID() != "a" || n.Cluster() != a.Cluster() {
		t.Fatalf("Reopen: got member %q of %v; want %q of %v", n.ID(), n.Cluster(), "a", a.Cluster())
	}
	if err := n.Err(); err != nil {
		t.Fatalf("Err of the reopened session: got %v; want nil", err)
	}
	register(t, n, coordinator.StateRunning)
	ms, err := b.Members(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != "a" || ms[1].ID != "b" {
		t.Fatalf("members after a's Reopen: got %v; want a and b", ms)
	}
	ln := lead(t, n)
	if ln.Token() <= la.Token() {
		t.Fatalf("token of the reopened session's term: got %d; want more than the old term's %d", ln.Token(), la.Token())
	}
	wantLeader(t, b, "a", ln.Token())
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	wantNoLeader(t, b)
}

// --- Resign ---

func (s suite) resignHandsOver(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	la := lead(t, a)
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	notReturned(t, chB, "while a leads")
	begin := time.Now()
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	if !isClosed(la.Done()) {
		t.Fatal("Done of the resigned term still open after Resign returned")
	}
	if err := la.Err(); !errors.Is(err, coordinator.ErrResigned) {
		t.Errorf("Err() of the resigned term = %v; want ErrResigned", err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	if took := time.Since(begin); took > handoverLimit {
		t.Errorf("handover took %v; want under %v", took, handoverLimit)
	}
	if lb.Token() <= la.Token() {
		t.Errorf("token of b's term = %d; want > %d (a's)", lb.Token(), la.Token())
	}
	wantLeader(t, a, "b", lb.Token())
	select {
	case <-a.Done():
		t.Errorf("a's session ended by Resign: %v", a.Err())
	default:
	}
}

func (s suite) resignIdempotent(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	la := lead(t, a)
	for i := 0; i < 3; i++ {
		if err := la.Resign(testContext(t)); err != nil {
			t.Fatalf("Resign #%d: %v; want nil", i+1, err)
		}
	}
	wantNoLeader(t, a)
	// A later term is not ended by resigning an earlier one.
	la2 := lead(t, a)
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatalf("Resign of the old term: %v", err)
	}
	if isClosed(la2.Done()) {
		t.Fatalf("resigning an old term ended the current one: %v", la2.Err())
	}
	wantLeader(t, a, "a", la2.Token())
}

// --- Expire ---

func (s suite) expireLeaderReplaced(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	la := lead(t, a)
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	notReturned(t, chB, "while a leads")
	c.h.Expire(t, a)
	lb := waitWon(t, chB, "b", waitTimeout)
	// The safety property: a's term was over before b's began.
	if !isClosed(la.Done()) {
		t.Fatal("b leads while a's Leadership.Done is still open")
	}
	if err := la.Err(); !lostErr(err) {
		t.Errorf("Err() of the expired term = %v; want ErrSessionExpired or ErrLeaseDeadline", err)
	}
	waitFor(t, a.Done(), waitTimeout, "Done of the expired session")
	if err := a.Err(); !lostErr(err) {
		t.Errorf("Err() of the expired session = %v; want ErrSessionExpired or ErrLeaseDeadline", err)
	}
	if lb.Token() <= la.Token() {
		t.Errorf("token of b's term = %d; want > %d (a's)", lb.Token(), la.Token())
	}
	wantLeader(t, b, "b", lb.Token())
}

func (s suite) expireOneOfMany(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	la := lead(t, a)
	w := c.member("w")
	events, _ := watch(t, w)
	results := make(chan campaignResult, 5)
	var ctxs []*watchedContext
	var fanIn sync.WaitGroup
	// Registered before the campaigns' cleanups, so it runs after them,
	// once every campaign has returned.
	t.Cleanup(func() {
		if !waitGroup(&fanIn, waitTimeout) {
			t.Error("campaign results not collected at cleanup")
		}
	})
	for i := 0; i < 5; i++ {
		m := c.member(fmt.Sprintf("m%d", i))
		ch, ctx, _ := campaignWatched(t, testContext(t), m)
		ctxs = append(ctxs, ctx)
		fanIn.Add(1)
		go func() {
			defer fanIn.Done()
			results <- <-ch
		}()
	}
	for i, ctx := range ctxs {
		waiting(t, ctx, fmt.Sprintf("m%d", i))
	}
	c.h.Expire(t, a)
	var winner campaignResult
	select {
	case winner = <-results:
	case <-time.After(waitTimeout):
		t.Fatal("nobody took over from the expired leader")
	}
	if winner.err != nil {
		t.Fatalf("first campaign to return: %v; want leadership", winner.err)
	}
	if !isClosed(la.Done()) {
		t.Fatalf("%s leads while the expired leader's Done is open", winner.id)
	}
	wantLeader(t, w, winner.id, winner.l.Token())
	select {
	case r := <-results:
		t.Fatalf("a second campaign returned (%s: leadership %v, err %v) while %s leads", r.id, r.l != nil, r.err, winner.id)
	default:
	}
	// The watcher saw a's term, then the winner's.
	ev, _ := until(t, events, "leader_changed(a)", func(ev coordinator.Event) bool { return ev.Type == coordinator.EventLeaderChanged })
	if ev.Leader.ID != "a" || ev.Leader.Token != la.Token() {
		t.Fatalf("first leader_changed = %s; want leader_changed(a,%d)", describeOne(ev), la.Token())
	}
	ev, _ = until(t, events, "leader_changed(winner)", func(ev coordinator.Event) bool { return ev.Type == coordinator.EventLeaderChanged })
	if ev.Leader.ID != winner.id || ev.Leader.Token != winner.l.Token() {
		t.Fatalf("second leader_changed = %s; want leader_changed(%s,%d)", describeOne(ev), winner.id, winner.l.Token())
	}
}

// --- Tokens ---

func (s suite) tokensIncrease(t *testing.T) {
	c := s.cluster(t)
	a, b, d, e := c.member("a"), c.member("b"), c.member("d"), c.member("e")
	var tokens []int64
	check := func(l coordinator.Leadership, who string) {
		t.Helper()
		if n := len(tokens); n > 0 && l.Token() <= tokens[n-1] {
			t.Fatalf("token of %s's term = %d; want > %d (tokens so far %v)", who, l.Token(), tokens[n-1], tokens)
		}
		tokens = append(tokens, l.Token())
		wantLeader(t, e, who, l.Token())
	}
	// Resign.
	la := lead(t, a)
	check(la, "a")
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	// The same member again.
	la = lead(t, a)
	check(la, "a")
	// Close hands over to a waiting member.
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	notReturned(t, chB, "while a leads")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	check(lb, "b")
	// Expiry hands over to a waiting member.
	chD, ctxD, _ := campaignWatched(t, testContext(t), d)
	waiting(t, ctxD, "d")
	notReturned(t, chD, "while b leads")
	c.h.Expire(t, b)
	ld := waitWon(t, chD, "d", waitTimeout)
	check(ld, "d")
	if err := ld.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	check(lead(t, e), "e")
}

// --- Watch ---

func (s suite) watchStartsWithState(t *testing.T) {
	c := s.cluster(t)
	a, b, w := c.member("a"), c.member("b"), c.member("w")
	la := lead(t, a)
	if err := b.Pause(testContext(t)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	ch, _ := watch(t, w)
	var joined []string
	for i := 0; i < 3; i++ {
		ev := next(t, ch)
		if ev.Type != coordinator.EventMemberJoined {
			t.Fatalf("event %d = %s; want member_joined (one per member first)", i, describeOne(ev))
		}
		joined = append(joined, ev.Member.ID)
	}
	sort.Strings(joined)
	if got, want := ids(joined...), "a,b,w"; got != want {
		t.Errorf("members in the initial state = [%s]; want [%s]", got, want)
	}
	ev := next(t, ch)
	if ev.Type != coordinator.EventLeaderChanged || ev.Leader.ID != "a" || ev.Leader.Token != la.Token() {
		t.Fatalf("event after the members = %s; want leader_changed(a,%d)", describeOne(ev), la.Token())
	}
	if ev := next(t, ch); ev.Type != coordinator.EventPaused {
		t.Fatalf("event after the leader = %s; want paused", describeOne(ev))
	}
	// Then changes only.
	if err := b.Resume(testContext(t)); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if ev := next(t, ch); ev.Type != coordinator.EventResumed {
		t.Fatalf("event after Resume = %s; want resumed", describeOne(ev))
	}

	// A watch of a vacant, unpaused cluster with a standing switchover.
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Switchover(testContext(t), "b"); err != nil {
		t.Fatalf("Switchover(b) with no leader: %v", err)
	}
	ch2, _ := watch(t, w)
	for i := 0; i < 3; i++ {
		if ev := next(t, ch2); ev.Type != coordinator.EventMemberJoined {
			t.Fatalf("second watch: event %d = %s; want member_joined", i, describeOne(ev))
		}
	}
	if ev := next(t, ch2); ev.Type != coordinator.EventNoLeader {
		t.Fatalf("second watch: event after the members = %s; want no_leader", describeOne(ev))
	}
	if ev := next(t, ch2); ev.Type != coordinator.EventSwitchover || ev.SwitchoverTo != "b" {
		t.Fatalf("second watch: event after no_leader = %s; want switchover(b)", describeOne(ev))
	}
}

// watchLeaderChanges checks that a watcher sees every term, in order.
//
// What may coalesce: between two terms that follow each other directly (a
// resignation or a Close handing over to a waiting member), a backend may or
// may not report EventNoLeader; the suite accepts both. Every term is
// reported by exactly one EventLeaderChanged, in the order of the terms
// (their tokens increase), and a leadership left vacant is reported by
// EventNoLeader. Member events in between are ignored here.
func (s suite) watchLeaderChanges(t *testing.T) {
	c := s.cluster(t)
	a, b, d, w := c.member("a"), c.member("b"), c.member("d"), c.member("w")
	ch, _ := watch(t, w)
	ev, _ := until(t, ch, "initial no_leader", func(ev coordinator.Event) bool {
		return ev.Type == coordinator.EventNoLeader || ev.Type == coordinator.EventLeaderChanged
	})
	if ev.Type != coordinator.EventNoLeader {
		t.Fatalf("initial leadership event = %s; want no_leader", describeOne(ev))
	}

	type term struct {
		id    string
		token int64
	}
	var terms []term
	la := lead(t, a)
	terms = append(terms, term{"a", la.Token()})
	chB := campaign(t, testContext(t), b)
	chD := campaign(t, testContext(t), d)
	notReturned(t, chB, "while a leads")
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	// b or d wins; the other waits.
	var next1 campaignResult
	var other <-chan campaignResult
	var otherID string
	select {
	case next1 = <-chB:
		other, otherID = chD, "d"
	case next1 = <-chD:
		other, otherID = chB, "b"
	case <-time.After(waitTimeout):
		t.Fatal("nobody took over after the resignation")
	}
	if next1.err != nil {
		t.Fatalf("Campaign(%s): %v", next1.id, next1.err)
	}
	terms = append(terms, term{next1.id, next1.l.Token()})
	if err := next1.l.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	l3 := waitWon(t, other, otherID, waitTimeout)
	terms = append(terms, term{otherID, l3.Token()})
	if err := l3.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	// Vacant now: the last leadership event is no_leader.
	var seen []coordinator.Event
	for i := 0; i < len(terms); i++ {
		ev, _ := until(t, ch, fmt.Sprintf("leader_changed #%d", i+1), func(ev coordinator.Event) bool {
			return ev.Type == coordinator.EventLeaderChanged || ev.Type == coordinator.EventNoLeader
		})
		if ev.Type == coordinator.EventNoLeader {
			if i == 0 {
				t.Fatalf("no_leader before the first term was reported")
			}
			i--
			continue
		}
		seen = append(seen, ev)
		if want := terms[i]; ev.Leader.ID != want.id || ev.Leader.Token != want.token {
			t.Fatalf("leader_changed #%d = %s; want leader_changed(%s,%d) (terms %v)", i+1, describeOne(ev), want.id, want.token, terms)
		}
	}
	ev, _ = until(t, ch, "final no_leader", func(ev coordinator.Event) bool {
		return ev.Type == coordinator.EventLeaderChanged || ev.Type == coordinator.EventNoLeader
	})
	if ev.Type != coordinator.EventNoLeader {
		t.Fatalf("after the last resignation: %s; want no_leader (seen %s)", describeOne(ev), describe(seen))
	}
}

func (s suite) watchMemberEvents(t *testing.T) {
	c := s.cluster(t)
	w := c.member("w")
	ch, _ := watch(t, w)
	if ev := next(t, ch); ev.Type != coordinator.EventMemberJoined || ev.Member.ID != "w" {
		t.Fatalf("first event = %s; want member_joined(w)", describeOne(ev))
	}
	isMember := func(ev coordinator.Event) bool {
		switch ev.Type {
		case coordinator.EventMemberJoined, coordinator.EventMemberUpdated, coordinator.EventMemberLeft:
			return true
		}
		return false
	}
	a := c.member("a")
	if ev, _ := until(t, ch, "member_joined(a)", isMember); ev.Type != coordinator.EventMemberJoined || ev.Member.ID != "a" || ev.Member.State != coordinator.StateRunning {
		t.Fatalf("after a registered: %s (state %s); want member_joined(a) in state running", describeOne(ev), ev.Member.State)
	}
	register(t, a, coordinator.StateActive)
	if ev, _ := until(t, ch, "member_updated(a)", isMember); ev.Type != coordinator.EventMemberUpdated || ev.Member.ID != "a" || ev.Member.State != coordinator.StateActive {
		t.Fatalf("after a registered again: %s (state %s); want member_updated(a) in state active", describeOne(ev), ev.Member.State)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ev, _ := until(t, ch, "member_left(a)", isMember); ev.Type != coordinator.EventMemberLeft || ev.Member.ID != "a" {
		t.Fatalf("after a closed: %s; want member_left(a)", describeOne(ev))
	}
	b := c.member("b")
	if ev, _ := until(t, ch, "member_joined(b)", isMember); ev.Type != coordinator.EventMemberJoined || ev.Member.ID != "b" {
		t.Fatalf("after b registered: %s; want member_joined(b)", describeOne(ev))
	}
	c.h.Expire(t, b)
	if ev, _ := until(t, ch, "member_left(b)", isMember); ev.Type != coordinator.EventMemberLeft || ev.Member.ID != "b" {
		t.Fatalf("after b expired: %s; want member_left(b)", describeOne(ev))
	}
}

func (s suite) watchClosedOnCancel(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	ch, cancel := watch(t, a)
	next(t, ch)
	cancel()
	waitClosed(t, ch, "after cancel")
	// The session is unharmed and a new watch works.
	if isClosed(a.Done()) {
		t.Fatalf("session ended by cancelling a watch: %v", a.Err())
	}
	ch2, _ := watch(t, a)
	if ev := next(t, ch2); ev.Type != coordinator.EventMemberJoined {
		t.Fatalf("new watch: first event %s; want member_joined", describeOne(ev))
	}
}

func (s suite) watchClosedOnSessionEnd(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	chA, _ := watch(t, a)
	chB, _ := watch(t, b)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, chA, "after Close")
	c.h.Expire(t, b)
	waitClosed(t, chB, "after expiry")
}

// --- Close ---

func (s suite) closeReleases(t *testing.T) {
	c := s.cluster(t)
	a, b, w := c.member("a"), c.member("b"), c.member("w")
	la := lead(t, a)
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	notReturned(t, chB, "while a leads")
	begin := time.Now()
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { errs <- a.Close() }()
	}
	for i := 0; i < 3; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("concurrent Close: %v; want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Close did not return")
		}
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close again: %v; want nil", err)
	}
	if !isClosed(a.Done()) {
		t.Fatal("session Done open after Close returned")
	}
	if err := a.Err(); !errors.Is(err, coordinator.ErrSessionClosed) {
		t.Errorf("Err() after Close = %v; want ErrSessionClosed", err)
	}
	if !isClosed(la.Done()) {
		t.Fatal("Leadership.Done open after Close returned")
	}
	if err := la.Err(); !errors.Is(err, coordinator.ErrResigned) {
		t.Errorf("Leadership.Err() after Close = %v; want ErrResigned", err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	if took := time.Since(begin); took > handoverLimit {
		t.Errorf("takeover after Close took %v; want under %v (no TTL wait)", took, handoverLimit)
	}
	wantLeader(t, w, "b", lb.Token())
	waitMembers(t, w, "b", "w")
}

func (s suite) closeCallsFail(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	checks := map[string]error{}
	checks["Register"] = a.Register(ctx, coordinator.Member{State: coordinator.StateRunning})
	_, checks["Members"] = a.Members(ctx)
	_, checks["Leader"] = a.Leader(ctx)
	_, checks["Watch"] = a.Watch(ctx)
	checks["Pause"] = a.Pause(ctx)
	checks["Resume"] = a.Resume(ctx)
	_, checks["Paused"] = a.Paused(ctx)
	_, checks["Switchover"] = a.Switchover(ctx, "a")
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := checks[name]; !errors.Is(err, coordinator.ErrSessionClosed) {
			t.Errorf("%s after Close: %v; want ErrSessionClosed", name, err)
		}
	}
}

// --- Pause ---

func (s suite) pauseStopsTakeover(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	if p, err := a.Paused(testContext(t)); err != nil || p {
		t.Fatalf("Paused() of a new cluster = %v, %v; want false, nil", p, err)
	}
	la := lead(t, a)
	if err := b.Pause(testContext(t)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if p, err := a.Paused(testContext(t)); err != nil || !p {
		t.Fatalf("Paused() after Pause = %v, %v; want true, nil", p, err)
	}
	// A sitting leader keeps leading.
	if isClosed(la.Done()) {
		t.Fatalf("Pause ended the sitting leader's term: %v", la.Err())
	}
	wantLeader(t, b, "a", la.Token())
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-chB:
		t.Fatalf("Campaign(b) returned while paused: leadership %v, err %v; want still waiting", r.l != nil, r.err)
	case <-time.After(quietPeriod):
	}
	wantNoLeader(t, a)
	if err := a.Resume(testContext(t)); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if p, err := a.Paused(testContext(t)); err != nil || p {
		t.Fatalf("Paused() after Resume = %v, %v; want false, nil", p, err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	wantLeader(t, a, "b", lb.Token())
}

// --- Switchover ---

func (s suite) switchoverToNamed(t *testing.T) {
	c := s.cluster(t)
	a, b, d := c.member("a"), c.member("b"), c.member("d")
	la := lead(t, a)
	ch, _ := watch(t, a)
	// d waits first; the request names b, which is not even campaigning yet.
	chD, ctxD, _ := campaignWatched(t, testContext(t), d)
	waiting(t, ctxD, "d")
	notReturned(t, chD, "while a leads")
	got, err := d.Switchover(testContext(t), "b")
	if err != nil || got != "b" {
		t.Fatalf("Switchover(b) = %q, %v; want b, nil", got, err)
	}
	ev, _ := until(t, ch, "switchover", func(ev coordinator.Event) bool { return ev.Type == coordinator.EventSwitchover })
	if ev.SwitchoverTo != "b" {
		t.Fatalf("switchover event names %q; want b", ev.SwitchoverTo)
	}
	// The sitting leader is not resigned by the backend; it hands over.
	if isClosed(la.Done()) {
		t.Fatalf("the backend ended the leader's term on a switchover request: %v", la.Err())
	}
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	// Only b may win while the request stands: d, waiting longer, must
	// not take the vacant leadership, and b wins as soon as it campaigns.
	chB := campaign(t, testContext(t), b)
	lb := waitWon(t, chB, "b", waitTimeout)
	notReturned(t, chD, "while b leads")
	wantLeader(t, d, "b", lb.Token())
	until(t, ch, "switchover_cleared", func(ev coordinator.Event) bool { return ev.Type == coordinator.EventSwitchoverCleared })
	// Cleared once b leads: after b resigns, d takes over.
	if err := lb.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	waitWon(t, chD, "d", waitTimeout)
}

func (s suite) switchoverUnknown(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	lead(t, a)
	_, err := a.Switchover(testContext(t), "nobody")
	if !errors.Is(err, coordinator.ErrUnknownMember) {
		t.Fatalf("Switchover(nobody) = %v; want ErrUnknownMember", err)
	}
	wantLeaderID(t, a, "a")
}

func wantLeaderID(t *testing.T, m coordinator.Coordinator, id string) {
	t.Helper()
	got, err := leaderOf(t, m)
	if err != nil || got.ID != id {
		t.Fatalf("Leader() = %+v, %v; want %s", got, err, id)
	}
}

func (s suite) switchoverPicks(t *testing.T) {
	c := s.cluster(t)
	a, b, d := c.member("a"), c.member("b"), c.member("d")
	lead(t, a)
	// d is the most caught up: the backend's choice by the ranking, which
	// the lowest id (b) would not be.
	registerAt(t, b, coordinator.StateRunning, 10)
	registerAt(t, d, coordinator.StateActive, 20)
	waitMembers(t, b, "a", "b", "d")
	got, err := b.Switchover(testContext(t), "")
	if err != nil {
		t.Fatalf("Switchover(\"\"): %v", err)
	}
	ms, err := b.Members(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := coordinator.Best(ms, "a", "", nil, coordinator.Ranking{}); got != want || got != "d" {
		t.Fatalf("Switchover(\"\") chose %q; want %q (coordinator.Best, the most caught up)", got, want)
	}
}

func (s suite) switchoverTargetLeaves(t *testing.T) {
	c := s.cluster(t)
	a, b, d := c.member("a"), c.member("b"), c.member("d")
	la := lead(t, a)
	ch, _ := watch(t, d)
	if _, err := a.Switchover(testContext(t), "b"); err != nil {
		t.Fatal(err)
	}
	until(t, ch, "switchover", func(ev coordinator.Event) bool { return ev.Type == coordinator.EventSwitchover })
	chD := campaign(t, testContext(t), d)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	until(t, ch, "switchover_cleared", func(ev coordinator.Event) bool { return ev.Type == coordinator.EventSwitchoverCleared })
	// With the request gone, any waiting member may take over.
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	waitWon(t, chD, "d", waitTimeout)
}

// --- Optional capabilities ---

func (s suite) leaseRemaining(t *testing.T) {
	c := s.cluster(t)
	a := c.member("a")
	lr, ok := a.(coordinator.LeaseReporter)
	if !ok {
		t.Skip("backend is not a coordinator.LeaseReporter")
	}
	if got := lr.LeaseRemaining(); got <= 0 {
		t.Errorf("LeaseRemaining() of a live session = %v; want > 0", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := lr.LeaseRemaining(); got != 0 {
		t.Errorf("LeaseRemaining() after Close = %v; want 0", got)
	}
}

func (s suite) claimSlotOnce(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	ca, ok := a.(coordinator.SlotClaimer)
	if !ok {
		t.Skip("backend is not a coordinator.SlotClaimer")
	}
	cb := b.(coordinator.SlotClaimer)
	slot := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
	ctx := testContext(t)

	// Concurrent claims of one slot: exactly one wins.
	type claim struct {
		who string
		ok  bool
		err error
	}
	results := make(chan claim, 2)
	for who, sc := range map[string]coordinator.SlotClaimer{"a": ca, "b": cb} {
		go func() {
			ok, err := sc.ClaimSlot(ctx, "backup", slot, time.Hour)
			results <- claim{who, ok, err}
		}()
	}
	won := 0
	for i := 0; i < 2; i++ {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("ClaimSlot by %s: %v", r.who, r.err)
			}
			if r.ok {
				won++
			}
		case <-time.After(waitTimeout):
			t.Fatal("ClaimSlot did not return")
		}
	}
	if won != 1 {
		t.Fatalf("claims of one slot won: %d; want 1", won)
	}
	// Taken is taken, also for the same member and after a failover.
	for who, sc := range map[string]coordinator.SlotClaimer{"a": ca, "b": cb} {
		if ok, err := sc.ClaimSlot(ctx, "backup", slot, time.Hour); err != nil || ok {
			t.Errorf("second ClaimSlot by %s = %v, %v; want false, nil", who, ok, err)
		}
	}
	// Another slot and another job are free.
	if ok, err := cb.ClaimSlot(ctx, "backup", slot.Add(time.Hour), time.Hour); err != nil || !ok {
		t.Errorf("ClaimSlot of the next slot = %v, %v; want true, nil", ok, err)
	}
	if ok, err := ca.ClaimSlot(ctx, "vacuum", slot, time.Hour); err != nil || !ok {
		t.Errorf("ClaimSlot of another job = %v, %v; want true, nil", ok, err)
	}
}
