package memory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

func pos(v int64) *int64 { return &v }

func TestDecide(t *testing.T) {
	vac := epoch.Add(time.Minute)
	mem := func(id string, prio int, p *int64) coordinator.Member {
		return coordinator.Member{ID: id, Priority: prio, Position: p, State: coordinator.StateRunning}
	}
	cand := func(id string, prio int, r coordinator.Ranking) candidate {
		return candidate{id: id, priority: prio, ranking: r, wait: r.Wait(10 * time.Second), since: vac}
	}
	target := func(c candidate) candidate { c.target = true; return c }
	late := func(c candidate, d time.Duration) candidate { c.since = c.since.Add(d); return c }
	lag := coordinator.Ranking{MaxLag: 100}
	for _, tc := range []struct {
		name      string
		v         vacancy
		want      int
		wantRetry time.Time // zero: none
	}{
		{"nobody waits", vacancy{members: []coordinator.Member{mem("a", 1, nil)}, now: vac}, -1, time.Time{}},
		{"plain rule: the first waiting", vacancy{
			members: []coordinator.Member{mem("a", 1, nil), mem("b", 1, nil), mem("c", 1, nil)},
			waiters: []candidate{cand("c", 1, coordinator.Ranking{}), cand("b", 1, coordinator.Ranking{})},
			now:     vac,
		}, 0, time.Time{}},
		{"the best, wherever it waits", vacancy{
			members: []coordinator.Member{mem("a", 1, pos(500)), mem("b", 1, pos(900))},
			waiters: []candidate{cand("a", 1, coordinator.Ranking{}), cand("b", 1, coordinator.Ranking{})},
			now:     vac,
		}, 1, time.Time{}},
		{"the best absent: wait for it", vacancy{
			members: []coordinator.Member{mem("a", 1, pos(500)), mem("b", 1, pos(900))},
			waiters: []candidate{cand("a", 1, coordinator.Ranking{})},
			now:     vac.Add(time.Second),
		}, -1, vac.Add(2500 * time.Millisecond)},
		{"the best absent: the wait is over", vacancy{
			members: []coordinator.Member{mem("a", 1, pos(500)), mem("b", 1, pos(900))},
			waiters: []candidate{cand("a", 1, coordinator.Ranking{})},
			now:     vac.Add(2500 * time.Millisecond),
		}, 0, time.Time{}},
		{"of those whose wait is over, the better placed", vacancy{
			members: []coordinator.Member{mem("a", 1, pos(500)), mem("b", 1, pos(900)), mem("c", 1, pos(700))},
			waiters: []candidate{cand("a", 1, coordinator.Ranking{}), cand("c", 1, coordinator.Ranking{})},
			now:     vac.Add(time.Hour),
		}, 1, time.Time{}},
		{"the earliest end of a wait", vacancy{
			members: []coordinator.Member{mem("a", 1, pos(500)), mem("b", 1, pos(900)), mem("c", 1, pos(700))},
			waiters: []candidate{late(cand("a", 1, coordinator.Ranking{}), time.Second), cand("c", 1, coordinator.Ranking{FailoverWait: 5 * time.Second})},
			now:     vac,
		}, -1, vac.Add(3500 * time.Millisecond)},
		{"priority 0 never, and is not the heir", vacancy{
			members: []coordinator.Member{mem("z", 0, pos(2000)), mem("b", 1, nil), mem("c", 1, nil)},
			waiters: []candidate{cand("z", 0, coordinator.Ranking{}), cand("c", 1, coordinator.Ranking{}), cand("b", 1, coordinator.Ranking{})},
			now:     vac.Add(time.Hour),
		}, 1, time.Time{}},
		{"too far behind the last master", vacancy{
			members: []coordinator.Member{mem("a", 1, pos(10)), mem("b", 1, pos(20))},
			waiters: []candidate{cand("a", 1, lag), cand("b", 1, lag)},
			last:    pos(1000),
			now:     vac.Add(time.Hour),
		}, -1, time.Time{}},
		{"maximum lag is each member's own: a waits for b, b may not", vacancy{
			members: []coordinator.Member{mem("a", 1, pos(10)), mem("b", 1, pos(20))},
			waiters: []candidate{cand("a", 1, coordinator.Ranking{}), cand("b", 1, lag)},
			last:    pos(1000),
			now:     vac,
		}, -1, vac.Add(2500 * time.Millisecond)},
		{"a campaign without a record", vacancy{
			members: []coordinator.Member{mem("x", 1, nil)},
			waiters: []candidate{cand("x", 1, coordinator.Ranking{})},
			now:     vac,
		}, 0, time.Time{}},
		{"switchover: only the target", vacancy{
			members:  []coordinator.Member{mem("a", 1, pos(900)), mem("b", 1, pos(10))},
			waiters:  []candidate{cand("a", 1, coordinator.Ranking{}), target(cand("b", 1, coordinator.Ranking{}))},
			switchTo: "b",
			now:      vac,
		}, 1, time.Time{}},
		{"switchover: the target does not wait", vacancy{
			members:  []coordinator.Member{mem("a", 1, pos(900)), mem("b", 1, pos(10))},
			waiters:  []candidate{cand("a", 1, coordinator.Ranking{})},
			switchTo: "b",
			now:      vac.Add(time.Hour),
		}, -1, time.Time{}},
		{"switchover to priority 0 not forced", vacancy{
			members:  []coordinator.Member{mem("z", 0, nil)},
			waiters:  []candidate{target(cand("z", 0, coordinator.Ranking{}))},
			switchTo: "z",
			now:      vac,
		}, -1, time.Time{}},
		{"failover: forced past priority 0 and the lag", vacancy{
			members:  []coordinator.Member{mem("z", 0, pos(1))},
			waiters:  []candidate{target(cand("z", 0, lag))},
			last:     pos(1000),
			switchTo: "z",
			forced:   true,
			now:      vac,
		}, 0, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, retry := decide(tc.v)
			if got != tc.want || !retry.Equal(tc.wantRetry) {
				t.Errorf("decide = %d, retry at %v; want %d, retry at %v", got, at(retry), tc.want, at(tc.wantRetry))
			}
		})
	}
}

