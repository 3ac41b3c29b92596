package lifecycle_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/backends/memory/memorytest"
	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/lifecycle"
)

// pidService is a service that writes its pid to path (one line per start)
// and sleeps.
func pidService(path string) []string {
	return []string{"/bin/sh", "-c", `echo $$ >> '` + path + `'; exec sleep 600`}
}

// pids reads the pids a pidService wrote, one per start.
func pids(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid file %s: %v", path, err)
		}
		out = append(out, n)
	}
	return out
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// stamps records when Go hooks ran, on the monotonic clock.
type stamps struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newStamps() *stamps { return &stamps{at: map[string]time.Time{}} }

// hook returns a hook that records the first time it runs, under key.
func (s *stamps) hook(key string, also func()) lifecycle.Hook {
	return lifecycle.HookFunc(func(context.Context, lifecycle.HookEvent) error {
		s.mu.Lock()
		if _, ok := s.at[key]; !ok {
			s.at[key] = time.Now()
		}
		s.mu.Unlock()
		if also != nil {
			also()
		}
		return nil
	})
}

func (s *stamps) get(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[key]
	return t, ok
}

// TestSlaveRidesThroughOutage: a slave cut off from the backend for longer
// than the TTL loses its session, keeps its service running untouched,
// runs no hook, opens a new session once it can reach the backend again and
// is a registered slave again.
func TestSlaveRidesThroughOutage(t *testing.T) {
	h := newHarness(t)
	a := h.run("a")
	a.waitLines(t, 2)
	pidfile := h.dir + "/b.pids"
	b := h.start(h.newMember("b", func(c *lifecycle.Config) { c.Service.Argv = pidService(pidfile) }))
	b.waitLines(t, 3) // start, started_as_slave, became_active (no ports: active once started)
	waitFor(t, "b's service", func() bool { return len(pids(t, pidfile)) == 1 })
	a.waitLines(t, 3)
	old := b.ctl.Coordinator()
	memorytest.Partition(b.coord, true)
	waitFor(t, "b's session to end", func() bool {
		h.clk.Advance(100 * time.Millisecond)
		return b.coord.Err() != nil
	})
	waitFor(t, "b's lease to expire (a's members_removed)", func() bool {
		h.clk.Advance(100 * time.Millisecond)
		return len(a.lines(t)) >= 4
	})
	memorytest.Partition(b.coord, false)
	waitFor(t, "b to rejoin", func() bool {
		h.clk.Advance(100 * time.Millisecond)
		n := b.ctl.Coordinator()
		return n != old && n.Err() == nil
	})
	a.waitLines(t, 5) // members_added: b is back
	if b.exited() {
		t.Fatalf("b exited (%d, %v); want it to ride through", b.code, b.err)
	}
	if got := pids(t, pidfile); len(got) != 1 || !alive(got[0]) {
		t.Errorf("b's service: got pids %v (first alive: %v); want one start, still running", got, len(got) > 0 && alive(got[0]))
	}
	if got := strs(b.lines(t)); len(got) != 3 {
		t.Errorf("b's hooks: got %q; want only start, started_as_slave and became_active", got)
	}
	if st := b.ctl.Status(); st.Role != coordinator.RoleSlave || st.Master != "a" {
		t.Errorf("b's status: role %s, master %q; want slave of a", st.Role, st.Master)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ms, err := a.ctl.Members(ctx, lifecycle.MemberFilter{})
	if err != nil || len(ms) != 2 {
		t.Errorf("members seen by a: got %v, %v; want a and b", ms, err)
	}
	b.stop(t)
	a.stop(t)
}

// etcdMember opens a controller's member on a real etcd at endpoints, on
// the real clock (the demotion's deadline is measured against etcd's).
func etcdMember(t *testing.T, h *harness, service, id string, ttl time.Duration, endpoints []string, edit func(*lifecycle.Config)) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	co, err := etcd.New(ctx, etcd.Config{
		Endpoints: endpoints,
		Cluster:   coordinator.Cluster{Environment: "test", Service: service},
		ID:        id,
		TTL:       ttl,
		Logger:    discardLogger(),
	})
	if err != nil {
		t.Fatalf("etcd.New(%s): %v", id, err)
	}
	m := h.newMemberOn(co, func(c *lifecycle.Config) {
		c.Clock = clock.Real()
		if edit != nil {
			edit(c)
		}
	})
	t.Cleanup(func() { m.ctl.Coordinator().Close() })
	return h.start(m)
}

