package etcd_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// childEnv tells the test binary, re-executed, to act as a leader process:
// its value is "<endpoint> <service>".
const childEnv = "CCCTL_ETCD_TEST_LEADER"

// TestLeaderProcess is the child of TestKilledLeaderReplaced: it leads,
// says so on stdout, and waits to be killed.
func TestLeaderProcess(t *testing.T) {
	v := os.Getenv(childEnv)
	if v == "" {
		t.Skip("helper process of TestKilledLeaderReplaced")
	}
	endpoint, service, _ := strings.Cut(v, " ")
	c := open(t, coordinator.Cluster{Environment: "test", Service: service}, "child", endpoint)
	l := lead(t, c)
	fmt.Printf("LEADING %d\n", l.Token())
	select {
	case <-l.Done():
		t.Fatalf("child's leadership ended: %v", l.Err())
	case <-time.After(time.Minute): // the parent kills it long before
	}
}

// TestKilledLeaderReplaced kills a leader process with SIGKILL: no Close,
// no revoke. Another member must lead within TTL + 1 s.
func TestKilledLeaderReplaced(t *testing.T) {
	if os.Getenv(childEnv) != "" || os.Getenv(rankedChildEnv) != "" {
		t.Skip("in the helper process")
	}
	e := etcdtest.Start(t)
	cl := newCluster()
	cmd, leading, exited := startLeaderChild(t, "TestLeaderProcess", childEnv+"="+e.Endpoint(0)+" "+cl.Service)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(waitTimeout):
			t.Error("leader process not reaped")
		}
	})
	var childToken int64
	select {
	case childToken = <-leading:
	case err := <-exited:
		t.Fatalf("leader process exited before leading: %v", err)
	case <-time.After(waitTimeout):
		t.Fatalf("leader process not leading within %v", waitTimeout)
	}

	b := open(t, cl, "b", e.Endpoint(0))
	chB := campaign(t, context.Background(), b)
	stillWaiting(t, chB, "b", "while the child leads")
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	limit := testTTL + time.Second
	rb := waitWon(t, chB, "b", waitTimeout)
	took := rb.at.Sub(killed)
	t.Logf("killed leader replaced after %v (ttl %v)", took, testTTL)
	if took > limit {
		t.Errorf("failover after SIGKILL took %v; want at most %v", took, limit)
	}
	if rb.l.Token() <= childToken {
		t.Errorf("b's token %d; want > the killed leader's %d", rb.l.Token(), childToken)
	}
	// The history: b recorded the killed leader's end with its own
	// beginning.
	waitHistory(t, b, "the child's lease expired, b by failover", func(h []coordinator.Term) bool {
		return len(h) == 2 && h[0].Token == childToken && h[0].Member == "child" &&
			h[0].EndReason == coordinator.EndLeaseExpired && h[1].Reason == coordinator.BeganFailover
	})
}

// rankedChildEnv tells the test binary, re-executed, to act as a ranked
// master: its value is "<endpoint> <service> <id>".
const rankedChildEnv = "CCCTL_ETCD_TEST_RANKED_MASTER"

