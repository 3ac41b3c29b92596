//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// startTimeout bounds how long replicas take to start their services.
const startTimeout = 60 * time.Second

// checkInitBeforeService asserts drill 1's promise on a timeline: exactly one
// member ran started_as_master, the others started_as_slave, each exactly
// once and before its service started. It returns the master.
func checkInitBeforeService(t *testing.T, ms []mark, members []string) string {
	t.Helper()
	masters := filter(ms, "", evStartedMaster)
	slaves := filter(ms, "", evStartedSlave)
	if len(masters) != 1 || len(slaves) != len(members)-1 {
		t.Fatalf("got %d started_as_master and %d started_as_slave; want 1 and %d; timeline:\n%s", len(masters), len(slaves), len(members)-1, formatMarks(ms))
	}
	if masters[0].Token <= 0 {
		t.Errorf("started_as_master got fencing token %d; want > 0", masters[0].Token)
	}
	for _, m := range members {
		inits := filter(ms, m, evStartedMaster, evStartedSlave)
		svc := filter(ms, m, evServiceStarted)
		if len(inits) != 1 || len(svc) != 1 {
			t.Errorf("%s: got %d init hooks and %d service starts; want 1 and 1", m, len(inits), len(svc))
			continue
		}
		if !inits[0].At.Before(svc[0].At) {
			t.Errorf("%s: %s at %s, service started at %s; want the hook first", m, inits[0].Event, inits[0].At.Format("15:04:05.000000"), svc[0].At.Format("15:04:05.000000"))
		}
		if st := filter(ms, m, evStart); len(st) > 0 && st[0].At.After(inits[0].At) {
			t.Errorf("%s: start hook at %s after %s; want it first", m, st[0].At.Format("15:04:05.000000"), inits[0].Event)
		}
	}
	return masters[0].Member
}

// TestDrill1StartTogether: three replicas started at once (three docker
// start commands at the same time), once in -short mode and five times
// otherwise.
func TestDrill1StartTogether(t *testing.T) {
	rounds := 5
	if testing.Short() {
		rounds = 1
	}
	for i := 1; i <= rounds; i++ {
		t.Run(fmt.Sprintf("round%d", i), func(t *testing.T) {
			d := newDrill(t, fmt.Sprintf("together%d", i), "r1", "r2", "r3")
			d.create(ttl)
			t0 := time.Now()
			d.startConcurrently(d.members...)
			ms := d.waitStarted(1, startTimeout, d.members...)
			master := checkInitBeforeService(t, ms, d.members)
			last := filter(ms, "", evServiceStarted)
			spread := time.Duration(0)
			if st := filter(ms, "", evStart); len(st) > 0 {
				spread = st[len(st)-1].At.Sub(st[0].At)
			}
			t.Logf("drill 1 (together): start hooks within %v; %s is master; all 3 services started %v after docker start", spread.Round(time.Millisecond), master, last[len(last)-1].At.Sub(t0).Round(time.Millisecond))
		})
	}
}

// TestDrill1StartStaggered: replicas started one after the other, each once
// the previous one's service runs: the first one is master.
func TestDrill1StartStaggered(t *testing.T) {
	d := newDrill(t, "staggered", "r1", "r2", "r3")
	d.create(ttl)
	order := []string{"r3", "r1", "r2"}
	for _, m := range order {
		d.start(m)
		d.waitStarted(1, startTimeout, m)
	}
	ms := d.marks()
	master := checkInitBeforeService(t, ms, d.members)
	if master != order[0] {
		t.Errorf("master: got %s; want %s, the first started", master, order[0])
	}
	t.Logf("drill 1 (staggered %v): %s is master", order, master)
}

// startedCluster starts the drill's replicas together and returns the
// master and its token once every service runs.
func startedCluster(t *testing.T, d *drill, ttl time.Duration) (string, int64) {
	t.Helper()
	d.create(ttl)
	d.start()
	ms := d.waitStarted(1, startTimeout, d.members...)
	checkInitBeforeService(t, ms, d.members)
	master, token := currentMaster(ms)
	// The master's service has written with its token: it acts as master.
	d.waitFor("the master's first accepted write", 10*time.Second, func(ms []mark) bool {
		return len(filter(ms, master, evWriteOK)) > 0
	})
	return master, token
}

