package coordinatortest

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

// The ranking properties (coordinator.Ranking), run when the harness is a
// RankedHarness. Member ids are chosen so that the plain rule (the first
// waiting member, then the lowest id) would pick another member than the
// ranking does.

// rankingWait is the failover wait the properties give their members: long
// enough that a backend on the real clock does not reach it by accident
// in a quiet period, short enough to wait for.
const rankingWait = time.Second

// ranked returns the harness as a RankedHarness, or skips the property.
func (c cluster) ranked() RankedHarness {
	c.t.Helper()
	rh, ok := c.h.(RankedHarness)
	if !ok {
		c.t.Skip("harness is not a coordinatortest.RankedHarness")
	}
	return rh
}

// rankedMember opens id with ranking r and registers it in state running
// at position pos.
func (c cluster) rankedMember(id string, r coordinator.Ranking, pos int64) coordinator.Coordinator {
	c.t.Helper()
	m := c.ranked().NewRanked(c.t, id, r)
	if m.ID() != id {
		c.t.Fatalf("NewRanked(%q).ID() = %q; want %q", id, m.ID(), id)
	}
	registerAt(c.t, m, coordinator.StateRunning, pos)
	return m
}

// pass lets d pass on the backend's clock when the harness controls it;
// on the real clock it does nothing, and the waits that follow take the
// time.
func (c cluster) pass(d time.Duration) {
	c.t.Helper()
	if tm, ok := c.h.(TimeMover); ok {
		tm.Pass(c.t, d)
	}
}

// registerAt registers m in state at replication position pos.
func registerAt(t *testing.T, m coordinator.Coordinator, state coordinator.State, pos int64) coordinator.Member {
	t.Helper()
	rec := record(m, state)
	rec.Position = &pos
	rec.PositionAt = time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)
	if err := m.Register(testContext(t), rec); err != nil {
		t.Fatalf("Register(%s at %d): %v", m.ID(), pos, err)
	}
	return rec
}

// leadAt makes m lead, then publishes pos again as its position while it
// leads, so that the backend keeps it as the last master's position.
func leadAt(t *testing.T, m coordinator.Coordinator, pos int64) coordinator.Leadership {
	t.Helper()
	l := lead(t, m)
	registerAt(t, m, coordinator.StateRunning, pos)
	return l
}

// quiet fails if any of the campaigns returns within quietPeriod.
func quiet(t *testing.T, why string, chs ...<-chan campaignResult) {
	t.Helper()
	deadline := time.After(quietPeriod)
	for _, ch := range chs {
		select {
		case r := <-ch:
			t.Fatalf("Campaign(%s) returned (leadership %v, err %v) %s; want still waiting", r.id, r.l != nil, r.err, why)
		case <-deadline:
			return
		}
	}
	<-deadline
}

// notLeader fails if id leads, as m sees it.
func notLeader(t *testing.T, m coordinator.Coordinator, id string) {
	t.Helper()
	if got, err := leaderOf(t, m); err == nil && got.ID == id {
		t.Fatalf("Leader() = %+v; want anybody but %s", got, id)
	}
}

