package etcd_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
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
	if os.Getenv(childEnv) != "" {
		t.Skip("in the helper process")
	}
	e := etcdtest.Start(t)
	cl := newCluster()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeaderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+e.Endpoint(0)+" "+cl.Service)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start leader process: %v", err)
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