// TestRankedMasterProcess is the child of TestRankedSIGKILL: it leads,
// publishes position 1000 as the master, says so on stdout, and waits to
// be killed.
func TestRankedMasterProcess(t *testing.T) {
	v := os.Getenv(rankedChildEnv)
	if v == "" {
		t.Skip("helper process of TestRankedSIGKILL")
	}
	f := strings.Fields(v)
	if len(f) != 3 {
		t.Fatalf("%s=%q: want <endpoint> <service> <id>", rankedChildEnv, v)
	}
	c := open(t, coordinator.Cluster{Environment: "test", Service: f[1]}, f[2], f[0])
	l := lead(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Register(ctx, coordinator.Member{State: coordinator.StateActive, Position: pos(1000)}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	fmt.Printf("LEADING %d\n", l.Token())
	select {
	case <-l.Done():
		t.Fatalf("child's leadership ended: %v", l.Err())
	case <-time.After(time.Minute): // the parent kills it long before
	}
}

// TestRankedSIGKILL: the master (position 1000) is a process of its own,
// killed with SIGKILL (no Close, no revoke); of the two members waiting,
// at 900 and at 500, the 500 one holds the heir's place. The 900 one must
// take over, every time.
func TestRankedSIGKILL(t *testing.T) {
	if os.Getenv(rankedChildEnv) != "" || os.Getenv(childEnv) != "" {
		t.Skip("in a helper process")
	}
	e := etcdtest.Start(t)
	trials := 5
	if !testing.Short() {
		trials = 20
	}
	var took []time.Duration
	for i := range trials {
		took = append(took, rankedKill(t, e, i))
	}
	t.Logf("%d of %d trials: the 900 one took over; median %v after the SIGKILL (ttl %v)", len(took), trials, median(took).Round(time.Millisecond), testTTL)
}

// rankedKill runs one trial of TestRankedSIGKILL and returns the time from
// the kill to the takeover.
func rankedKill(t *testing.T, e *etcdtest.Cluster, trial int) time.Duration {
	t.Helper()
	cl := newCluster()
	ids := []string{"a", "b", "c"}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	master, at900, at500 := ids[0], ids[1], ids[2]
	cmd, leading, exited := startLeaderChild(t, "TestRankedMasterProcess", rankedChildEnv+"="+e.Endpoint(0)+" "+cl.Service+" "+master)
	reaped := false
	defer func() {
		if !reaped {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var token int64
	select {
	case token = <-leading:
	case err := <-exited:
		reaped = true
		t.Fatalf("trial %d: master process exited before leading: %v", trial, err)
	case <-time.After(waitTimeout):
		t.Fatalf("trial %d: master process not leading within %v", trial, waitTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m500 := open(t, cl, at500, e.Endpoint(0))
	register(t, m500, pos(500))
	defer m500.Close()
	ch500 := campaign(t, ctx, m500)
	reader := e.Client(t)
	testutil.Eventually(t, waitTimeout, at500+" in the heir's place", func() bool { return heirOf(t, reader, cl) == at500 })
	m900 := open(t, cl, at900, e.Endpoint(0))
	register(t, m900, pos(900))
	defer m900.Close()
	ch900 := campaign(t, ctx, m900)
	testutil.Eventually(t, waitTimeout, at900+" campaigning", func() bool {
		resp, err := reader.Get(context.Background(), clusterKey(cl, "candidates/"+at900))
		return err == nil && len(resp.Kvs) == 1
	})
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-exited
	reaped = true
	select {
	case r := <-ch900:
		if r.err != nil {
			t.Fatalf("trial %d: Campaign(%s, at 900): %v", trial, at900, r.err)
		}
		if r.l.Token() <= token {
			t.Errorf("trial %d: token %d; want > the killed master's %d", trial, r.l.Token(), token)
		}
		stillWaiting(t, ch500, at500, "after the 900 one took over")
		return r.at.Sub(killed)
	case r := <-ch500:
		t.Fatalf("trial %d: the 500 one (%s) returned first (leadership %v, err %v); want the 900 one", trial, at500, r.l != nil, r.err)
	case <-time.After(waitTimeout):
		t.Fatalf("trial %d: nobody took over within %v of the SIGKILL", trial, waitTimeout)
	}
	return 0
}

// startLeaderChild starts this test binary as a child running test run
// with env added, and returns it, the tokens it prints as "LEADING <token>"
// and its exit.
func startLeaderChild(t *testing.T, run, env string) (*exec.Cmd, <-chan int64, <-chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s process: %v", run, err)
	}
	exited := make(chan error, 1)
	leading := make(chan int64, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var token int64
			if _, err := fmt.Sscanf(sc.Text(), "LEADING %d", &token); err == nil {
				leading <- token
			}
		}
		exited <- cmd.Wait()
	}()
	return cmd, leading, exited
}