// waitPromotion waits for a transition_slave_to_master after t0 and returns
// it with the timeline.
func waitPromotion(d *drill, t0 time.Time, timeout time.Duration) (mark, []mark) {
	d.t.Helper()
	ms := d.waitFor("a slave's transition_slave_to_master", timeout, func(ms []mark) bool {
		return len(filter(after(ms, t0), "", evSlaveToMaster)) > 0
	})
	return filter(after(ms, t0), "", evSlaveToMaster)[0], ms
}

// checkPromotion asserts that p is a promotion of another member than the
// old master, with a greater token, and that the new master's writes are
// accepted; it returns the timeline.
func checkPromotion(t *testing.T, d *drill, p mark, oldMaster string, oldToken int64) []mark {
	t.Helper()
	if p.Member == oldMaster {
		t.Errorf("promoted: got %s, the old master; want another member", p.Member)
	}
	if p.Token <= oldToken {
		t.Errorf("new master's token: got %d; want > %d, the old master's", p.Token, oldToken)
	}
	ms := d.waitFor("the new master's first accepted write", 10*time.Second, func(ms []mark) bool {
		return len(filter(ms, p.Member, evWriteOK)) > 0
	})
	if n := len(filter(ms, "", evSlaveToMaster)); n != 1 {
		t.Errorf("got %d transition_slave_to_master; want 1:\n%s", n, formatMarks(ms))
	}
	return ms
}

// TestDrill2StopMaster: docker stop of the master; a slave's
// transition_slave_to_master begins within 1 s.
func TestDrill2StopMaster(t *testing.T) {
	d := newDrill(t, "stop", "r1", "r2", "r3")
	master, token := startedCluster(t, d, ttl)
	t0 := time.Now()
	mustDocker(t, "stop", "-t", "10", d.container(master))
	p, ms := waitPromotion(d, t0, 10*time.Second)
	took := p.At.Sub(t0)
	exit := "no service_stopped mark"
	if st := filter(after(ms, t0), master, evServiceStopped); len(st) > 0 {
		exit = fmt.Sprintf("%v after the old service's exit", p.At.Sub(st[0].At).Round(time.Millisecond))
	}
	t.Logf("drill 2 (docker stop %s): %s's transition_slave_to_master began %v after docker stop (%s)", master, p.Member, took.Round(time.Millisecond), exit)
	if took > time.Second {
		t.Errorf("transition_slave_to_master began %v after docker stop; want within 1s", took)
	}
	ms = checkPromotion(t, d, p, master, token)
	if bad := overlappingMasters(ms); len(bad) > 0 {
		t.Errorf("two masters at once: %v", bad)
	}
}

// TestDrill3KillMaster: docker kill of the master; a slave takes over within
// TTL + 1 s.
func TestDrill3KillMaster(t *testing.T) {
	d := newDrill(t, "kill", "r1", "r2", "r3")
	master, token := startedCluster(t, d, ttl)
	t0 := time.Now()
	mustDocker(t, "kill", d.container(master))
	p, _ := waitPromotion(d, t0, ttl+15*time.Second)
	took := p.At.Sub(t0)
	t.Logf("drill 3 (docker kill %s, TTL %v): %s's transition_slave_to_master began %v after docker kill", master, ttl, p.Member, took.Round(time.Millisecond))
	if took > ttl+time.Second {
		t.Errorf("transition_slave_to_master began %v after docker kill; want within TTL+1s = %v", took, ttl+time.Second)
	}
	checkPromotion(t, d, p, master, token)
}

// demotion returns the first mark after t0 showing that member stopped
// acting as master: its transition_master_to_slave, the exit of its
// service (when the leadership-lost action restarts or exits, or the
// controller stops), or a new start of its service (the demotion's
// deadline passed and ccctl SIGKILLed the old service, which marks nothing,
// and the demotion hook with it; a master that wakes from docker pause
// finds that deadline passed already).
func demotion(ms []mark, member string, t0 time.Time) (mark, bool) {
	ds := filter(after(ms, t0), member, evMasterToSlave, evServiceStopped, evServiceStarted)
	if len(ds) == 0 {
		return mark{}, false
	}
	return ds[0], true
}