// masters returns the members that are master now.
func masters(ms []*member) []*member {
	var out []*member
	for _, m := range ms {
		if m.ctl.Status().Role == coordinator.RoleMaster {
			out = append(out, m)
		}
	}
	return out
}

// threeMembers starts a, then b, then c, each with a pidService, and waits
// until each has seen the others.
func threeMembers(t *testing.T, h *harness, service string, ttl time.Duration, endpoints []string, edit func(id string, c *lifecycle.Config)) []*member {
	t.Helper()
	var ms []*member
	for i, id := range []string{"a", "b", "c"} {
		m := etcdMember(t, h, service, id, ttl, endpoints, func(c *lifecycle.Config) {
			c.Service.Argv = pidService(h.dir + "/" + id + ".pids")
			if edit != nil {
				edit(id, c)
			}
		})
		m.waitLines(t, 3) // start, started_as_<role>, became_active (no ports)
		ms = append(ms, m)
		for j, o := range ms[:i] {
			o.waitLines(t, 3+i-j) // members_added for each later member
		}
	}
	for _, m := range ms {
		waitFor(t, "the service of "+m.id, func() bool { return len(pids(t, h.dir+"/"+m.id+".pids")) == 1 })
	}
	return ms
}

// TestEtcdShortOutage: three members at TTL 10 s; etcd is SIGKILLed and
// serves again about 6 s later. No session is lost: no member exits, no
// role changes, no hook runs, no service restarts.
func TestEtcdShortOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts etcd; about 20 s")
	}
	const ttl = 10 * time.Second
	srv := etcdtest.StartBinary(t)
	h := newHarness(t)
	ms := threeMembers(t, h, "short", ttl, srv.Endpoints(), nil)
	sessions := map[string]coordinator.Coordinator{}
	lines := map[string]int{}
	roles := map[string]coordinator.Role{}
	for _, m := range ms {
		sessions[m.id] = m.ctl.Coordinator()
		lines[m.id] = len(m.lines(t))
		roles[m.id] = m.ctl.Status().Role
	}
	down := time.Now()
	srv.Kill(0)
	time.Sleep(4500 * time.Millisecond) // etcd 3.4 then takes about 1.5 s to serve again
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Restart(ctx, 0); err != nil {
		t.Fatalf("restart etcd: %v", err)
	}
	outage := time.Since(down)
	t.Logf("etcd killed and serving again %v later (ttl %v)", outage.Round(time.Millisecond), ttl)
	// Every session renewed after etcd came back; then nothing changed.
	for _, m := range ms {
		lr := sessions[m.id].(coordinator.LeaseReporter)
		waitFor(t, "a renewal of "+m.id, func() bool { return lr.LeaseRemaining() > ttl/2 || sessions[m.id].Err() != nil })
	}
	time.Sleep(time.Second) // a window for hooks that must not run
	for _, m := range ms {
		if m.exited() {
			t.Errorf("%s exited (%d, %v); want it running", m.id, m.code, m.err)
		}
		if err := sessions[m.id].Err(); err != nil || m.ctl.Coordinator() != sessions[m.id] {
			t.Errorf("%s: session ended (%v) over an outage of %v; want it kept", m.id, err, outage)
		}
		if got := m.lines(t); len(got) != lines[m.id] {
			t.Errorf("%s: hooks ran during the outage: %q", m.id, strs(got[lines[m.id]:]))
		}
		if r := m.ctl.Status().Role; r != roles[m.id] {
			t.Errorf("%s: role %s after the outage; want %s", m.id, r, roles[m.id])
		}
		if p := pids(t, h.dir+"/"+m.id+".pids"); len(p) != 1 || !alive(p[0]) {
			t.Errorf("%s: service pids %v; want one, alive", m.id, p)
		}
	}
}

