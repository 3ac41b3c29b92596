//go:build e2e

package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The log lines of ccctl that show a lost session and the new one.
const (
	logSessionLost = "session lost; reconnecting"
	logRejoined    = "rejoined with a new session"
)

// cutFor is how long the outage drills keep a member off the network: three
// TTLs, well past the point where its lease can expire on the server.
const cutFor = 3 * ttl

// containerRun is what docker inspect says of a container's current run.
type containerRun struct {
	StartedAt    string
	RestartCount int
	Running      bool
}

// inspectRun returns the start time, restart count and running state of a
// container.
func inspectRun(t *testing.T, container string) containerRun {
	t.Helper()
	out := mustDocker(t, "inspect", "--format", "{{.State.StartedAt}} {{.RestartCount}} {{.State.Running}}", container)
	f := strings.Fields(out)
	if len(f) != 3 {
		t.Fatalf("docker inspect %s: got %q; want start time, restart count and running state", container, out)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("docker inspect %s: restart count %q: %v", container, f[1], err)
	}
	return containerRun{StartedAt: f[0], RestartCount: n, Running: f[2] == "true"}
}

// servicePID returns the host pid of the demo service ("demo serve") in a
// container, as docker top shows it.
func servicePID(t *testing.T, container string) string {
	t.Helper()
	out := mustDocker(t, "top", container, "-eo", "pid,args")
	var pids []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == "demo" && f[2] == "serve" {
			pids = append(pids, f[0])
		}
	}
	if len(pids) != 1 {
		t.Fatalf("docker top %s: got service pids %v; want one \"demo serve\":\n%s", container, pids, out)
	}
	return pids[0]
}

// logCount returns how many lines of a container's log contain s.
func logCount(t *testing.T, container, s string) int {
	t.Helper()
	out, err := dockerLogsAll(container)
	if err != nil {
		t.Errorf("docker logs %s: %v", container, err)
	}
	return strings.Count(out, s)
}

// dockerLogsAll returns a container's whole output, stdout and stderr.
func dockerLogsAll(container string) (string, error) {
	return dockerLogs(container, 1<<20)
}