// TestDrill4NetworkCut: the master is cut off from etcd (docker network
// disconnect) for 3 x TTL: it demotes itself before any other member
// promotes, its container and service keep running (not restarted, though
// docker's restart policy would), and once connected again it rejoins as a
// slave and stays one.
func TestDrill4NetworkCut(t *testing.T) {
	d := newDrill(t, "cut", "r1", "r2", "r3")
	for _, m := range d.members {
		// Were its controller to exit, docker would start it again, as in
		// production: the drill asserts that it does not have to.
		d.extra[m] = []string{"--restart", "on-failure"}
	}
	master, token := startedCluster(t, d, ttl)
	before, pid := inspectRun(t, d.container(master)), servicePID(t, d.container(master))
	t0 := time.Now()
	d.cutOff(master, t0)
	ms := d.waitFor("the old master's demotion and a promotion", 15*time.Second, func(ms []mark) bool {
		_, demoted := demotion(ms, master, t0)
		return demoted && len(filter(after(ms, t0), "", evSlaveToMaster)) > 0
	})
	dm, _ := demotion(ms, master, t0)
	p := filter(after(ms, t0), "", evSlaveToMaster)[0]
	t.Logf("timeline after the cut:\n%s", formatMarks(filter(after(ms, t0), "", evMasterToSlave, evSlaveToMaster, evMasterChanged, evServiceStarted, evServiceStopped)))
	if dm.Event != evMasterToSlave {
		t.Errorf("old master's demotion: got %s; want %s (leadership_lost_action demote)", dm.Event, evMasterToSlave)
	}
	if !dm.At.Before(p.At) {
		t.Errorf("old master's %s at %s, %s promoted at %s; want the demotion first", dm.Event, dm.At.Format("15:04:05.000000"), p.Member, p.At.Format("15:04:05.000000"))
	}
	checkPromotion(t, d, p, master, token)

	// Healed, the old master rejoins as a slave, and stays one for at
	// least a TTL while the new master writes.
	back := d.reconnect(master)
	t2 := time.Now()
	ms = d.waitFor("the new master's writes for a TTL after the rejoin", ttl+10*time.Second, func(ms []mark) bool {
		w := filter(ms, p.Member, evWriteOK)
		return len(w) > 0 && w[len(w)-1].At.After(t2.Add(ttl))
	})
	if bad := filter(after(ms, t0), master, evStartedMaster, evSlaveToMaster); len(bad) > 0 {
		t.Errorf("old master after the rejoin: got %v; want it to stay a slave", bad)
	}
	if bad := filter(after(ms, p.At), "", evStartedMaster, evSlaveToMaster); len(bad) > 1 {
		t.Errorf("after the promotion: got %v; want no other term", bad)
	}
	if bad := overlappingMasters(ms); len(bad) > 0 {
		t.Errorf("two masters at once: %v", bad)
	}
	d.checkNotRestarted(master, before, pid)
	t.Logf("drill 4 (network cut of master %s for %v, TTL %v): %s %v after the cut; %s's transition_slave_to_master %v after the cut, %v after the demotion; rejoined as slave %v after the reconnect; service pid %s before the cut; %d session(s) re-opened",
		master, cutFor, ttl, dm.Event, dm.At.Sub(t0).Round(time.Millisecond), p.Member, p.At.Sub(t0).Round(time.Millisecond), p.At.Sub(dm.At).Round(time.Millisecond),
		back.Round(time.Millisecond), pid, logCount(t, d.container(master), logRejoined))
}

// TestDrill5PauseMaster: docker pause of the master until another member
// promotes, then unpause: it demotes on waking, and the store refuses its
// writes as stale by their fencing token.
func TestDrill5PauseMaster(t *testing.T) {
	d := newDrill(t, "pause", "r1", "r2", "r3")
	master, token := startedCluster(t, d, ttl)
	t0 := time.Now()
	mustDocker(t, "pause", d.container(master))
	t.Cleanup(func() { docker("unpause", d.container(master)) })
	p, _ := waitPromotion(d, t0, ttl+15*time.Second)
	checkPromotion(t, d, p, master, token)
	t1 := time.Now()
	mustDocker(t, "unpause", d.container(master))
	ms := d.waitFor("the old master's demotion after waking", 10*time.Second, func(ms []mark) bool {
		_, ok := demotion(ms, master, t1)
		return ok
	})
	dm, _ := demotion(ms, master, t1)
	stale := filter(after(ms, t1), master, evWriteStale)
	t.Logf("drill 5 (docker pause %s, TTL %v): %s promoted %v after the pause; the old master's %s %v after unpause; %d of its writes refused as stale (token %d < %d)",
		master, ttl, p.Member, p.At.Sub(t0).Round(time.Millisecond), dm.Event, dm.At.Sub(t1).Round(time.Millisecond), len(stale), token, p.Token)
	if took := dm.At.Sub(t1); took > 2*time.Second {
		t.Errorf("old master demoted %v after waking; want within 2s", took)
	}
	for _, w := range filter(after(ms, p.At), master, evWriteOK) {
		if w.Token < p.Token {
			t.Errorf("store accepted a write of the old master with token %d after the new master's %d", w.Token, p.Token)
		}
	}
	if bad := filter(after(ms, t1), master, evStartedMaster, evSlaveToMaster); len(bad) > 0 {
		t.Errorf("old master after waking: got %v; want it to stay a slave", bad)
	}
}

