package memory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

const testTimeout = 10 * time.Second

func TestNewValidatesConfig(t *testing.T) {
	cl := coordinator.Cluster{Environment: "prod", Service: "db"}
	tests := []struct {
		name    string
		store   *Store
		cfg     Config
		wantErr string // empty: valid
	}{
		{"defaults", NewStore(), Config{Cluster: cl, ID: "a"}, ""},
		{"explicit", NewStore(), Config{Cluster: cl, ID: "a", TTL: 2 * time.Second, Margin: 200 * time.Millisecond, RenewInterval: 500 * time.Millisecond}, ""},
		{"nil store", nil, Config{Cluster: cl, ID: "a"}, "nil store"},
		{"no environment", NewStore(), Config{Cluster: coordinator.Cluster{Service: "db"}, ID: "a"}, "environment"},
		{"bad service", NewStore(), Config{Cluster: coordinator.Cluster{Environment: "prod", Service: "a/b"}, ID: "a"}, "service"},
		{"no id", NewStore(), Config{Cluster: cl}, "member id"},
		{"bad id", NewStore(), Config{Cluster: cl, ID: "-a"}, "member id"},
		{"negative ttl", NewStore(), Config{Cluster: cl, ID: "a", TTL: -time.Second}, "ttl"},
		{"negative margin", NewStore(), Config{Cluster: cl, ID: "a", Margin: -time.Second}, "margin"},
		{"negative renew", NewStore(), Config{Cluster: cl, ID: "a", RenewInterval: -time.Second}, "renew interval"},
		{"ttl under the minimum", NewStore(), Config{Cluster: cl, ID: "a", TTL: time.Second}, "want at least 2s"},
		{"ttl fraction", NewStore(), Config{Cluster: cl, ID: "a", TTL: 2500 * time.Millisecond}, "whole seconds"},
		{"margin not under ttl", NewStore(), Config{Cluster: cl, ID: "a", TTL: 2 * time.Second, Margin: 2 * time.Second, RenewInterval: 100 * time.Millisecond}, "margin"},
		{"renew not under ttl", NewStore(), Config{Cluster: cl, ID: "a", TTL: 2 * time.Second, RenewInterval: 2 * time.Second}, "renew interval"},
		{"renew plus margin not under ttl", NewStore(), Config{Cluster: cl, ID: "a", TTL: 2 * time.Second, Margin: time.Second, RenewInterval: time.Second}, "renew interval"},
		{"ranking", NewStore(), Config{Cluster: cl, ID: "a", Ranking: coordinator.Ranking{Priority: 7, MaxLag: 100, FailoverWait: time.Second}}, ""},
		{"never lead", NewStore(), Config{Cluster: cl, ID: "a", Ranking: coordinator.Ranking{Priority: coordinator.NeverLead}}, ""},
		{"priority above the maximum", NewStore(), Config{Cluster: cl, ID: "a", Ranking: coordinator.Ranking{Priority: coordinator.MaxPriority + 1}}, "priority"},
		{"negative maximum lag", NewStore(), Config{Cluster: cl, ID: "a", Ranking: coordinator.Ranking{MaxLag: -1}}, "maximum lag"},
		{"negative failover wait", NewStore(), Config{Cluster: cl, ID: "a", Ranking: coordinator.Ranking{FailoverWait: -time.Second}}, "failover wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quietLogger()
			c, err := New(tt.store, tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v; want nil", err)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if err == nil {
				_ = c.Close()
				t.Fatalf("New: got nil error; want one mentioning %q", tt.wantErr)
			}
			if !errors.Is(err, coordinator.ErrInvalidConfig) {
				t.Errorf("New: %v; want it to wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New: %v; want it to mention %q", err, tt.wantErr)
			}
			if c != nil {
				t.Errorf("New returned a Coordinator with an error")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := New(NewStore(), Config{Cluster: coordinator.Cluster{Environment: "e", Service: "s"}, ID: "a", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := c.cfg.TTL, 10*time.Second; got != want {
		t.Errorf("default TTL = %v; want %v", got, want)
	}
	if got, want := c.cfg.RenewInterval, c.cfg.TTL/3; got != want {
		t.Errorf("default RenewInterval = %v; want %v", got, want)
	}
	if got, want := c.cfg.Margin, c.cfg.TTL/10; got != want {
		t.Errorf("default Margin = %v; want %v", got, want)
	}
}

// env is a fake-clock store with helpers to move time as living members
// would see it.
type env struct {
	t     *testing.T
	clk   *clock.Fake
	store *Store
	cfg   Config
}

func newEnv(t *testing.T) *env {
	clk := clock.NewFake(epoch)
	return &env{
		t:     t,
		clk:   clk,
		store: NewStore(WithClock(clk)),
		cfg: Config{
			Cluster: coordinator.Cluster{Environment: "test", Service: "db"},
			TTL:     10 * time.Second, Margin: time.Second, RenewInterval: 3 * time.Second,
			Logger: quietLogger(),
		},
	}
}

func (e *env) member(id string, cluster ...coordinator.Cluster) *Coordinator {
	e.t.Helper()
	cfg := e.cfg
	cfg.ID = id
	if len(cluster) > 0 {
		cfg.Cluster = cluster[0]
	}
	c, err := New(e.store, cfg)
	if err != nil {
		e.t.Fatalf("New(%s): %v", id, err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	if err := c.Register(context.Background(), coordinator.Member{State: coordinator.StateRunning}); err != nil {
		e.t.Fatalf("Register(%s): %v", id, err)
	}
	return c
}

// advanceTo moves the fake time to target in one jump.
func (e *env) advanceTo(target time.Time) {
	e.t.Helper()
	e.clk.Set(target)
}

func (e *env) lastAck(c *Coordinator) time.Time {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	return c.lastAck
}

type result struct {
	l   coordinator.Leadership
	err error
}

func campaignAsync(t *testing.T, c *Coordinator) <-chan result {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l, err := c.Campaign(ctx)
		ch <- result{l, err}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Errorf("Campaign(%s) still running at cleanup", c.id)
		}
	})
	return ch
}

func mustLead(t *testing.T, c *Coordinator) coordinator.Leadership {
	t.Helper()
	select {
	case r := <-campaignAsync(t, c):
		if r.err != nil {
			t.Fatalf("Campaign(%s): %v", c.id, r.err)
		}
		return r.l
	case <-time.After(testTimeout):
		t.Fatalf("Campaign(%s) did not win", c.id)
		return nil
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("%s: not closed within %v", what, testTimeout)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitingFor waits until c has a campaign queued in the store.
func waitingFor(t *testing.T, s *Store, c *Coordinator) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		s.mu.Lock()
		queued := false
		for _, w := range c.cl.waiters {
			queued = queued || w.c == c
		}
		s.mu.Unlock()
		if queued {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign of %s not queued within %v", c.id, testTimeout)
		}
		time.Sleep(time.Millisecond) // bounded poll
	}
}

// TestPartitionedLeaderFencesItself: a leader cut off from the store gives
// up its leadership at last renewal + TTL - Margin, while the store still
// holds its lease, and the waiting member wins only when the store expires
// the lease at last renewal + TTL.
func TestPartitionedLeaderFencesItself(t *testing.T) {
	e := newEnv(t)
	a, b := e.member("a"), e.member("b")
	la := mustLead(t, a)
	chB := campaignAsync(t, b)
	waitingFor(t, e.store, b)

	e.advanceTo(epoch.Add(4 * time.Second)) // a renewed at 3s
	a.partition(true)
	ack := e.lastAck(a)
	if want := epoch.Add(3 * time.Second); !ack.Equal(want) {
		t.Fatalf("last acknowledged renewal at %v; want %v", ack.Sub(epoch), want.Sub(epoch))
	}
	if _, err := a.Members(context.Background()); !errors.Is(err, coordinator.ErrUnavailable) {
		t.Errorf("Members while cut off: %v; want ErrUnavailable", err)
	}
	fence := ack.Add(e.cfg.TTL - e.cfg.Margin)
	e.advanceTo(fence.Add(-time.Millisecond))
	if closed(la.Done()) {
		t.Fatalf("leadership ended at %v; want not before %v", e.clk.Now().Sub(epoch), fence.Sub(epoch))
	}
	if got, want := a.LeaseRemaining(), time.Millisecond; got != want {
		t.Errorf("LeaseRemaining() = %v; want %v", got, want)
	}
	e.advanceTo(fence)
	waitClosed(t, la.Done(), "Leadership.Done of the cut-off leader")
	if err := la.Err(); !errors.Is(err, coordinator.ErrLeaseDeadline) {
		t.Errorf("Leadership.Err() = %v; want ErrLeaseDeadline", err)
	}
	waitClosed(t, a.Done(), "Done of the cut-off session")
	if err := a.Err(); !errors.Is(err, coordinator.ErrLeaseDeadline) {
		t.Errorf("Err() = %v; want ErrLeaseDeadline", err)
	}
	if got := a.LeaseRemaining(); got != 0 {
		t.Errorf("LeaseRemaining() after fencing = %v; want 0", got)
	}
	// The store still holds a's lease and leader key: nobody else leads.
	if l, err := b.Leader(context.Background()); err != nil || l.ID != "a" {
		t.Errorf("Leader() before the store expired a's lease = %+v, %v; want a", l, err)
	}
	select {
	case r := <-chB:
		t.Fatalf("b won (err %v) before a's lease expired in the store", r.err)
	default:
	}
	e.advanceTo(ack.Add(e.cfg.TTL))
	select {
	case r := <-chB:
		if r.err != nil {
			t.Fatalf("Campaign(b): %v", r.err)
		}
		if r.l.Token() <= la.Token() {
			t.Errorf("b's token %d; want > %d", r.l.Token(), la.Token())
		}
	case <-time.After(testTimeout):
		t.Fatal("b did not win after a's lease expired")
	}
	// Reconnecting does not revive the session.
	a.partition(false)
	if _, err := a.Members(context.Background()); !errors.Is(err, coordinator.ErrSessionClosed) {
		t.Errorf("Members after reconnection of an ended session: %v; want ErrSessionClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestShortPartitionSurvives: a member cut off for less than TTL - Margin
// keeps its session and leadership once reconnected.
func TestShortPartitionSurvives(t *testing.T) {
	e := newEnv(t)
	a := e.member("a")
	la := mustLead(t, a)
	a.partition(true)
	e.advanceTo(epoch.Add(8 * time.Second)) // fencing would be at 9s
	a.partition(false)
	e.advanceTo(epoch.Add(40 * time.Second))
	if closed(la.Done()) || closed(a.Done()) {
		t.Fatalf("term or session ended: %v, %v; want both alive", la.Err(), a.Err())
	}
	if l, err := a.Leader(context.Background()); err != nil || l.ID != "a" || l.Token != la.Token() {
		t.Fatalf("Leader() = %+v, %v; want a with token %d", l, err, la.Token())
	}
	if since := e.clk.Now().Sub(e.lastAck(a)); since >= e.cfg.RenewInterval {
		t.Errorf("last renewal %v ago; want less than the renew interval %v", since, e.cfg.RenewInterval)
	}
}

// TestCrashFailoverBounded: a crashed leader is replaced exactly when its
// lease expires, TTL after its last renewal, not before.
func TestCrashFailoverBounded(t *testing.T) {
	e := newEnv(t)
	a, b := e.member("a"), e.member("b")
	la := mustLead(t, a)
	chB := campaignAsync(t, b)
	waitingFor(t, e.store, b)
	e.advanceTo(epoch.Add(7 * time.Second)) // renewals at 3s and 6s
	a.crash()
	expiry := e.lastAck(a).Add(e.cfg.TTL)
	if want := epoch.Add(16 * time.Second); !expiry.Equal(want) {
		t.Fatalf("expiry at %v; want %v", expiry.Sub(epoch), want.Sub(epoch))
	}
	e.advanceTo(expiry.Add(-time.Millisecond))
	select {
	case r := <-chB:
		t.Fatalf("b won (err %v) before a's lease expired", r.err)
	default:
	}
	// Time stands 1ms before the store's expiry: the term can only have
	// ended by the member's own deadline (expiry - margin).
	waitClosed(t, la.Done(), "Leadership.Done of the crashed leader before its lease expired")
	if err := la.Err(); !errors.Is(err, coordinator.ErrLeaseDeadline) {
		t.Errorf("Leadership.Err() = %v; want ErrLeaseDeadline", err)
	}
	e.advanceTo(expiry)
	select {
	case r := <-chB:
		if r.err != nil {
			t.Fatalf("Campaign(b): %v", r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("b did not win at a's expiry")
	}
	ms, err := b.Members(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != "b" {
		t.Errorf("Members() = %v, %v; want only b", ms, err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close after Crash: %v; want nil", err)
	}
}

// TestCloseAfterCrashLeavesLease: closing a crashed handle does not revoke
// its lease; the store expires it on the clock.
func TestCloseAfterCrashLeavesLease(t *testing.T) {
	e := newEnv(t)
	a, b := e.member("a"), e.member("b")
	a.crash()
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ms, err := b.Members(context.Background())
	if err != nil || len(ms) != 2 {
		t.Fatalf("Members() after closing a crashed handle = %v, %v; want a and b", ms, err)
	}
	e.advanceTo(epoch.Add(e.cfg.TTL))
	ms, err = b.Members(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != "b" {
		t.Fatalf("Members() after the TTL = %v, %v; want only b", ms, err)
	}
}

// TestCloseWhileCutOff: Close cannot reach the store; it ends the session
// locally and says so.
func TestCloseWhileCutOff(t *testing.T) {
	e := newEnv(t)
	a, b := e.member("a"), e.member("b")
	la := mustLead(t, a)
	a.partition(true)
	err := a.Close()
	if !errors.Is(err, coordinator.ErrUnavailable) {
		t.Fatalf("Close while cut off: %v; want ErrUnavailable", err)
	}
	if err2 := a.Close(); err2 != err {
		t.Errorf("second Close: %v; want the first call's %v", err2, err)
	}
	if !closed(la.Done()) || !closed(a.Done()) {
		t.Fatal("term or session still open after Close")
	}
	if l, err := b.Leader(context.Background()); err != nil || l.ID != "a" {
		t.Errorf("Leader() = %+v, %v; want a until the lease expires", l, err)
	}
	e.advanceTo(epoch.Add(e.cfg.TTL))
	if _, err := b.Leader(context.Background()); !errors.Is(err, coordinator.ErrNoLeader) {
		t.Errorf("Leader() after the TTL: %v; want ErrNoLeader", err)
	}
}

// TestClustersShareStore: clusters in one store are independent, and their
// tokens come from one store-wide revision.
func TestClustersShareStore(t *testing.T) {
	e := newEnv(t)
	x := coordinator.Cluster{Environment: "prod", Service: "x"}
	y := coordinator.Cluster{Environment: "prod", Service: "y"}
	ax, bx := e.member("a", x), e.member("b", x)
	ay := e.member("a", y)
	lx := mustLead(t, ax)
	ly := mustLead(t, ay)
	if ly.Token() <= lx.Token() {
		t.Errorf("tokens %d (x) then %d (y); want the store-wide revision to increase", lx.Token(), ly.Token())
	}
	ms, err := ay.Members(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != "a" {
		t.Errorf("Members() of y = %v, %v; want only a", ms, err)
	}
	if err := lx.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := bx.Leader(context.Background()); !errors.Is(err, coordinator.ErrNoLeader) {
		t.Errorf("Leader() of x: %v; want ErrNoLeader", err)
	}
	if l, err := ay.Leader(context.Background()); err != nil || l.ID != "a" || l.Token != ly.Token() {
		t.Errorf("Leader() of y = %+v, %v; want a, %d", l, err, ly.Token())
	}
	if err := bx.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p, err := ay.Paused(context.Background()); err != nil || p {
		t.Errorf("Paused() of y after pausing x = %v, %v; want false", p, err)
	}
}

// TestSlowWatcherNeverBlocks: a watcher that does not read does not slow
// the store down, and then receives every event in order.
func TestSlowWatcherNeverBlocks(t *testing.T) {
	e := newEnv(t)
	a, w := e.member("a"), e.member("w")
	ch, err := w.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 10000
	if testing.Short() {
		n = 1000
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if err := a.Register(context.Background(), coordinator.Member{Version: fmt.Sprint(i)}); err != nil {
				t.Errorf("Register #%d: %v", i, err)
				return
			}
		}
	}()
	waitClosed(t, done, "registrations while nobody reads the watch")
	// Initial state: a, w, no leader. Then n updates of a, in order.
	for i := 0; i < 3; i++ {
		<-ch
	}
	for i := 0; i < n; i++ {
		select {
		case ev := <-ch:
			if ev.Type != coordinator.EventMemberUpdated || ev.Member.Version != fmt.Sprint(i) {
				t.Fatalf("event %d = %v version %q; want member_updated version %d", i, ev.Type, ev.Member.Version, i)
			}
		case <-time.After(testTimeout):
			t.Fatalf("event %d not received", i)
		}
	}
}

// TestLocalDefault: one member on the real clock, as `ccctl run` uses the
// backend without etcd, leads at once.
func TestLocalDefault(t *testing.T) {
	c, err := New(NewStore(), Config{Cluster: coordinator.Cluster{Environment: "local", Service: "svc"}, ID: "host1", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Register(context.Background(), coordinator.Member{State: coordinator.StateStarting}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	l, err := c.Campaign(ctx)
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}
	if l.Token() <= 0 {
		t.Errorf("Token() = %d; want > 0", l.Token())
	}
	if got := c.LeaseRemaining(); got <= 0 || got > 9*time.Second {
		t.Errorf("LeaseRemaining() = %v; want in (0, 9s]", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(l.Err(), coordinator.ErrResigned) || !errors.Is(c.Err(), coordinator.ErrSessionClosed) {
		t.Errorf("after Close: term %v, session %v; want ErrResigned, ErrSessionClosed", l.Err(), c.Err())
	}
}

// TestResignWhileCutOff: a resignation that cannot reach the store ends the
// term at once and releases the leader key on reconnection.
func TestResignWhileCutOff(t *testing.T) {
	e := newEnv(t)
	a, b := e.member("a"), e.member("b")
	la := mustLead(t, a)
	chB := campaignAsync(t, b)
	waitingFor(t, e.store, b)
	a.partition(true)
	if err := la.Resign(context.Background()); !errors.Is(err, coordinator.ErrUnavailable) {
		t.Fatalf("Resign while cut off: %v; want ErrUnavailable", err)
	}
	if !closed(la.Done()) || !errors.Is(la.Err(), coordinator.ErrResigned) {
		t.Fatalf("term after Resign: closed %v, err %v; want closed, ErrResigned", closed(la.Done()), la.Err())
	}
	select {
	case r := <-chB:
		t.Fatalf("b won (err %v) while a's leader key could not be deleted", r.err)
	default:
	}
	a.partition(false)
	select {
	case r := <-chB:
		if r.err != nil {
			t.Fatalf("Campaign(b): %v", r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("b did not win after a reconnected")
	}
	if closed(a.Done()) {
		t.Errorf("a's session ended: %v; want alive", a.Err())
	}
}

// TestClockJumpKeepsConnectedMembers: a jump of the fake clock far past
// the TTL expires only the members that could not renew (crashed or cut
// off); connected members renewed on schedule meanwhile.
func TestClockJumpKeepsConnectedMembers(t *testing.T) {
	e := newEnv(t)
	a, b, d := e.member("a"), e.member("b"), e.member("d")
	la := mustLead(t, a)
	b.crash()
	d.partition(true)
	e.clk.Advance(time.Hour)
	waitClosed(t, b.Done(), "Done of the crashed member")
	waitClosed(t, d.Done(), "Done of the cut-off member")
	ms, err := a.Members(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != "a" {
		t.Fatalf("Members() after an hour = %v, %v; want only a", ms, err)
	}
	if closed(la.Done()) || closed(a.Done()) {
		t.Fatalf("a's term or session ended: %v, %v; want both alive", la.Err(), a.Err())
	}
	if got := a.LeaseRemaining(); got <= e.cfg.TTL-e.cfg.Margin-e.cfg.RenewInterval {
		t.Errorf("LeaseRemaining() = %v; want more than TTL - margin - renew interval", got)
	}
	if l, err := a.Leader(context.Background()); err != nil || l.Token != la.Token() {
		t.Errorf("Leader() = %+v, %v; want a's term %d", l, err, la.Token())
	}
}
