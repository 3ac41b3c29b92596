package etcd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// TestEtcdFollowerStopped stops one etcd member that is not the raft
// leader: the leadership must not change.
func TestEtcdFollowerStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("3-member etcd cluster: not in -short")
	}
	e := etcdtest.StartCluster(t, 3)
	cl := newCluster()
	a := open(t, cl, "a", e.Endpoints()...)
	b := open(t, cl, "b", e.Endpoints()...)
	la := lead(t, a)
	chB := campaign(t, context.Background(), b)
	follower := (e.Leader(t) + 1) % e.Size()
	e.Stop(follower)
	quiet := time.NewTimer(2 * testTTL)
	defer quiet.Stop()
	select {
	case <-la.Done():
		t.Fatalf("a's leadership ended after an etcd follower stopped: %v", la.Err())
	case r := <-chB:
		t.Fatalf("b's campaign returned (err %v) after an etcd follower stopped; want a to keep leading", r.err)
	case <-quiet.C:
	}
	if got := leaderOf(t, b); got.ID != "a" || got.Token != la.Token() {
		t.Fatalf("leader = %+v; want a with token %d", got, la.Token())
	}
}

// TestEtcdLeaderStopped stops the raft leader of etcd. etcd elects a new
// one and extends every lease, so the leadership does not change; if the
// raft election took longer than the session can wait, the leader gives up
// first and another member leads within a TTL of that.
func TestEtcdLeaderStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("3-member etcd cluster: not in -short")
	}
	e := etcdtest.StartCluster(t, 3)
	cl := newCluster()
	a := open(t, cl, "a", e.Endpoints()...)
	b := open(t, cl, "b", e.Endpoints()...)
	la := lead(t, a)
	chB := campaign(t, context.Background(), b)
	stopped := time.Now()
	e.Stop(e.Leader(t))
	quiet := time.NewTimer(2 * testTTL)
	defer quiet.Stop()
	select {
	case <-la.Done():
		lost := time.Now()
		t.Logf("a gave up %v after the raft leader stopped: %v", lost.Sub(stopped), la.Err())
		rb := waitWon(t, chB, "b", waitTimeout)
		if took := rb.at.Sub(lost); took > testTTL+time.Second {
			t.Fatalf("b led %v after a gave up; want at most ttl + 1s", took)
		}
		if rb.l.Token() <= la.Token() {
			t.Fatalf("b's token %d; want > %d", rb.l.Token(), la.Token())
		}
	case r := <-chB:
		t.Fatalf("b's campaign returned (err %v) while a's term is open", r.err)
	case <-quiet.C:
		if got := leaderOf(t, b); got.ID != "a" || got.Token != la.Token() {
			t.Fatalf("leader = %+v; want a with token %d", got, la.Token())
		}
	}
}

// TestKeepAliveGoesToTheEtcdLeader: a session given every endpoint of a
// 3-member etcd keeps its lease alive through etcd's leader (a follower
// would forward every renewal to it), and after the leader stopped, through
// the new one.
func TestKeepAliveGoesToTheEtcdLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("3-member etcd cluster: not in -short")
	}
	e := etcdtest.StartCluster(t, 3)
	// Several sessions, each on a client of its own: the client spreads
	// new streams over the endpoints, so that one of them could reach the
	// leader by chance.
	cl := newCluster()
	var ms []*etcd.Coordinator
	for i := range 6 {
		ms = append(ms, open(t, cl, fmt.Sprintf("m%d", i), e.Endpoints()...))
	}
	renewedBy := func(id uint64) bool {
		for _, m := range ms {
			if etcd.RenewedBy(m) != id {
				return false
			}
		}
		return true
	}
	cli := etcdtest.NewClient(t, e.Endpoints()...)
	// leaderID returns the member id of etcd's leader as endpoint i sees it.
	leaderID := func(i int) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := cli.Status(ctx, e.Endpoint(i))
		if err != nil {
			t.Fatalf("status of etcd member %d: %v", i, err)
		}
		return st.Leader
	}
	leader := e.Leader(t)
	want := leaderID(leader)
	testutil.Eventually(t, waitTimeout, "renewals answered by etcd's leader", func() bool { return renewedBy(want) })
	e.Stop(leader)
	other := (leader + 1) % e.Size()
	testutil.Eventually(t, waitTimeout, "renewals answered by etcd's new leader", func() bool {
		id := leaderID(other)
		return id != 0 && id != want && renewedBy(id)
	})
	for _, m := range ms {
		if err := m.Err(); err != nil {
			t.Fatalf("session of %s ended: %v", m.ID(), err)
		}
	}
}
