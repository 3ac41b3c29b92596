package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

// Riding through an outage of the backend. Invariants, and where they are
// kept:
//
//   - A former master's service does not run as master past the instant
//     its lease can first expire on the server: the term's fence (armed
//     when the term ends other than by resigning, in becomeMaster's
//     watcher and in leadershipLost) SIGKILLs the service's group halfway
//     to that instant (fenceDelay) unless the demotion completed first
//     (disarm in leadershipLost and shutdown).
//   - A hook running when the leadership is lost is stopped at once
//     (hookStop: its context is cancelled with ErrLeadershipLost), so that
//     the demotion starts at once.
//   - The old session's lease is revoked before the member registers
//     again (Reopener.Reopen), and only after the demotion completed or the
//     service was killed (rejoin runs after leadershipLost).
//   - A slave's service is never stopped or restarted by an outage, and no
//     init hook runs again: rejoin touches neither the service nor the
//     hooks' record of what they were last told.

// ErrLeadershipLost is the cause of a hook's context when the hook was
// stopped because the leadership was lost while it ran.
var ErrLeadershipLost = errors.New("lifecycle: leadership lost")

// Pauses between two attempts to open a new session, on Config.Clock: the
// first is about reconnectMin, each next one twice as long up to
// reconnectMax, each drawn at random in [d/2, d] so that the members of a
// cluster do not all come back at once.
const (
	reconnectMin = 200 * time.Millisecond
	reconnectMax = time.Second
)

// fence is the hard deadline of one term's demotion.
type fence struct {
	mu       sync.Mutex
	timer    interface{ Stop() bool }
	disarmed bool
	fired    chan struct{} // closed when the deadline passed before the demotion completed
	killed   chan struct{} // closed once the kill that followed is done
}

func newFence() *fence { return &fence{fired: make(chan struct{}), killed: make(chan struct{})} }

// waitKilled waits, if the fence fired, until its kill is done, so that a
// service started afterwards is not the one it kills.
func (f *fence) waitKilled() {
	if f.hasFired() {
		<-f.killed
	}
}

// hasFired reports whether the deadline passed before the demotion
// completed.
func (f *fence) hasFired() bool {
	select {
	case <-f.fired:
		return true
	default:
		return false
	}
}

// arm makes the fence fire after d (at once when d <= 0), unless it was
// disarmed already.
func (l *loop) arm(f *fence, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disarmed || f.timer != nil {
		return
	}
	l.wg.Add(1)
	f.timer = l.c.cfg.Clock.AfterFunc(max(d, 0), func() {
		defer l.wg.Done()
		f.mu.Lock()
		if f.disarmed {
			f.mu.Unlock()
			return
		}
		f.disarmed = true
		close(f.fired)
		f.mu.Unlock()
		defer close(f.killed)
		l.fenceFired()
	})
}

// disarm records that the demotion completed: the fence does not fire any
// more.
func (l *loop) disarm(f *fence) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disarmed {
		return
	}
	f.disarmed = true
	if f.timer != nil && f.timer.Stop() {
		l.wg.Done()
	}
}

// fenceFired kills the service: the demotion did not complete before the
// lease could expire on the server.
func (l *loop) fenceFired() {
	c := l.c
	c.log.Error("demotion not complete when the lease can expire on the server: killing the service")
	if c.svc != nil && c.svc.kill() {
		c.log.Warn("service killed (SIGKILL to its process group)")
	}
}

// expiresIn is how long until coord's lease can first expire on the
// server; zero when the backend cannot tell.
func expiresIn(coord coordinator.Coordinator) time.Duration {
	if er, ok := coord.(coordinator.ExpiryReporter); ok {
		return er.LeaseExpiresIn()
	}
	return 0
}

// fenceDelay is when the fence of a term that ended now fires: halfway to
// the instant coord's lease can first expire on the server, so that the
// kill is complete before it (for a session given up for lack of renewal,
// half the backend's margin after the loss).
func fenceDelay(coord coordinator.Coordinator) time.Duration { return expiresIn(coord) / 2 }

// hookStop returns what stops a hook of name when it closes: the end of
// the term for a master's hook (but its init hook, which runs before the
// service starts), the fence of a demotion under way; nil for the others.
func (l *loop) hookStop(name HookName) <-chan struct{} {
	switch {
	case name == HookStart || name == HookStartedAsMaster || name == HookStartedAsSlave:
		return nil
	case l.lead != nil:
		return l.leadDone
	case l.demoting != nil:
		return l.demoting.fired
	}
	return nil
}

// cancelOn returns ctx cancelled with cause as soon as ch closes (never
// when ch is nil), and the function that releases it.
func cancelOn(ctx context.Context, ch <-chan struct{}, cause error) (context.Context, func()) {
	if ch == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ch:
			cancel(cause)
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		wg.Wait()
		cancel(context.Canceled)
	}
}