func (s suite) rankingPublishesPriority(t *testing.T) {
	c := s.cluster(t)
	rh := c.ranked()
	for _, tc := range []struct {
		id   string
		r    coordinator.Ranking
		want int
	}{
		{"default", coordinator.Ranking{}, coordinator.DefaultPriority},
		{"five", coordinator.Ranking{Priority: 5}, 5},
		{"never", coordinator.Ranking{Priority: coordinator.NeverLead}, 0},
	} {
		m := rh.NewRanked(t, tc.id, tc.r)
		pos := int64(1234)
		rec := coordinator.Member{ID: tc.id, State: coordinator.StateRunning, Priority: 42, Position: &pos,
			PositionAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		if err := m.Register(testContext(t), rec); err != nil {
			t.Fatalf("Register(%s): %v", tc.id, err)
		}
		ms := waitMembers(t, m, tc.id)
		got := ms[0]
		if got.Priority != tc.want {
			t.Errorf("record of %s (ranking %+v, registered with priority 42): priority %d; want %d", tc.id, tc.r, got.Priority, tc.want)
		}
		if got.Position == nil || *got.Position != pos || !got.PositionAt.Equal(rec.PositionAt) {
			t.Errorf("record of %s: position %v at %v; want %d at %v", tc.id, got.Position, got.PositionAt, pos, rec.PositionAt)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// An unknown position stays unknown.
	m := rh.NewRanked(t, "unknown", coordinator.Ranking{})
	register(t, m, coordinator.StateRunning)
	if ms := waitMembers(t, m, "unknown"); ms[0].Position != nil {
		t.Errorf("record registered without a position: position %d; want none", *ms[0].Position)
	}
}

func (s suite) rankingCrashPicksMostCaughtUp(t *testing.T) {
	c := s.cluster(t)
	r := coordinator.Ranking{FailoverWait: rankingWait}
	m := c.rankedMember("m", r, 1000)
	lm := leadAt(t, m, 1000)
	a, b := c.rankedMember("a", r, 500), c.rankedMember("b", r, 900)
	// a waits first and has the lowest id: the plain rule would pick it.
	chA, ctxA, _ := campaignWatched(t, testContext(t), a)
	waiting(t, ctxA, "a")
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	notReturned(t, chA, "while m leads")
	notReturned(t, chB, "while m leads")
	c.h.Expire(t, m)
	lb := waitWon(t, chB, "b", waitTimeout)
	if !isClosed(lm.Done()) {
		t.Fatal("b leads while m's Leadership.Done is still open")
	}
	notReturned(t, chA, "while b leads")
	wantLeader(t, a, "b", lb.Token())
}

func (s suite) rankingPriorityZeroNeverLeads(t *testing.T) {
	c := s.cluster(t)
	r := coordinator.Ranking{FailoverWait: rankingWait}
	never := coordinator.Ranking{Priority: coordinator.NeverLead, FailoverWait: rankingWait}
	m := c.rankedMember("m", r, 1000)
	leadAt(t, m, 1000)
	// z is the most caught up and waits first; d and b can lead.
	z := c.rankedMember("z", never, 2000)
	d := c.rankedMember("d", r, 100)
	b := c.rankedMember("b", r, 900)
	chZ, ctxZ, _ := campaignWatched(t, testContext(t), z)
	waiting(t, ctxZ, "z")
	chD, ctxD, _ := campaignWatched(t, testContext(t), d)
	waiting(t, ctxD, "d")
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")

	// A crash: b, the most caught up of those that may lead.
	c.h.Expire(t, m)
	lb := waitWon(t, chB, "b", waitTimeout)
	notReturned(t, chZ, "while b leads")

	// A switchover naming nobody: d, the only other one that may lead.
	got, err := d.Switchover(testContext(t), "")
	if err != nil || got != "d" {
		t.Fatalf("Switchover(\"\") = %q, %v; want d (z has priority 0)", got, err)
	}
	if err := lb.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	ld := waitWon(t, chD, "d", waitTimeout)
	notReturned(t, chZ, "while d leads")

	// A handover: to b, not to z, which waits first and is further ahead.
	chB = campaign(t, testContext(t), b)
	if err := ld.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	lb = waitWon(t, chB, "b", waitTimeout)

	// A handover with nobody else to take it: still not z.
	if err := lb.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	c.pass(2 * rankingWait)
	quiet(t, "with priority 0", chZ)
	notLeader(t, z, "z")
}

func (s suite) rankingSwitchoverToPriorityZero(t *testing.T) {
	c := s.cluster(t)
	m := c.rankedMember("m", coordinator.Ranking{}, 1000)
	lm := leadAt(t, m, 1000)
	c.rankedMember("z", coordinator.Ranking{Priority: coordinator.NeverLead}, 2000)
	if _, err := m.Switchover(testContext(t), "z"); !errors.Is(err, coordinator.ErrIneligible) {
		t.Fatalf("Switchover(z) of priority 0 = %v; want ErrIneligible", err)
	}
	if got, err := m.Switchover(testContext(t), ""); err == nil || got == "z" {
		t.Fatalf("Switchover(\"\") with only a member of priority 0 to hand over to = %q, %v; want an error", got, err)
	}
	if isClosed(lm.Done()) {
		t.Fatalf("a refused switchover ended the leader's term: %v", lm.Err())
	}
	wantLeader(t, m, "m", lm.Token())
}

func (s suite) rankingMaxLagThenFailover(t *testing.T) {
	c := s.cluster(t)
	r := coordinator.Ranking{MaxLag: 100, FailoverWait: rankingWait}
	m := c.rankedMember("m", r, 1000)
	if _, ok := m.(coordinator.Failoverer); !ok {
		t.Skip("backend is not a coordinator.Failoverer")
	}
	leadAt(t, m, 1000)
	a, b := c.rankedMember("a", r, 10), c.rankedMember("b", r, 20)
	events, _ := watch(t, a)
	chA, ctxA, _ := campaignWatched(t, testContext(t), a)
	waiting(t, ctxA, "a")
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	// Both are more than 100 behind the last master's 1000: nobody takes
	// over, not even once the failover waits are over.
	c.h.Expire(t, m)
	c.pass(2 * rankingWait)
	quiet(t, "behind by more than maximum_lag", chA, chB)
	wantNoLeader(t, a)

	fo := b.(coordinator.Failoverer)
	if err := fo.Failover(testContext(t), "nobody"); !errors.Is(err, coordinator.ErrUnknownMember) {
		t.Fatalf("Failover(nobody) = %v; want ErrUnknownMember", err)
	}
	if err := fo.Failover(testContext(t), "a"); err != nil {
		t.Fatalf("Failover(a): %v", err)
	}
	ev, _ := until(t, events, "switchover(a) forced", func(ev coordinator.Event) bool {
		return ev.Type == coordinator.EventSwitchover
	})
	if ev.SwitchoverTo != "a" || !ev.Forced {
		t.Fatalf("event = %s forced %v; want switchover(a) forced", describeOne(ev), ev.Forced)
	}
	la := waitWon(t, chA, "a", waitTimeout)
	notReturned(t, chB, "while a leads")
	wantLeader(t, b, "a", la.Token())
}

func (s suite) rankingBestAbsentOthersWait(t *testing.T) {
	c := s.cluster(t)
	r := coordinator.Ranking{FailoverWait: rankingWait}
	m := c.rankedMember("m", r, 1000)
	leadAt(t, m, 1000)
	// b is the best candidate but does not campaign; a and z do, z of
	// priority 0.
	c.rankedMember("b", r, 900)
	a := c.rankedMember("a", r, 500)
	z := c.rankedMember("z", coordinator.Ranking{Priority: coordinator.NeverLead}, 2000)
	chZ, ctxZ, _ := campaignWatched(t, testContext(t), z)
	waiting(t, ctxZ, "z")
	chA, ctxA, _ := campaignWatched(t, testContext(t), a)
	waiting(t, ctxA, "a")
	c.h.Expire(t, m)
	if _, ok := c.h.(TimeMover); ok {
		// On a clock the harness controls, no time passes by itself: a
		// waits for b for its whole failover wait.
		quiet(t, "before the failover wait passed", chA)
		c.pass(rankingWait)
	}
	la := waitWon(t, chA, "a", waitTimeout)
	notReturned(t, chZ, "while a leads")
	wantLeader(t, z, "a", la.Token())
}

func (s suite) rankingResignHandsToBest(t *testing.T) {
	c := s.cluster(t)
	r := coordinator.Ranking{FailoverWait: rankingWait}
	m := c.rankedMember("m", r, 1000)
	lm := leadAt(t, m, 1000)
	a, b := c.rankedMember("a", r, 500), c.rankedMember("b", r, 900)
	chA, ctxA, _ := campaignWatched(t, testContext(t), a)
	waiting(t, ctxA, "a")
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	begin := time.Now()
	if err := lm.Resign(testContext(t)); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	if took := time.Since(begin); took > handoverLimit {
		t.Errorf("handover took %v; want under %v", took, handoverLimit)
	}
	notReturned(t, chA, "while b leads")
	wantLeader(t, a, "b", lb.Token())
}

func (s suite) rankingLastPosition(t *testing.T) {
	c := s.cluster(t)
	m := c.rankedMember("m", coordinator.Ranking{}, 500)
	lp, ok := m.(coordinator.LastPositioner)
	if !ok {
		t.Skip("backend is not a coordinator.LastPositioner")
	}
	want := func(who string, w int64) {
		t.Helper()
		eventually(t, "LastPosition() = "+who, func() (bool, string) {
			got, err := lp.LastPosition(testContext(t))
			switch {
			case err != nil:
				return false, err.Error()
			case got == nil:
				return w < 0, "nil"
			}
			return *got == w, "position " + strconv.FormatInt(*got, 10)
		})
	}
	want("nil before anybody led", -1)
	lm := leadAt(t, m, 500)
	want("500", 500)
	b := c.rankedMember("b", coordinator.Ranking{}, 9999)
	registerAt(t, m, coordinator.StateRunning, 700)
	want("700", 700)
	// Not a master's: no change.
	registerAt(t, b, coordinator.StateRunning, 12345)
	want("700 after a slave's 12345", 700)
	if err := lm.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	registerAt(t, m, coordinator.StateRunning, 800)
	want("700 after the master resigned", 700)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	lp = b.(coordinator.LastPositioner)
	want("700 after the master went away", 700)
}