// TestDrill6RollingRestart: docker restart of every replica in turn; never
// two masters.
func TestDrill6RollingRestart(t *testing.T) {
	d := newDrill(t, "rolling", "r1", "r2", "r3")
	startedCluster(t, d, ttl)
	for _, m := range d.members {
		t0 := time.Now()
		mustDocker(t, "restart", "-t", "10", d.container(m))
		ms := d.waitStarted(2, startTimeout, m)
		if p := filter(after(ms, t0), "", evSlaveToMaster); len(p) > 0 {
			t.Logf("drill 6: restart of %s: %s promoted %v after docker restart", m, p[0].Member, p[0].At.Sub(t0).Round(time.Millisecond))
		} else {
			t.Logf("drill 6: restart of %s (a slave): no role change", m)
		}
	}
	ms := d.waitFor("a master with an accepted write after the restarts", 10*time.Second, func(ms []mark) bool {
		m, _ := currentMaster(ms)
		return m != "" && len(filter(ms, m, evWriteOK)) > 0
	})
	if bad := overlappingMasters(ms); len(bad) > 0 {
		t.Errorf("two masters at once: %v\n%s", bad, formatMarks(ms))
	}
	for _, m := range d.members {
		if n := len(filter(ms, m, evServiceStarted)); n != 2 {
			t.Errorf("%s: service started %d times; want 2", m, n)
		}
	}
}

// TestDrill7EtcdMemberDown: the etcd raft leader is stopped for twice the
// TTL, then started again: no member changes role.
func TestDrill7EtcdMemberDown(t *testing.T) {
	const ttl7 = 6 * time.Second
	d := newDrill(t, "etcddown", "r1", "r2", "r3")
	startedCluster(t, d, ttl7)
	leader, err := etcdLeader(d.env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		docker("start", leader)
		if err := d.env.waitEtcdHealthy(60 * time.Second); err != nil {
			t.Errorf("etcd after the drill: %v", err)
		}
	})
	roleChanges := []string{evStartedMaster, evStartedSlave, evSlaveToMaster, evMasterToSlave, evMasterChanged, evStopping, evServiceStopped}
	t0 := time.Now()
	mustDocker(t, "stop", "-t", "5", leader)
	stopped := time.Since(t0)
	// Observe for twice the TTL, failing at the first role change.
	window := time.Now().Add(2 * ttl7)
	for time.Now().Before(window) {
		if ch := filter(after(d.marks(), t0), "", roleChanges...); len(ch) > 0 {
			t.Fatalf("with etcd leader %s down: got role changes; want none:\n%s", leader, formatMarks(ch))
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	mustDocker(t, "start", leader)
	if err := d.env.waitEtcdHealthy(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	ms := d.waitFor("the master's writes going on", 10*time.Second, func(ms []mark) bool {
		w := filter(ms, "", evWriteOK)
		return len(w) > 0 && w[len(w)-1].At.After(t1)
	})
	if ch := filter(after(ms, t0), "", roleChanges...); len(ch) > 0 {
		t.Errorf("with etcd leader %s down and back: got role changes; want none:\n%s", leader, formatMarks(ch))
	}
	t.Logf("drill 7 (etcd leader %s stopped in %v, down for %v, healthy again %v after its start, TTL %v): no role change",
		leader, stopped.Round(time.Millisecond), 2*ttl7, time.Since(t1).Round(time.Millisecond), ttl7)
}

// etcdLeader returns the container of the etcd cluster's raft leader.
func etcdLeader(e *env) (string, error) {
	out, err := e.etcdctl("endpoint", "status", "--cluster", "-w", "json")
	if err != nil {
		return "", err
	}
	var st []struct {
		Endpoint string
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Leader uint64 `json:"leader"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return "", fmt.Errorf("etcdctl endpoint status: %v: %s", err, out)
	}
	for _, s := range st {
		if s.Status.Header.MemberID == s.Status.Leader && s.Status.Leader != 0 {
			host := strings.TrimPrefix(s.Endpoint, "http://")
			host = strings.TrimSuffix(host, ":2379")
			return namePrefix + host, nil
		}
	}
	return "", fmt.Errorf("no leader in etcdctl endpoint status: %s", out)
}