// at shows t relative to the epoch ("none" for zero).
func at(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Sub(epoch).String()
}

// ranked opens id with ranking r and registers it at position p (nil:
// none).
func (e *env) ranked(id string, r coordinator.Ranking, p *int64) *Coordinator {
	e.t.Helper()
	cfg := e.cfg
	cfg.ID, cfg.Ranking = id, r
	c, err := New(e.store, cfg)
	if err != nil {
		e.t.Fatalf("New(%s): %v", id, err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	e.register(c, p)
	return c
}

func (e *env) register(c *Coordinator, p *int64) {
	e.t.Helper()
	if err := c.Register(context.Background(), coordinator.Member{State: coordinator.StateRunning, Position: p}); err != nil {
		e.t.Fatalf("Register(%s): %v", c.id, err)
	}
}

// expire crashes c and moves the clock to the instant its lease expires.
func (e *env) expire(c *Coordinator) {
	e.t.Helper()
	c.crash()
	e.store.mu.Lock()
	expiry := c.lease.expiry
	e.store.mu.Unlock()
	e.advanceTo(expiry)
	e.store.mu.Lock()
	e.store.expireDueLocked()
	alive := e.store.aliveLocked(c.lease)
	e.store.mu.Unlock()
	if alive {
		e.t.Fatalf("lease of crashed %s alive at its expiry", c.id)
	}
}

// leaderID returns the id of the leader the store has granted, or "",
// once the store has decided at the current time (as its timers would,
// which run in goroutines of their own).
func (e *env) leaderID(c *Coordinator) string {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	e.store.expireDueLocked()
	e.store.electLocked(c.cl)
	if t := c.cl.leader; t != nil {
		return t.c.id
	}
	return ""
}

func won(t *testing.T, ch <-chan result, who string) coordinator.Leadership {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Campaign(%s): %v; want leadership", who, r.err)
		}
		return r.l
	case <-time.After(testTimeout):
		t.Fatalf("Campaign(%s) did not win within %v", who, testTimeout)
		return nil
	}
}