// waitLog polls a container's log until s appears in it n times.
func waitLog(t *testing.T, container, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := dockerLogsAll(container)
		if err == nil && strings.Count(out, s) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not logged %d time(s) within %v (err %v); last lines:\n%s", container, s, n, timeout, err, lastLines(out, 15))
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// memberRecord is the part of a member's record in etcd the drills read.
type memberRecord struct {
	ID    string `json:"id"`
	Role  string `json:"role"`
	State string `json:"state"`
}

// waitRecord polls the member's record in etcd until ok holds for it.
func (d *drill) waitRecord(member, what string, timeout time.Duration, ok func(memberRecord) bool) memberRecord {
	d.t.Helper()
	key := "/ccctl/e2e/" + d.service + "/members/" + member
	deadline := time.Now().Add(timeout)
	for {
		out, err := d.env.etcdctl("get", key, "--print-value-only")
		var r memberRecord
		if err == nil && out != "" {
			err = json.Unmarshal([]byte(out), &r)
		}
		if err == nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("record %s: %s: not within %v; last: %q (err %v)", key, what, timeout, out, err)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}

// cutOff disconnects member's container from the drill's network until
// cutFor has passed since t0 and its ccctl has logged the loss of its
// session, failing the test at the first sign that the container stopped.
func (d *drill) cutOff(member string, t0 time.Time) {
	d.t.Helper()
	c := d.container(member)
	mustDocker(d.t, "network", "disconnect", d.env.network, c)
	d.t.Cleanup(func() { docker("network", "connect", d.env.network, c) })
	waitLog(d.t, c, logSessionLost, 1, cutFor+30*time.Second)
	lost := time.Since(t0)
	for time.Since(t0) < cutFor {
		if r := inspectRun(d.t, c); !r.Running {
			d.t.Fatalf("%s cut off from etcd: container stopped %v after the cut; want it running", member, time.Since(t0).Round(time.Millisecond))
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	d.t.Logf("%s cut off for %v; its session was given up within %v of the cut", member, time.Since(t0).Round(time.Millisecond), lost.Round(100*time.Millisecond))
}

// reconnect connects member's container again and waits until its ccctl
// has rejoined with a new session and its record in etcd says slave again.
// It returns how long that took.
func (d *drill) reconnect(member string) time.Duration {
	d.t.Helper()
	c := d.container(member)
	t1 := time.Now()
	mustDocker(d.t, "network", "connect", d.env.network, c)
	waitLog(d.t, c, logRejoined, 1, 60*time.Second)
	back := time.Since(t1)
	d.waitRecord(member, "role slave after the rejoin", 20*time.Second, func(r memberRecord) bool { return r.Role == "slave" })
	return back
}

// checkNotRestarted asserts that the container of member runs the same run
// as before (same start time, no restart by docker) and the same service
// process, started once on the timeline.
func (d *drill) checkNotRestarted(member string, before containerRun, pid string) {
	d.t.Helper()
	c := d.container(member)
	now := inspectRun(d.t, c)
	if now.StartedAt != before.StartedAt || now.RestartCount != before.RestartCount || !now.Running {
		d.t.Errorf("%s after the outage: got started at %s, %d restarts, running %v; want started at %s, %d restarts, running",
			member, now.StartedAt, now.RestartCount, now.Running, before.StartedAt, before.RestartCount)
	}
	if got := servicePID(d.t, c); got != pid {
		d.t.Errorf("%s's service after the outage: got pid %s; want %s, the same process", member, got, pid)
	}
	ms := d.marks()
	if n := len(filter(ms, member, evServiceStarted)); n != 1 {
		d.t.Errorf("%s: service started %d times; want once", member, n)
	}
	if n := len(filter(ms, member, evServiceStopped, evStartedMaster, evStartedSlave, evStart)); n != 2 {
		d.t.Errorf("%s: got %d start, init or service-stop marks; want 2 (start and one init hook, no other)", member, n)
	}
}

// TestDrill8CutSlave: a slave cut off from etcd (docker network disconnect)
// for 3 x TTL keeps its container and its service running, untouched, and
// rejoins as a slave once connected again; the master never changes.
func TestDrill8CutSlave(t *testing.T) {
	d := newDrill(t, "cutslave", "r1", "r2", "r3")
	for _, m := range d.members {
		d.extra[m] = []string{"--restart", "on-failure"}
	}
	master, token := startedCluster(t, d, ttl)
	slave := d.members[0]
	if slave == master {
		slave = d.members[1]
	}
	before, pid := inspectRun(t, d.container(slave)), servicePID(t, d.container(slave))
	t0 := time.Now()
	d.cutOff(slave, t0)
	back := d.reconnect(slave)
	t2 := time.Now()
	ms := d.waitFor("the master's writes going on after the rejoin", 10*time.Second, func(ms []mark) bool {
		w := filter(ms, master, evWriteOK)
		return len(w) > 0 && w[len(w)-1].At.After(t2)
	})
	roleChanges := []string{evStartedMaster, evStartedSlave, evSlaveToMaster, evMasterToSlave, evMasterChanged, evStopping, evServiceStarted, evServiceStopped}
	if ch := filter(after(ms, t0), "", roleChanges...); len(ch) > 0 {
		t.Errorf("slave %s cut off and back: got role changes or service restarts; want none:\n%s", slave, formatMarks(ch))
	}
	if w := filter(after(ms, t2), master, evWriteOK); len(w) > 0 && w[len(w)-1].Token != token {
		t.Errorf("master's writes after the rejoin: got token %d; want %d, the same term", w[len(w)-1].Token, token)
	}
	d.checkNotRestarted(slave, before, pid)
	t.Logf("drill 8 (slave %s cut off for %v, TTL %v): service pid %s before the cut; rejoined as slave %v after the reconnect; %s master throughout (token %d); %d session(s) re-opened",
		slave, cutFor, ttl, pid, back.Round(time.Millisecond), master, token, logCount(t, d.container(slave), logRejoined))
}
