//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// ttl is the session lease of the drills' replicas: short, so that the
// crash drills are quick, and long enough for a busy 2-core machine.
const ttl = 3 * time.Second

// drill is one drill's replicas of the demo service, in a cluster (service
// name) of its own, and their shared timeline.
type drill struct {
	t       *testing.T
	env     *env
	service string
	dir     string // the timeline folder, mounted at /timeline
	members []string
	extra   map[string][]string // more docker create arguments per member
}

// newDrill prepares a drill of the given replicas; it creates no container
// yet. Its containers are removed in t.Cleanup, after their logs and the
// timeline are printed if the test failed.
func newDrill(t *testing.T, service string, members ...string) *drill {
	t.Helper()
	e := setup(t)
	d := &drill{t: t, env: e, service: service, dir: t.TempDir(), members: members, extra: map[string][]string{}}
	if err := os.Chmod(d.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			d.dump()
		}
		var names []string
		for _, m := range d.members {
			names = append(names, d.container(m))
		}
		if len(names) == 0 {
			return
		}
		if _, err := docker(append([]string{"rm", "-f", "-v"}, names...)...); err != nil && !strings.Contains(err.Error(), "No such container") {
			t.Errorf("remove containers: %v", err)
		}
	})
	return d
}

func (d *drill) container(member string) string {
	return namePrefix + d.service + "-" + member
}

// env returns the environment of a replica.
func (d *drill) envVars(member string, ttl time.Duration) []string {
	return []string{
		"ETCD_ENDPOINTS=" + d.env.endpoints,
		"ENVIRONMENT=e2e",
		"SERVICE=" + d.service,
		"CCCTL_INSTANCE_ID=" + member,
		"CCCTL_TTL=" + ttl.String(),
		"CCCTL_GRACE_PERIOD=5s",
		"CCCTL_ETCD_CONNECT_TIMEOUT=30s",
		"PORTS_WHEN_ACTIVE=8080",
	}
}

// create creates the containers of the given members (all when none) with
// the given TTL, without starting them.
func (d *drill) create(ttl time.Duration, members ...string) {
	d.t.Helper()
	if len(members) == 0 {
		members = d.members
	}
	for _, m := range members {
		args := []string{"create", "--name", d.container(m), "--hostname", m,
			"--label", label + "=1", "--network", d.env.network,
			"--tmpfs", "/tmp", "-v", d.dir + ":/timeline"}
		for _, kv := range d.envVars(m, ttl) {
			args = append(args, "-e", kv)
		}
		args = append(args, d.extra[m]...)
		mustDocker(d.t, append(args, imageDemo)...)
	}
}

// start starts the containers of the given members with one docker command.
func (d *drill) start(members ...string) {
	d.t.Helper()
	if len(members) == 0 {
		members = d.members
	}
	var names []string
	for _, m := range members {
		names = append(names, d.container(m))
	}
	mustDocker(d.t, append([]string{"start"}, names...)...)
}

// startConcurrently starts the containers of the given members with one
// docker command each, all at the same time (one docker start of several
// containers starts them one after the other).
func (d *drill) startConcurrently(members ...string) {
	d.t.Helper()
	errs := make(chan error, len(members))
	for _, m := range members {
		go func() {
			_, err := docker("start", d.container(m))
			errs <- err
		}()
	}
	for range members {
		if err := <-errs; err != nil {
			d.t.Error(err)
		}
	}
	if d.t.Failed() {
		d.t.FailNow()
	}
}

// marks returns the timeline so far.
func (d *drill) marks() []mark {
	d.t.Helper()
	ms, err := readTimeline(d.dir)
	if err != nil {
		d.t.Fatal(err)
	}
	return ms
}

// waitFor polls the timeline until cond holds, and fails the test when it
// does not within timeout. It returns the timeline that satisfied cond.
func (d *drill) waitFor(what string, timeout time.Duration, cond func([]mark) bool) []mark {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := d.marks()
		if cond(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not within %v; timeline:\n%s", what, timeout, formatMarks(ms))
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// waitStarted waits until every given member's service has started n times.
func (d *drill) waitStarted(n int, timeout time.Duration, members ...string) []mark {
	d.t.Helper()
	return d.waitFor(fmt.Sprintf("service of %v started %d time(s)", members, n), timeout, func(ms []mark) bool {
		for _, m := range members {
			if len(filter(ms, m, evServiceStarted)) < n {
				return false
			}
		}
		return true
	})
}

// currentMaster returns the member whose last term-beginning mark is the
// latest on the timeline, and its token.
func currentMaster(ms []mark) (string, int64) {
	begins := filter(ms, "", evStartedMaster, evSlaveToMaster)
	if len(begins) == 0 {
		return "", 0
	}
	last := begins[len(begins)-1]
	return last.Member, last.Token
}

// dump prints the timeline and every replica's last log lines.
func (d *drill) dump() {
	ms, err := readTimeline(d.dir)
	d.t.Logf("timeline of %s (err %v):\n%s", d.service, err, formatMarks(ms))
	for _, m := range d.members {
		l, _ := dockerLogs(d.container(m), 40)
		d.t.Logf("--- logs of %s:\n%s", d.container(m), l)
	}
}