// TestRerankOnRecordChange: during a vacancy where nobody is eligible, a
// member that publishes a position close enough takes over at once.
func TestRerankOnRecordChange(t *testing.T) {
	e := newEnv(t)
	r := coordinator.Ranking{MaxLag: 100}
	m := e.ranked("m", r, pos(1000))
	mustLead(t, m)
	a, b := e.ranked("a", r, pos(500)), e.ranked("b", r, pos(800))
	chA, chB := campaignAsync(t, a), campaignAsync(t, b)
	waitingFor(t, e.store, a)
	waitingFor(t, e.store, b)
	e.expire(m)
	e.advanceTo(e.clk.Now().Add(time.Hour))
	if id := e.leaderID(a); id != "" {
		t.Fatalf("%s leads, 200 or more behind the last master's 1000 with maximum lag 100; want nobody", id)
	}
	e.register(b, pos(950))
	won(t, chB, "b")
	if closed(a.Done()) {
		t.Fatal("a's session ended")
	}
	select {
	case r := <-chA:
		t.Fatalf("Campaign(a) returned (err %v) while b leads", r.err)
	default:
	}
}

// TestFailoverWaitFromSighting: an eligible member that is not the best
// waits its failover wait from when it saw the vacancy: from its campaign's
// start when that came later.
func TestFailoverWaitFromSighting(t *testing.T) {
	e := newEnv(t)
	r := coordinator.Ranking{FailoverWait: 2 * time.Second}
	m := e.ranked("m", r, pos(1000))
	mustLead(t, m)
	e.ranked("b", r, pos(900)) // the best; never campaigns
	d := e.ranked("d", r, pos(400))
	e.expire(m)
	vacant := e.clk.Now()
	e.advanceTo(vacant.Add(time.Second))
	chD := campaignAsync(t, d)
	waitingFor(t, e.store, d)
	e.advanceTo(vacant.Add(3*time.Second - time.Millisecond))
	if id := e.leaderID(d); id != "" {
		t.Fatalf("%s leads %v after the vacancy, %v after d's campaign began; want nobody before d's failover wait of 2s", id, 3*time.Second-time.Millisecond, 2*time.Second-time.Millisecond)
	}
	e.advanceTo(vacant.Add(3 * time.Second))
	won(t, chD, "d")
}

// TestBestGoneOthersTakeOver: when the best candidate's record goes away
// during the vacancy, the next one takes over at once, without waiting out
// its failover wait.
func TestBestGoneOthersTakeOver(t *testing.T) {
	e := newEnv(t)
	m := e.ranked("m", coordinator.Ranking{}, pos(1000))
	mustLead(t, m)
	b := e.ranked("b", coordinator.Ranking{}, pos(900))
	c := e.ranked("c", coordinator.Ranking{}, pos(500))
	chC := campaignAsync(t, c)
	waitingFor(t, e.store, c)
	e.expire(m)
	if id := e.leaderID(c); id != "" {
		t.Fatalf("%s leads while the best candidate b may still campaign; want nobody", id)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	won(t, chC, "c")
}

// TestFailoverForcesPriorityZero: a forced switchover lets a member of
// priority 0 take a vacancy, and hand-over from a sitting leader; Watch
// reports it as forced, also in the state a new watch starts with.
func TestFailoverForcesPriorityZero(t *testing.T) {
	e := newEnv(t)
	never := coordinator.Ranking{Priority: coordinator.NeverLead}
	m := e.ranked("m", coordinator.Ranking{}, pos(1000))
	lm := mustLead(t, m)
	z := e.ranked("z", never, pos(10))
	chZ := campaignAsync(t, z)
	waitingFor(t, e.store, z)

	if err := m.Failover(context.Background(), "z"); err != nil {
		t.Fatalf("Failover(z): %v", err)
	}
	evs, cancel := watchEvents(t, m)
	defer cancel()
	got := nextOfType(t, evs, coordinator.EventSwitchover)
	if got.SwitchoverTo != "z" || !got.Forced {
		t.Fatalf("state event = %+v; want switchover to z, forced", got)
	}
	if closed(lm.Done()) {
		t.Fatalf("Failover ended the sitting leader's term: %v", lm.Err())
	}
	if err := lm.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	lz := won(t, chZ, "z")

	// Again on a vacancy: nobody may take it but z, when forced.
	if err := lz.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	chZ = campaignAsync(t, z)
	waitingFor(t, e.store, z)
	e.advanceTo(e.clk.Now().Add(time.Hour))
	if id := e.leaderID(z); id != "" {
		t.Fatalf("%s leads; want nobody (z has priority 0)", id)
	}
	if err := m.Failover(context.Background(), "z"); err != nil {
		t.Fatalf("Failover(z): %v", err)
	}
	won(t, chZ, "z")
	if err := m.Failover(context.Background(), "z"); err != nil {
		t.Errorf("Failover(z) while z leads: %v; want nil", err)
	}
	e.store.mu.Lock()
	standing := m.cl.switchTo
	e.store.mu.Unlock()
	if standing != "" {
		t.Errorf("switchover request for %q stands; want none once z leads", standing)
	}
}

func watchEvents(t *testing.T, c *Coordinator) (<-chan coordinator.Event, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Watch(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Watch: %v", err)
	}
	return ch, cancel
}

func nextOfType(t *testing.T, ch <-chan coordinator.Event, typ coordinator.EventType) coordinator.Event {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case ev := <-ch:
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v event within %v", typ, testTimeout)
			return coordinator.Event{}
		}
	}
}