// sessionEnded handles the end of the session (Coordinator.Done): a master
// demotes first, then the member rejoins. It reports whether to go on.
func (l *loop) sessionEnded() bool {
	if l.lead != nil {
		return l.leadershipLost() // then rejoins
	}
	return l.rejoin()
}

// watchEnded handles the end of the watch: the session's end, or else a
// new watch.
func (l *loop) watchEnded() bool {
	c := l.c
	if c.coord.Err() != nil {
		return l.sessionEnded()
	}
	c.log.Warn("watch ended while the session lives; watching again")
	if l.watchCancel != nil {
		l.watchCancel()
	}
	wctx, cancel := context.WithCancel(l.bctx)
	w, err := c.coord.Watch(wctx)
	if err != nil {
		cancel()
		if c.coord.Err() != nil {
			return l.sessionEnded()
		}
		l.stop(ExitBackendUnavailable, fmt.Errorf("watch: %w", err))
		return false
	}
	l.watch, l.watchCancel = w, cancel
	l.resetView()
	return true
}

// resetView forgets the view of the cluster that a new watch reports again
// from its start; what the hooks were last told is kept, so that the hooks
// run for what changed meanwhile once the new view is complete.
func (l *loop) resetView() {
	l.members = map[string]coordinator.Member{}
	l.master = coordinator.Leader{}
	l.snapshot, l.paused, l.switchoverTo = false, false, ""
}

// rejoin opens a new session after the session ended, as long as the
// controller runs: it registers the member again under its id with its
// current record, watches again and campaigns again. The service, the role
// (slave by now) and what the hooks were last told are left as they are. It reports whether to
// go on: false when a stop was asked for meanwhile, or the backend cannot
// open a new session.
func (l *loop) rejoin() bool {
	c := l.c
	old := c.coord
	cause := old.Err()
	if _, ok := old.(coordinator.Reopener); !ok {
		l.stop(ExitBackendUnavailable, fmt.Errorf("session lost: %w", cause))
		return false
	}
	c.log.Warn("session lost; reconnecting", "err", cause, "role", l.role)
	l.endCampaign()
	if l.watchCancel != nil {
		l.watchCancel()
		l.watchCancel = nil
	}
	l.watch = nil
	begin := c.cfg.Clock.Now()
	delay := reconnectMin
	for attempt := 1; ; attempt++ {
		err := l.tryRejoin()
		if err == nil {
			c.metrics.reopened.Inc()
			c.log.Info("rejoined with a new session", "attempts", attempt, "after", c.cfg.Clock.Since(begin).Round(time.Millisecond), "role", l.role)
			l.resetView()
			if l.started { // else the campaign starts after the start hook, as always
				l.startCampaign()
			}
			return true
		}
		if errors.Is(err, coordinator.ErrSessionClosed) && c.coord.Err() == nil {
			l.stop(ExitBackendUnavailable, fmt.Errorf("rejoin: %w", err))
			return false
		}
		c.log.Warn("rejoin failed; retrying", "attempt", attempt, "err", err)
		d := delay/2 + rand.N(delay/2+1)
		delay = min(2*delay, reconnectMax)
		t := c.cfg.Clock.NewTimer(d)
		select {
		case <-c.stopCh:
			t.Stop()
			return false
		case <-t.C():
		}
	}
}

// tryRejoin makes one attempt: a new session if the current one has ended
// (the old one is closed once replaced), then the record and the watch.
func (l *loop) tryRejoin() error {
	c := l.c
	ctx, cancel := context.WithTimeout(c.stopCtx, backendTimeout)
	defer cancel()
	if cur := c.coord; cur.Err() != nil {
		r, ok := cur.(coordinator.Reopener)
		if !ok {
			return fmt.Errorf("reopen: %w", coordinator.ErrSessionClosed)
		}
		n, err := r.Reopen(ctx)
		if err != nil {
			return err
		}
		c.setCoordinator(n)
		if err := cur.Close(); err != nil {
			c.log.Debug("close the ended session", "err", err)
		}
	}
	if err := l.publishWithin(ctx, publishTimeout, l.record.State); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	wctx, wcancel := context.WithCancel(l.bctx)
	w, err := c.coord.Watch(wctx)
	if err != nil {
		wcancel()
		return fmt.Errorf("watch: %w", err)
	}
	l.watch, l.watchCancel = w, wcancel
	return nil
}

// endCampaign cancels the campaign under way, if any, and waits for it.
func (l *loop) endCampaign() {
	if l.campaign == nil {
		return
	}
	l.campaignCancel()
	<-l.campaign // the campaign's session has ended or its context is cancelled: it returns
	l.campaign, l.campaignCancel = nil, nil
}