// TestEtcdLongOutage: three members at TTL 3 s; etcd is SIGKILLed and
// kept down for 3 x TTL. No ccctl exits; the slaves' services keep their
// pids; the master's demotion starts before its lease can expire; once
// etcd serves again there is exactly one master within TTL + 1 s, with a
// greater token.
func TestEtcdLongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts etcd; about 20 s")
	}
	const ttl = 3 * time.Second
	srv := etcdtest.StartBinary(t)
	h := newHarness(t)
	st := newStamps()
	var expiresLeft sync.Map // id -> the time left before the lease could expire, when the demotion started
	ms := threeMembers(t, h, "long", ttl, srv.Endpoints(), func(id string, c *lifecycle.Config) {
		er := c.Coordinator.(coordinator.ExpiryReporter) // the session of the term before the outage
		c.Hooks[lifecycle.HookTransitionMasterToSlave] = append([]lifecycle.Hook{st.hook("demote-"+id, func() {
			expiresLeft.LoadOrStore(id, er.LeaseExpiresIn())
		})}, c.Hooks[lifecycle.HookTransitionMasterToSlave]...)
	})
	master := masters(ms)
	if len(master) != 1 {
		t.Fatalf("masters before the outage: %d; want 1", len(master))
	}
	oldToken := master[0].ctl.Status().Token
	srv.Kill(0)
	time.Sleep(3 * ttl)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Restart(ctx, 0); err != nil {
		t.Fatalf("restart etcd: %v", err)
	}
	back := time.Now()
	if _, ok := st.get("demote-" + master[0].id); !ok {
		t.Errorf("master %s did not demote during the outage", master[0].id)
	} else if left, _ := expiresLeft.Load(master[0].id); left.(time.Duration) <= 0 {
		t.Errorf("master %s's demotion started %v after its lease could expire; want before", master[0].id, -left.(time.Duration))
	} else {
		t.Logf("master %s's demotion started %v before its lease could expire", master[0].id, left.(time.Duration).Round(time.Millisecond))
	}
	var one time.Duration
	waitFor(t, "one master", func() bool {
		n := len(masters(ms))
		if n > 1 {
			t.Fatalf("%d masters at once", n)
		}
		one = time.Since(back)
		return n == 1
	})
	t.Logf("one master %v after etcd served again", one.Round(time.Millisecond))
	if one > ttl+time.Second {
		t.Errorf("one master %v after etcd served again; want within ttl + 1s = %v", one, ttl+time.Second)
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if n := len(masters(ms)); n > 1 {
			t.Fatalf("%d masters at once after the outage", n)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a bounded watch for two masters
	}
	newMaster := masters(ms)[0]
	if tok := newMaster.ctl.Status().Token; tok <= oldToken {
		t.Errorf("token of the new term: got %d; want more than %d", tok, oldToken)
	}
	for _, m := range ms {
		if m.exited() {
			t.Errorf("%s exited (%d, %v); want it running", m.id, m.code, m.err)
		}
		if m == master[0] {
			continue
		}
		if p := pids(t, h.dir+"/"+m.id+".pids"); len(p) != 1 || !alive(p[0]) {
			t.Errorf("slave %s: service pids %v; want one, alive (untouched)", m.id, p)
		}
	}
}

// cutOffMaster starts master a through a proxy and slave b directly, both
// at TTL 3 s, with edit applied to a; b stamps its promotion.
func cutOffMaster(t *testing.T, service string, st *stamps, edit func(*harness, *lifecycle.Config)) (h *harness, a, b *member, p *etcdtest.Proxy) {
	t.Helper()
	srv := etcdtest.Start(t)
	p = etcdtest.NewProxy(t, srv.Endpoint(0))
	h = newHarness(t)
	a = etcdMember(t, h, service, "a", 3*time.Second, []string{p.Endpoint()}, func(c *lifecycle.Config) { edit(h, c) })
	a.waitLines(t, 2)
	b = etcdMember(t, h, service, "b", 3*time.Second, srv.Endpoints(), func(c *lifecycle.Config) {
		c.Hooks[lifecycle.HookTransitionSlaveToMaster] = append([]lifecycle.Hook{st.hook("promote-b", nil)}, c.Hooks[lifecycle.HookTransitionSlaveToMaster]...)
	})
	b.waitLines(t, 2)
	return h, a, b, p
}