// TestSwitchoverRefusesIneligible: a switchover to a member behind by more
// than the maximum lag is refused with a line that says how to force it;
// one naming nobody says whether nobody may or nobody is there.
func TestSwitchoverRefusesIneligible(t *testing.T) {
	e := newEnv(t)
	m := e.ranked("m", coordinator.Ranking{}, pos(1000))
	lm := mustLead(t, m)
	cli := e.ranked("cli", coordinator.Ranking{Priority: coordinator.NeverLead, MaxLag: 100}, nil)
	e.ranked("a", coordinator.Ranking{}, pos(500))

	_, err := cli.Switchover(context.Background(), "a")
	if !errors.Is(err, coordinator.ErrIneligible) {
		t.Fatalf("Switchover(a) 500 behind with maximum lag 100 = %v; want ErrIneligible", err)
	}
	for _, want := range []string{"lag 500 > maximum_lag 100", "ccctl failover --to a --force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Switchover(a) error %q; want it to say %q", err, want)
		}
	}
	if _, err := cli.Switchover(context.Background(), ""); !errors.Is(err, coordinator.ErrIneligible) {
		t.Errorf("Switchover(\"\") with nobody eligible = %v; want ErrIneligible", err)
	}
	// Without a lag limit a is eligible: the caller's ranking decides.
	if got, err := m.Switchover(context.Background(), ""); err != nil || got != "a" {
		t.Errorf("Switchover(\"\") without a lag limit = %q, %v; want a", got, err)
	}
	if closed(lm.Done()) {
		t.Fatalf("a switchover ended the leader's term: %v", lm.Err())
	}

	alone := newEnv(t)
	s := alone.ranked("s", coordinator.Ranking{}, nil)
	mustLead(t, s)
	if _, err := s.Switchover(context.Background(), ""); !errors.Is(err, coordinator.ErrUnknownMember) {
		t.Errorf("Switchover(\"\") of a member alone = %v; want ErrUnknownMember", err)
	}
}

// TestResumeRestartsFailoverWait: the waiting members see the vacancy anew
// when the cluster is resumed, so the best candidate has its head start
// again.
func TestResumeRestartsFailoverWait(t *testing.T) {
	e := newEnv(t)
	r := coordinator.Ranking{FailoverWait: 2 * time.Second}
	m := e.ranked("m", r, pos(1000))
	lm := mustLead(t, m)
	e.ranked("b", r, pos(900))
	c := e.ranked("c", r, pos(500))
	chC := campaignAsync(t, c)
	waitingFor(t, e.store, c)
	if err := m.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := lm.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.advanceTo(e.clk.Now().Add(time.Minute))
	if err := m.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	resumed := e.clk.Now()
	e.advanceTo(resumed.Add(2*time.Second - time.Millisecond))
	if id := e.leaderID(c); id != "" {
		t.Fatalf("%s leads within the failover wait after Resume; want nobody", id)
	}
	e.advanceTo(resumed.Add(2 * time.Second))
	won(t, chC, "c")
}

