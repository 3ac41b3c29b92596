package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// testCluster is a real etcd with members registered by the test itself,
// through the etcd backend, so that the CLI commands can be checked on their
// own.
type testCluster struct {
	etcd    *etcdtest.Cluster
	env     []string
	members map[string]*etcd.Coordinator
	ep      string
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	e := etcdtest.Start(t)
	ep := e.Endpoint(0)
	return &testCluster{
		etcd:    e,
		ep:      ep,
		env:     []string{"ETCD_ENDPOINTS=" + ep, "ENVIRONMENT=test", "SERVICE=db", "CCCTL_TTL=5"},
		members: map[string]*etcd.Coordinator{},
	}
}

func (tc *testCluster) add(t *testing.T, id string, role coordinator.Role, state coordinator.State) *etcd.Coordinator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := etcd.New(ctx, etcd.Config{
		Endpoints: []string{tc.ep},
		Cluster:   coordinator.Cluster{Environment: "test", Service: "db"},
		ID:        id,
		TTL:       5 * time.Second,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("etcd.New %s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	m := coordinator.Member{ID: id, Host: "host-" + id, Address: "10.0.0.1", Ports: []int{5432}, Role: role, State: state, StartedAt: time.Now().Add(-time.Minute), Priority: coordinator.DefaultPriority}
	if role == coordinator.RoleMaster {
		l, err := c.Campaign(ctx)
		if err != nil {
			t.Fatalf("campaign %s: %v", id, err)
		}
		m.Token = l.Token()
	}
	if err := c.Register(ctx, m); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	tc.members[id] = c
	return c
}

// addRanked registers a slave with its own ranking and position (-1:
// unknown).
func (tc *testCluster) addRanked(t *testing.T, id string, r coordinator.Ranking, position int64) *etcd.Coordinator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := etcd.New(ctx, etcd.Config{
		Endpoints: []string{tc.ep},
		Cluster:   coordinator.Cluster{Environment: "test", Service: "db"},
		ID:        id,
		TTL:       5 * time.Second,
		Ranking:   r,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("etcd.New %s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	m := coordinator.Member{ID: id, Host: "host-" + id, Role: coordinator.RoleSlave, State: coordinator.StateRunning, Priority: r.EffectivePriority()}
	if position >= 0 {
		m.Position = &position
	}
	if err := c.Register(ctx, m); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	tc.members[id] = c
	return c
}

func TestClusterCommands(t *testing.T) {
	tc := newTestCluster(t)
	m1 := tc.add(t, "m1", coordinator.RoleMaster, coordinator.StateActive)
	tc.add(t, "m2", coordinator.RoleSlave, coordinator.StateRunning)

	t.Run("leader", func(t *testing.T) {
		r := ccctl(t, 30*time.Second, tc.env, "leader")
		if r.code != 0 || r.stdout != "m1\n" {
			t.Errorf("got %d %q (stderr %q); want 0 and m1", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("status json", func(t *testing.T) {
		r := ccctl(t, 30*time.Second, tc.env, "status", "-o", "json")
		var v clusterView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("status -o json: %v in %q (stderr %q)", err, r.stdout, r.stderr)
		}
		if v.Master != "m1" || v.Token == 0 || len(v.Members) != 2 {
			t.Fatalf("got %+v; want master m1 with a token and 2 members", v)
		}
		if m := v.Members[0]; m.ID != "m1" || !m.Master || m.Host != "host-m1" || m.LeaseLeftSc <= 0 || m.UptimeSec < 59 {
			t.Errorf("members[0]: got %+v; want m1, master, host-m1, lease left > 0, uptime >= 59s (stderr %q)", m, r.stderr)
		}
	})
	t.Run("status filters", func(t *testing.T) {
		r := ccctl(t, 30*time.Second, tc.env, "status", "-o", "json", "--role", "slave")
		var v clusterView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("status: %v in %q", err, r.stdout)
		}
		if len(v.Members) != 1 || v.Members[0].ID != "m2" {
			t.Errorf("--role slave: got %+v; want only m2", v.Members)
		}
		r = ccctl(t, 30*time.Second, tc.env, "status", "-o", "json", "--state", "active")
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("status: %v in %q", err, r.stdout)
		}
		if len(v.Members) != 1 || v.Members[0].ID != "m1" {
			t.Errorf("--state active: got %+v; want only m1", v.Members)
		}
		r = ccctl(t, 30*time.Second, tc.env, "status", "-o", "json", "--service", "other")
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("status: %v in %q", err, r.stdout)
		}
		if len(v.Members) != 0 || v.Service != "other" {
			t.Errorf("--service other: got %+v; want service other with no members", v)
		}
	})
	t.Run("status table", func(t *testing.T) {
		r := ccctl(t, 30*time.Second, tc.env, "status")
		for _, want := range []string{"cluster test/db  master: m1", "ID", "LEASE", "m1", "master*", "active", "5432", "m2", "slave"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("status: got %q; want it to contain %q", r.stdout, want)
			}
		}
	})
	t.Run("pause and resume", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := ccctl(t, 30*time.Second, tc.env, "pause")
		if p, err := m1.Paused(ctx); r.code != 0 || err != nil || !p {
			t.Errorf("pause: got code %d, paused %v (%v); want 0 and paused (stderr %q)", r.code, p, err, r.stderr)
		}
		if r := ccctl(t, 30*time.Second, tc.env, "status"); !strings.Contains(r.stdout, "PAUSED") {
			t.Errorf("status while paused: got %q; want PAUSED", r.stdout)
		}
		began := time.Now()
		if r := ccctl(t, 30*time.Second, tc.env, "switchover", "--to", "m2"); r.code != 1 || !strings.Contains(r.stderr, "the cluster is paused") {
			t.Errorf("switchover while paused: got %d %q; want 1 and a line saying the cluster is paused", r.code, r.stderr)
		}
		if d := time.Since(began); d > 3*time.Second {
			t.Errorf("switchover while paused took %v; want it to fail at once", d)
		}
		r = ccctl(t, 30*time.Second, tc.env, "resume")
		if p, err := m1.Paused(ctx); r.code != 0 || err != nil || p {
			t.Errorf("resume: got code %d, paused %v (%v); want 0 and not paused", r.code, p, err)
		}
	})
	t.Run("switchover", func(t *testing.T) {
		// The test plays the controllers' part: m1 resigns when asked,
		// m2 campaigns.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		events, err := m1.Watch(ctx)
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		handed := make(chan error, 1)
		go func() {
			for ev := range events {
				if ev.Type == coordinator.EventSwitchover && ev.SwitchoverTo == "m2" {
					l, err := m1.Campaign(ctx) // the current term
					if err == nil {
						err = l.Resign(ctx)
					}
					if err == nil {
						_, err = tc.members["m2"].Campaign(ctx)
					}
					handed <- err
					return
				}
			}
			handed <- ctx.Err()
		}()
		r := ccctl(t, 40*time.Second, tc.env, "switchover", "--to", "m2", "--timeout", "20s")
		if r.code != 0 || !strings.Contains(r.stdout, "m2 is master") {
			t.Errorf("switchover: got %d %q (stderr %q); want 0 and m2 is master", r.code, r.stdout, r.stderr)
		}
		if err := <-handed; err != nil {
			t.Errorf("handover: %v", err)
		}
	})
	t.Run("switchover to unknown", func(t *testing.T) {
		r := ccctl(t, 30*time.Second, tc.env, "switchover", "--to", "nobody")
		if r.code != 1 || !strings.Contains(r.stderr, "unknown member") {
			t.Errorf("got %d %q; want 1 and unknown member", r.code, r.stderr)
		}
	})
}

func TestLeaderNoneExits1(t *testing.T) {
	tc := newTestCluster(t)
	tc.add(t, "m1", coordinator.RoleSlave, coordinator.StateRunning)
	r := ccctl(t, 30*time.Second, tc.env, "leader")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "has no master") {
		t.Errorf("got %d %q %q; want 1, nothing on stdout, a line saying there is no master", r.code, r.stdout, r.stderr)
	}
}

func TestClusterCommandsNeedEtcd(t *testing.T) {
	for _, args := range [][]string{{"status"}, {"leader"}, {"switchover"}, {"pause"}, {"resume"}} {
		r := ccctl(t, 30*time.Second, nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "no etcd configured") {
			t.Errorf("%s: got %d %q; want 2 and no etcd configured", args[0], r.code, r.stderr)
		}
	}
}

func TestClusterCommandsEtcdUnreachableExits3(t *testing.T) {
	env := []string{"ETCD_ENDPOINTS=http://" + freeAddr(t), "CCCTL_ETCD_DIAL_TIMEOUT=1s"}
	r := ccctl(t, 30*time.Second, env, "status")
	if r.code != 3 || !strings.Contains(r.stderr, "connect to etcd at http://127.0.0.1:") {
		t.Errorf("got %d %q; want 3 and a line naming the endpoint", r.code, r.stderr)
	}
}

func TestStatusWatchRedrawsOnChange(t *testing.T) {
	tc := newTestCluster(t)
	tc.add(t, "m1", coordinator.RoleMaster, coordinator.StateActive)
	m2 := tc.add(t, "m2", coordinator.RoleSlave, coordinator.StateRunning)
	r := background(t, tc.env, "status", "--watch")
	testutil.Eventually(t, 20*time.Second, "first table with m2", func() bool { return strings.Contains(r.stdout.String(), "m2") })
	m2.Close()
	testutil.Eventually(t, 20*time.Second, "a redraw without m2", func() bool {
		out := r.stdout.String()
		last := out[strings.LastIndex(out, "---"):]
		return strings.Count(out, "---") >= 2 && !strings.Contains(last, "m2") && strings.Contains(last, "m1")
	})
	if code := r.stop(t, os.Interrupt, 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT: got %d; want 0 (stderr %q)", code, r.stderr.String())
	}
}

func TestCompletionOfFlagValues(t *testing.T) {
	tc := newTestCluster(t)
	tc.add(t, "m1", coordinator.RoleMaster, coordinator.StateActive)
	tc.add(t, "m2", coordinator.RoleSlave, coordinator.StateRunning)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"switchover", "--to", ""}, "m1\nm2\n:4\n"},
		{[]string{"status", "-o", ""}, "table\njson\n:4\n"},
		{[]string{"status", "--role", ""}, "master\nslave\n:4\n"},
		{[]string{"status", "--state", ""}, "starting\ninitializing\nrunning\nactive\nstopping\nstopped\nfailed\n:4\n"},
		{[]string{"health", "--role", ""}, "master\nslave\n:4\n"},
	} {
		// What the scripts of ccctl completion bash, zsh and fish run.
		r := ccctl(t, 30*time.Second, tc.env, append([]string{"__complete"}, c.args...)...)
		if r.code != 0 || r.stdout != c.want {
			t.Errorf("__complete %q: got %d %q (stderr %q); want %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
}

func TestStatusWatchRedrawsOnATickerAndRidesThroughAnEtcdRestart(t *testing.T) {
	tc := newTestCluster(t)
	tc.add(t, "m1", coordinator.RoleMaster, coordinator.StateActive)
	// A TTL of 2s: a watch that held a lease of its own would end within
	// the outage below.
	env := append(tc.env, "CCCTL_TTL=2", "CCCTL_ETCD_DIAL_TIMEOUT=1s")
	r := background(t, env, "status", "--watch", "--interval", "200ms")
	testutil.Eventually(t, 20*time.Second, "three redraws of an unchanged cluster", func() bool {
		return strings.Count(r.stdout.String(), "cluster test/db  master: m1") >= 3
	})

	tc.etcd.Stop(0)
	// Each failed redraw takes the 1s dial timeout: three of them outlast
	// the 2s TTL.
	testutil.Eventually(t, 30*time.Second, "three failed redraws while etcd is down", func() bool {
		select {
		case <-r.done:
			t.Fatalf("status --watch ended while etcd was down: code %d, stderr %q", r.cmd.ProcessState.ExitCode(), r.stderr.String())
		default:
		}
		return strings.Count(r.stdout.String(), "trying again") >= 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tc.etcd.Restart(ctx, 0); err != nil {
		t.Fatalf("restart etcd: %v", err)
	}
	tc.add(t, "m3", coordinator.RoleSlave, coordinator.StateRunning)
	testutil.Eventually(t, 30*time.Second, "a redraw with m3 after the restart", func() bool {
		out := r.stdout.String()
		return strings.Contains(out[strings.LastIndex(out, "---"):], "m3")
	})
	if code := r.stop(t, os.Interrupt, 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT: got %d; want 0 (stderr %q)", code, r.stderr.String())
	}
}