// TestEtcdHookStoppedOnLoss: a master in the middle of a members_added hook
// that sleeps 120 s is cut off from etcd: the hook is stopped and the
// demotion starts before another member is promoted. (The hook execs its
// sleep: a grandchild killed with its group would be a zombie until the
// reaper of the test process's system reaps it, which ccctl as PID 1 or
// subreaper does at once.)
func TestEtcdHookStoppedOnLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a lease to expire")
	}
	st := newStamps()
	_, a, b, p := cutOffMaster(t, "hook", st, func(h *harness, c *lifecycle.Config) {
		c.Hooks[lifecycle.HookMembersAdded] = []lifecycle.Hook{lifecycle.Shell(`touch '` + h.dir + `/added'; exec sleep 120`)}
		c.Hooks[lifecycle.HookTransitionMasterToSlave] = append([]lifecycle.Hook{st.hook("demote-a", nil)}, c.Hooks[lifecycle.HookTransitionMasterToSlave]...)
	})
	waitFile(t, a.log[:strings.LastIndex(a.log, "/")]+"/added")
	cut := time.Now()
	p.Cut()
	waitFor(t, "b to be promoted", func() bool { _, ok := st.get("promote-b"); return ok })
	dem, ok := st.get("demote-a")
	prom, _ := st.get("promote-b")
	if !ok || !dem.Before(prom) {
		t.Fatalf("a's demotion (ran %v, %v after the cut) not before b's promotion (%v after the cut)", ok, dem.Sub(cut), prom.Sub(cut))
	}
	t.Logf("cut at 0: a's demotion started at %v, b promoted at %v", dem.Sub(cut).Round(time.Millisecond), prom.Sub(cut).Round(time.Millisecond))
	p.Heal()
	waitFor(t, "a to rejoin", func() bool {
		return a.ctl.Coordinator().Err() == nil && a.ctl.Status().Master == "b"
	})
	if a.exited() {
		t.Errorf("a exited (%d, %v); want it to rejoin as slave", a.code, a.err)
	}
	a.stop(t)
	b.stop(t)
}

// TestEtcdDemotionHardDeadline: a master whose transition_master_to_slave
// hook never returns is cut off from etcd: its service is SIGKILLed before
// another member is promoted, and started again as slave.
func TestEtcdDemotionHardDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a lease to expire")
	}
	st := newStamps()
	var pidfile string
	_, a, b, p := cutOffMaster(t, "deadline", st, func(h *harness, c *lifecycle.Config) {
		pidfile = h.dir + "/a.pids"
		c.Service.Argv = pidService(pidfile)
		c.Hooks[lifecycle.HookTransitionMasterToSlave] = []lifecycle.Hook{lifecycle.Shell(`sleep 1000`)}
	})
	waitFor(t, "a's service", func() bool { return len(pids(t, pidfile)) == 1 })
	pid := pids(t, pidfile)[0]
	died := make(chan time.Time, 1)
	go func() {
		deadline := time.Now().Add(waitTimeout)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond) // polling interval: the death is seen at most this late
		}
		died <- time.Now()
	}()
	cut := time.Now()
	p.Cut()
	waitFor(t, "b to be promoted", func() bool { _, ok := st.get("promote-b"); return ok })
	prom, _ := st.get("promote-b")
	var death time.Time
	select {
	case death = <-died:
	case <-time.After(waitTimeout):
		t.Fatal("a's service still alive")
	}
	if !death.Before(prom) {
		t.Fatalf("a's service died %v after the cut, b promoted %v after it; want the death first", death.Sub(cut), prom.Sub(cut))
	}
	t.Logf("cut at 0: a's service dead by %v, b promoted at %v", death.Sub(cut).Round(time.Millisecond), prom.Sub(cut).Round(time.Millisecond))
	waitFor(t, "a's service started again as slave", func() bool { return len(pids(t, pidfile)) == 2 })
	if a.exited() {
		t.Errorf("a exited (%d, %v); want it running as slave", a.code, a.err)
	}
	p.Heal()
	a.stop(t)
	b.stop(t)
}

// TestSessionEndedBeforeFirstRegister: a session that ended before the
// controller registered (it may have waited out an earlier process's
// record of its id meanwhile) is replaced, as after an outage: no exit 3.
func TestSessionEndedBeforeFirstRegister(t *testing.T) {
	h := newHarness(t)
	a := h.run("a")
	a.waitLines(t, 2)
	b := h.newMember("b", nil)
	old := b.coord
	memorytest.Partition(old, true)
	waitFor(t, "b's first session to end", func() bool {
		h.clk.Advance(100 * time.Millisecond)
		return old.Err() != nil
	})
	memorytest.Partition(old, false)
	h.start(b)
	waitFor(t, "b to rejoin and run as slave", func() bool {
		h.clk.Advance(100 * time.Millisecond)
		n := b.ctl.Coordinator()
		return n != coordinator.Coordinator(old) && n.Err() == nil && b.ctl.Status().Role == coordinator.RoleSlave
	})
	if b.exited() {
		t.Fatalf("b exited (%d, %v); want it to open a new session", b.code, b.err)
	}
	if got := strs(b.waitLines(t, 2)); !strings.HasPrefix(got[0], "start ") || !strings.HasPrefix(got[1], "started_as_slave ") {
		t.Errorf("b's hooks: %q; want start, then started_as_slave", got)
	}
}