// TestResignBestNotWaiting: a leader that resigns while the best candidate
// does not campaign leaves a vacancy: the best takes it as soon as it
// campaigns, another eligible member after its failover wait.
func TestResignBestNotWaiting(t *testing.T) {
	for _, bestCampaigns := range []bool{true, false} {
		name := map[bool]string{true: "BestCampaignsLater", false: "OtherAfterWait"}[bestCampaigns]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			r := coordinator.Ranking{FailoverWait: 2 * time.Second}
			m := e.ranked("m", r, pos(1000))
			lm := mustLead(t, m)
			b := e.ranked("b", r, pos(900))
			c := e.ranked("c", r, pos(500))
			// m stops, as a member does before it resigns: it is no
			// candidate any more.
			if err := m.Register(context.Background(), coordinator.Member{State: coordinator.StateStopping, Position: pos(1000)}); err != nil {
				t.Fatal(err)
			}
			chC := campaignAsync(t, c)
			waitingFor(t, e.store, c)
			if err := lm.Resign(context.Background()); err != nil {
				t.Fatal(err)
			}
			if id := e.leaderID(c); id != "" {
				t.Fatalf("%s leads after the handover while b, the best, does not campaign; want nobody", id)
			}
			if bestCampaigns {
				won(t, campaignAsync(t, b), "b")
				return
			}
			resigned := e.clk.Now()
			e.advanceTo(resigned.Add(2*time.Second - time.Millisecond))
			if id := e.leaderID(c); id != "" {
				t.Fatalf("%s leads before c's failover wait passed; want nobody", id)
			}
			e.advanceTo(resigned.Add(2 * time.Second))
			won(t, chC, "c")
		})
	}
}

// TestCampaignWithoutRecord: a campaign of a member that has no record
// ranks with what is known of it: it wins without a lag limit, and not
// with one once a position is known.
func TestCampaignWithoutRecord(t *testing.T) {
	e := newEnv(t)
	cfg := e.cfg
	cfg.ID = "x"
	x, err := New(e.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	lx := mustLead(t, x)
	if err := lx.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}

	m := e.ranked("m", coordinator.Ranking{}, pos(1000))
	mustLead(t, m)
	cfg.ID, cfg.Ranking = "y", coordinator.Ranking{MaxLag: 100}
	y, err := New(e.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = y.Close() })
	campaignAsync(t, y)
	waitingFor(t, e.store, y)
	e.expire(m)
	e.advanceTo(e.clk.Now().Add(time.Hour))
	if id := e.leaderID(y); id != "" {
		t.Fatalf("%s leads; want nobody (y's position is unknown, the last master's 1000)", id)
	}
}

// TestLastPositionAtGrant: the position the winner's record has when its
// term begins is the last master's position at once; a record without one
// leaves the previous value.
func TestLastPositionAtGrant(t *testing.T) {
	e := newEnv(t)
	a := e.ranked("a", coordinator.Ranking{}, pos(500))
	last := func() *int64 {
		t.Helper()
		p, err := a.LastPosition(context.Background())
		if err != nil {
			t.Fatalf("LastPosition: %v", err)
		}
		return p
	}
	if p := last(); p != nil {
		t.Fatalf("LastPosition() before any term = %d; want nil", *p)
	}
	la := mustLead(t, a)
	if p := last(); p == nil || *p != 500 {
		t.Fatalf("LastPosition() = %v; want 500", p)
	}
	if err := la.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.register(a, nil)
	mustLead(t, a)
	if p := last(); p == nil || *p != 500 {
		t.Fatalf("LastPosition() after a term without a position = %v; want 500", p)
	}
}
