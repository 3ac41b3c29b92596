package lifecycle_test

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/lifecycle"
)

// TestEtcdLeadershipLost runs controllers on a real (embedded) etcd and
// deletes the leader key under a master, which loses the leadership while
// its session lives: each OnLeadershipLost action is checked, and for exit,
// that the slave takes over.
func TestEtcdLeadershipLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	open := func(t *testing.T, service, id string) coordinator.Coordinator {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		co, err := etcd.New(ctx, etcd.Config{
			Endpoints: srv.Endpoints(),
			Cluster:   coordinator.Cluster{Environment: "test", Service: service},
			ID:        id,
			TTL:       4 * time.Second,
			Logger:    discardLogger(),
		})
		if err != nil {
			t.Fatalf("etcd.New(%s): %v", id, err)
		}
		t.Cleanup(func() { co.Close() })
		return co
	}
	for _, tc := range []struct {
		action lifecycle.LeadershipLostAction
		lines  []string
		starts int // service starts
		code   int
	}{
		{lifecycle.LeadershipLostDemote, []string{
			"start role= prev= master= members=a",
			"started_as_master role=master prev= master=a tok members=a",
			"became_active role=master prev=master master=a tok members=a",
			"transition_master_to_slave role=slave prev=master master= members=a",
			"transition_slave_to_master role=master prev=slave master=a tok members=a",
			"stopping role=master prev=master master=a tok members=a",
		}, 1, 128 + 15},
		{lifecycle.LeadershipLostRestart, []string{
			"start role= prev= master= members=a",
			"started_as_master role=master prev= master=a tok members=a",
			"became_active role=master prev=master master=a tok members=a",
			"transition_master_to_slave role=slave prev=master master= members=a",
			"became_active role=slave prev=slave master= members=a",
			"transition_slave_to_master role=master prev=slave master=a tok members=a",
			"stopping role=master prev=master master=a tok members=a",
		}, 2, 128 + 15},
		{lifecycle.LeadershipLostExit, []string{
			"start role= prev= master= members=a",
			"started_as_master role=master prev= master=a tok members=a",
			"became_active role=master prev=master master=a tok members=a",
			"stopping role=slave prev=slave master= members=a",
		}, 1, lifecycle.ExitLeadershipLost},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			h := newHarness(t)
			service := "svc-" + string(tc.action)
			starts := h.dir + "/starts"
			a := h.start(h.newMemberOn(open(t, service, "a"), func(c *lifecycle.Config) {
				c.OnLeadershipLost = tc.action
				c.Service.Argv = []string{"/bin/sh", "-c", `echo started >> '` + starts + `'; exec sleep 600`}
			}))
			a.waitLines(t, 3) // start, started_as_master, became_active (no ports: active once started)
			waitFile(t, starts)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if _, err := cli.Delete(ctx, "/ccctl/test/"+service+"/election/", clientv3.WithPrefix()); err != nil {
				t.Fatalf("delete leader key: %v", err)
			}
			if tc.action == lifecycle.LeadershipLostExit {
				if code, err := a.wait(t); code != tc.code || err == nil {
					t.Errorf("Run: got %d, %v; want %d and an error", code, err, tc.code)
				}
				// A slave started now takes over at once.
				b := h.start(h.newMemberOn(open(t, service, "b"), nil))
				waitFor(t, "b to lead", func() bool { return b.ctl.Status().Role == coordinator.RoleMaster })
			} else {
				a.waitLines(t, len(tc.lines)-1) // all but stopping
				if code, _ := a.stop(t); code != tc.code {
					t.Errorf("Run: got %d; want %d", code, tc.code)
				}
			}
			if got := strs(a.lines(t)); !reflect.DeepEqual(got, tc.lines) {
				t.Errorf("hooks:\n got %q\nwant %q", got, tc.lines)
			}
			b, _ := os.ReadFile(starts)
			if n := strings.Count(string(b), "started"); n != tc.starts {
				t.Errorf("service starts: got %d; want %d", n, tc.starts)
			}
		})
	}
}

// TestEtcdGracefulHandover: on a real etcd, a stopping master's service is
// gone before the slave's transition hook starts, and the slave takes over
// within milliseconds of the master's exit, not after a TTL.
func TestEtcdGracefulHandover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	srv := etcdtest.Start(t)
	h := newHarness(t)
	open := func(id string) coordinator.Coordinator {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		co, err := etcd.New(ctx, etcd.Config{
			Endpoints: srv.Endpoints(), Cluster: testCluster, ID: id, TTL: 10 * time.Second, Logger: discardLogger(),
		})
		if err != nil {
			t.Fatalf("etcd.New(%s): %v", id, err)
		}
		t.Cleanup(func() { co.Close() })
		return co
	}
	alive := h.dir + "/a-alive"
	a := h.start(h.newMemberOn(open("a"), func(c *lifecycle.Config) {
		// The service removes its marker when it gets SIGTERM, then exits.
		c.Service.Argv = []string{"/bin/sh", "-c", `trap 'rm -f ` + alive + `; exit 0' TERM; touch ` + alive + `; while :; do sleep 0.01; done`}
	}))
	waitFile(t, alive)
	b := h.start(h.newMemberOn(open("b"), func(c *lifecycle.Config) {
		c.Hooks[lifecycle.HookTransitionSlaveToMaster] = append(c.Hooks[lifecycle.HookTransitionSlaveToMaster],
			lifecycle.Shell(`test ! -e `+alive+` || echo overlap > `+h.dir+`/overlap`))
	}))
	b.waitLines(t, 2)
	stopped := time.Now()
	if code, err := a.stop(t); code != 0 || err != nil {
		t.Errorf("a's Run: got %d, %v; want 0 (the service's code), nil", code, err)
	}
	var took time.Duration
	waitFor(t, "b to take over", func() bool {
		if b.ctl.Status().Role == coordinator.RoleMaster {
			took = time.Since(stopped)
			return true
		}
		return false
	})
	t.Logf("stop asked of a (stopping hook, SIGTERM, service exit, resign) to b leading: %v (ttl 10s)", took)
	if took > 5*time.Second {
		t.Errorf("takeover after a graceful stop: got %v; want well under the ttl of 10s", took)
	}
	b.waitLines(t, 3)
	if _, err := os.Stat(h.dir + "/overlap"); err == nil {
		t.Errorf("b's transition hook ran while a's service was alive")
	}
}
