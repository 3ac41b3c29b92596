package schedule_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/backends/memory/memorytest"
	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/schedule"
)

// member is what a backend gives the cluster test: a registered handle
// that also claims slots, a way to make it fail as a crashed process would
// (renewals stop, the lease is not revoked), and, for a backend on a fake
// clock, a way to let its lease expire (nil when it expires in real time).
type member struct {
	c      coordinator.Coordinator
	claim  coordinator.SlotClaimer
	crash  func()
	expire func()
}

type roleEvent struct {
	id    string
	role  coordinator.Role
	token int64
}

// node is one member of the cluster test: its handle, its scheduler, and a
// small role loop standing in for the controller (campaign, tell the
// scheduler, wait for the end of the term, tell the scheduler).
type node struct {
	id    string
	m     member
	sched *schedule.Scheduler
	stop  func() // stops the scheduler and the role loop

	mu     sync.Mutex
	lead   coordinator.Leadership
	rejoin chan struct{} // set by resign: campaign again only once closed
}

// resign hands the leadership over; the node campaigns again only after
// e.handover has seen another member promoted, so that it cannot win its
// own handover.
func (n *node) resign(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	l := n.lead
	n.rejoin = make(chan struct{})
	n.mu.Unlock()
	if l == nil {
		t.Fatalf("%s: resign: not leading", n.id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := l.Resign(ctx); err != nil {
		t.Fatalf("%s: resign: %v", n.id, err)
	}
}

type clusterRun struct {
	member string
	slot   time.Time
}

type clusterEnv struct {
	t       *testing.T
	clk     *clock.Fake
	join    func(t *testing.T, id string) member
	events  chan roleEvent
	runs    chan clusterRun
	block   map[time.Time]bool // slots whose runs last until cancelled
	claims  *attemptLog
	nodes   map[string]*node
	running int // schedulers running, one timer each
}

func (e *clusterEnv) start(id string) *node {
	t := e.t
	t.Helper()
	m := e.join(t, id)
	n := &node{id: id, m: m}
	job := func(ctx context.Context) error {
		ri, _ := schedule.RunInfoFrom(ctx)
		e.runs <- clusterRun{id, ri.Slot}
		if e.block[ri.Slot] {
			<-ctx.Done()
			return context.Cause(ctx)
		}
		return nil
	}
	s, err := schedule.New(schedule.Config{
		Jobs:     []schedule.Job{{Name: "backup", Schedule: "* * * * *", Role: schedule.RoleMaster, Func: job}},
		Clock:    e.clk,
		Claimer:  recording(m.claim, id, e.claims),
		MemberID: id,
		Logger:   newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.sched = s
	s.RoleChanged(coordinator.RoleSlave, 0)
	stopSched := start(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			l, err := m.c.Campaign(ctx)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.lead = l
			n.mu.Unlock()
			s.RoleChanged(coordinator.RoleMaster, l.Token())
			e.events <- roleEvent{id, coordinator.RoleMaster, l.Token()}
			select {
			case <-l.Done():
			case <-ctx.Done():
				return
			}
			n.mu.Lock()
			n.lead = nil
			rejoin := n.rejoin
			n.mu.Unlock()
			s.RoleChanged(coordinator.RoleSlave, 0)
			e.events <- roleEvent{id, coordinator.RoleSlave, 0}
			if rejoin != nil {
				select {
				case <-rejoin:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			stopSched()
			cancel()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(wait):
				t.Errorf("%s: role loop did not end", id)
			}
			e.running--
		})
	}
	t.Cleanup(n.stop)
	e.nodes[id] = n
	e.running++
	return n
}

// handover waits until old has been demoted (unless it crashed, and so
// reports nothing) and another member promoted, and returns the new master.
func (e *clusterEnv) handover(old string, crashed bool) string {
	e.t.Helper()
	demoted, promoted := old == "" || crashed, ""
	for !demoted || promoted == "" {
		ev := recv(e.t, e.events, fmt.Sprintf("role change after %s", old))
		switch {
		case ev.id == old && ev.role == coordinator.RoleSlave:
			demoted = true
		case ev.id != old && ev.role == coordinator.RoleMaster:
			promoted = ev.id
		default:
			e.t.Fatalf("unexpected role change %+v while waiting for the handover from %s", ev, old)
		}
	}
	if n := e.nodes[old]; n != nil {
		n.mu.Lock()
		if n.rejoin != nil {
			close(n.rejoin)
			n.rejoin = nil
		}
		n.mu.Unlock()
	}
	// The new master tries to catch up the latest slot within the missed
	// window; wait until it has, so that its attempt does not overlap the
	// next slot.
	now := e.clk.Now()
	latest := now.Truncate(time.Minute)
	if old != "" && now.Sub(latest) <= schedule.DefaultMissedWindow {
		e.claims.waitAttempt(e.t, fmt.Sprintf("%s backup %s", promoted, latest.Format(time.RFC3339Nano)))
	}
	waitIdle(e.t, e.nodes[promoted].sched, "backup")
	return promoted
}

// slotRun sets the clock to slot and waits for the run of master.
func (e *clusterEnv) slotRun(slot time.Time, master string) {
	e.t.Helper()
	e.clk.Set(slot)
	r := recv(e.t, e.runs, fmt.Sprintf("run of %v", slot))
	if r.member != master || !r.slot.Equal(slot) {
		e.t.Fatalf("run: got %+v; want %s running slot %v", r, master, slot)
	}
	e.settle()
}

// settle waits until every scheduler has handled the clock's last move.
func (e *clusterEnv) settle() {
	e.t.Helper()
	waitTimers(e.t, e.clk, e.running)
	for _, n := range e.nodes {
		if !e.block[n.sched.Status()["backup"].Slot] {
			waitIdle(e.t, n.sched, "backup")
		}
	}
}

// runClusterScenario drives three members (a fourth joins later) through
// handovers and crashes placed around slot times, and checks that every
// slot of the master-only job ran exactly once.
func runClusterScenario(t *testing.T, join func(t *testing.T, id string) member) {
	slot := func(k int) time.Time { return t0.Add(time.Duration(k) * time.Minute) }
	e := &clusterEnv{
		t:      t,
		clk:    clock.NewFake(t0.Add(10 * time.Second)),
		join:   join,
		events: make(chan roleEvent, 100),
		runs:   make(chan clusterRun, 100),
		block:  map[time.Time]bool{slot(4): true},
		claims: &attemptLog{},
		nodes:  map[string]*node{},
	}
	t.Log("0: the first master does not catch up the slot 10s before it started")
	e.start("a")
	m := e.handover("", false)
	e.start("b")
	e.start("c")
	e.settle()

	t.Log("1: a slot on a steady master")
	e.slotRun(slot(1), m)

	t.Log("2: graceful handover one second before a slot")
	e.clk.Set(slot(2).Add(-time.Second))
	e.settle()
	e.nodes[m].resign(t)
	m = e.handover(m, false)
	e.slotRun(slot(2), m)

	t.Log("3: graceful handover five seconds after a slot that ran")
	e.slotRun(slot(3), m)
	e.clk.Set(slot(3).Add(5 * time.Second))
	e.settle()
	e.nodes[m].resign(t)
	m = e.handover(m, false)
	e.claims.waitAttempt(t, fmt.Sprintf("%s backup %s false", m, slot(3).Format(time.RFC3339Nano)))

	t.Log("4: the master crashes during a run")
	e.clk.Set(slot(4))
	r := recv(t, e.runs, "run of slot 4")
	if r.member != m || !r.slot.Equal(slot(4)) {
		t.Fatalf("run: got %+v; want %s running slot %v", r, m, slot(4))
	}
	e.settle()
	crashed := e.nodes[m]
	crashed.stop()
	crashed.m.crash()
	delete(e.nodes, m)
	e.clk.Set(slot(4).Add(20 * time.Second))
	e.settle()
	if crashed.m.expire != nil {
		crashed.m.expire()
	}
	m = e.handover(m, true)
	e.claims.waitAttempt(t, fmt.Sprintf("%s backup %s false", m, slot(4).Format(time.RFC3339Nano)))

	t.Log("5: the master crashes before a slot; the next one takes over after it")
	e.clk.Set(slot(5).Add(-5 * time.Second))
	e.settle()
	crashed = e.nodes[m]
	crashed.stop()
	crashed.m.crash()
	delete(e.nodes, m)
	e.clk.Set(slot(5))
	e.settle()
	e.clk.Set(slot(5).Add(30 * time.Second))
	e.settle()
	if crashed.m.expire != nil {
		crashed.m.expire()
	}
	m = e.handover(m, true)
	r = recv(t, e.runs, "run of slot 5")
	if r.member != m || !r.slot.Equal(slot(5)) {
		t.Fatalf("run: got %+v; want %s catching up slot %v", r, m, slot(5))
	}
	e.settle()

	t.Log("6: a new member joins; the master runs the slot")
	e.start("d")
	e.settle()
	e.slotRun(slot(6), m)

	t.Log("7: handover to the newcomer just before a slot")
	e.clk.Set(slot(7).Add(-time.Second))
	e.settle()
	e.nodes[m].resign(t)
	m = e.handover(m, false)
	if m != "d" {
		t.Fatalf("new master: got %s; want d, the only other member", m)
	}
	e.slotRun(slot(7), m)

	for _, n := range e.nodes {
		n.stop()
	}
	close(e.runs)
	count := map[time.Time]int{}
	for r := range e.runs {
		count[r.slot]++
	}
	for k := 0; k <= 7; k++ {
		if n := count[slot(k)]; n != 0 {
			t.Errorf("slot %d: got %d more runs; want none", k, n)
		}
	}
	for s, n := range count {
		t.Errorf("slot %v: got %d unexpected runs", s, n)
	}
}

var testCluster = coordinator.Cluster{Environment: "test", Service: "db"}

// TestClusterMemory runs the cluster scenario on the memory backend. Its
// store has a fake clock of its own, moved past the TTL to expire a crashed
// member's lease; the schedulers share another.
func TestClusterMemory(t *testing.T) {
	storeClk := clock.NewFake(t0)
	store := memory.NewStore(memory.WithClock(storeClk))
	runClusterScenario(t, func(t *testing.T, id string) member {
		c, err := memory.New(store, memory.Config{Cluster: testCluster, ID: id, Logger: newLogSink().logger()})
		if err != nil {
			t.Fatalf("memory.New(%s): %v", id, err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Register(context.Background(), coordinator.Member{State: coordinator.StateRunning}); err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
		return member{c: c, claim: c, crash: func() { memorytest.Crash(c) }, expire: func() { storeClk.Advance(memory.DefaultTTL + time.Second) }}
	})
}

// TestClusterEtcd runs the cluster scenario on an embedded etcd, each
// member reaching it through a proxy that a crash cuts.
func TestClusterEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	e := etcdtest.Start(t)
	runClusterScenario(t, func(t *testing.T, id string) member {
		p := etcdtest.NewProxy(t, e.Endpoint(0))
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c, err := etcd.New(ctx, etcd.Config{
			Endpoints: []string{p.Endpoint()}, Cluster: testCluster, ID: id,
			TTL: 4 * time.Second, DialTimeout: 2 * time.Second, Logger: newLogSink().logger(),
		})
		if err != nil {
			t.Fatalf("etcd.New(%s): %v", id, err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Register(ctx, coordinator.Member{State: coordinator.StateRunning}); err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
		return member{c: c, claim: c, crash: p.Cut}
	})
}
