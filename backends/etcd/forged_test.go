package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// The tests of this file write keys as an operator's etcdctl put would
// (a plain client, no lease) and check that no member takes them for a
// member's.

// clusterKey returns key under cl's keys with the default prefix.
func clusterKey(cl coordinator.Cluster, key string) string {
	return fmt.Sprintf("/ccctl/%s/%s/%s", cl.Environment, cl.Service, key)
}

// put writes key=value with no lease and returns the revision.
func put(t *testing.T, cli *clientv3.Client, key, value string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), key, value, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// waitView waits until the monitor of c's term has seen revision rev.
func waitView(t *testing.T, c *etcd.Coordinator, rev int64) {
	t.Helper()
	testutil.Eventually(t, waitTimeout, fmt.Sprintf("%s's term seeing revision %d", c.ID(), rev), func() bool {
		return etcd.LeaderViewRevision(c) >= rev
	})
}

// noLeaderKey fails unless no key exists under cl's election/.
func noLeaderKey(t *testing.T, cli *clientv3.Client, cl coordinator.Cluster) {
	t.Helper()
	resp, err := cli.Get(context.Background(), clusterKey(cl, "election/"), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		t.Errorf("key %s=%s (lease %x) under election/; want none", kv.Key, kv.Value, kv.Lease)
	}
}

// TestForgedHeirGetsNoTerm: with "ghost" put by hand in the heir's place
// (no lease), a resigning leader does not hand over to it (no lease-less
// leader key election/ghost), Leader never reports it, and another member
// then leads.
func TestForgedHeirGetsNoTerm(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	reader := etcdtest.NewClient(t, e.Endpoint(0))
	a := open(t, cl, "a", e.Endpoint(0))
	la := lead(t, a)
	waitView(t, a, put(t, reader, heirKey(cl), "ghost"))
	if err := la.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	noLeaderKey(t, reader, cl)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if l, err := a.Leader(ctx); !errors.Is(err, coordinator.ErrNoLeader) {
		t.Errorf("Leader() after the resignation = %+v, %v; want ErrNoLeader", l, err)
	}
	b := open(t, cl, "b", e.Endpoint(0))
	lb := lead(t, b)
	if got := leaderOf(t, a); got.ID != "b" || got.Token != lb.Token() {
		t.Errorf("Leader() = %+v; want b with token %d", got, lb.Token())
	}
}

// TestForgedHeirOverAWaitingMember: "ghost" put by hand over the key of
// the member in the heir's place. The members waiting take the place
// back, and whether the leader resigns before or after, a member leads;
// no key election/ghost is ever written.
func TestForgedHeirOverAWaitingMember(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newHeirCluster(t, ctx)
	chC := campaign(t, ctx, h.c)
	leaders := h.reader.Watch(ctx, clusterKey(h.cl, "election/"), clientv3.WithPrefix())
	rev := put(t, h.reader, heirKey(h.cl), "ghost")
	waitView(t, h.a, rev)
	if err := h.la.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	var won result
	select {
	case won = <-h.chB:
	case won = <-chC:
	case <-ctx.Done():
	}
	if won.err != nil || won.l == nil {
		t.Fatalf("after the resignation: got %v; want b or c to lead", won.err)
	}
	l := leaderOf(t, h.a)
	if l.ID != "b" && l.ID != "c" || l.Token != won.l.Token() {
		t.Errorf("Leader() = %+v; want b or c with token %d", l, won.l.Token())
	}
	for wr := range leaders {
		for _, ev := range wr.Events {
			if strings.HasSuffix(string(ev.Kv.Key), "/ghost") {
				t.Fatalf("%s %s=%s (lease %x) written; want no key for ghost", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.Lease)
			}
			if ev.Kv.CreateRevision == l.Token {
				return // the winner's key: everything before it was seen
			}
		}
	}
}

// TestForgedLeaderKeyIgnored: a leader key put by hand (no lease) is not
// reported by Leader or Watch, does not keep a member from leading, and
// goes with the first term that begins.
func TestForgedLeaderKeyIgnored(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	reader := etcdtest.NewClient(t, e.Endpoint(0))
	var logs syncBuffer
	a := openWith(t, etcd.Config{Endpoints: []string{e.Endpoint(0)}, Cluster: cl, ID: "a", TTL: testTTL,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	put(t, reader, clusterKey(cl, "election/ghost"), "ghost")
	put(t, reader, clusterKey(cl, "election/a"), "a") // this member's own key, put by hand
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for range 3 {
		if l, err := a.Leader(ctx); !errors.Is(err, coordinator.ErrNoLeader) {
			t.Fatalf("Leader() = %+v, %v; want ErrNoLeader", l, err)
		}
	}
	if n := strings.Count(logs.String(), "election/ghost"); n != 1 {
		t.Errorf("election/ghost named on %d log lines after 3 reads; want 1:\n%s", n, logs.String())
	}
	events, err := a.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	la := lead(t, a)
	ev := untilEvent(t, events, coordinator.EventLeaderChanged)
	if ev.Leader.ID != "a" || ev.Leader.Token != la.Token() {
		t.Errorf("first leader event %+v; want a with token %d", ev.Leader, la.Token())
	}
	resp, err := reader.Get(ctx, clusterKey(cl, "election/"), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != clusterKey(cl, "election/a") || resp.Kvs[0].CreateRevision != la.Token() {
		t.Errorf("keys under election/ after a won: %v; want only a's, created at %d", resp.Kvs, la.Token())
	}
}

// TestForgedMemberRecordsIgnored: member records that are not a member's
// (an id that is not a member id, a record under another id's key, no
// lease, a record that does not parse) are left out of Members and Watch,
// and no switchover picks them.
func TestForgedMemberRecordsIgnored(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	reader := etcdtest.NewClient(t, e.Endpoint(0))
	a := open(t, cl, "a", e.Endpoint(0))
	lead(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	lease, err := reader.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	withLease := clientv3.WithLease(lease.ID)
	master := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"role":"master","state":"active"}`, id)
	}
	put(t, reader, clusterKey(cl, "members/../../x"), master("../../x"), withLease)
	put(t, reader, clusterKey(cl, "members/y"), master("../../x"), withLease)
	put(t, reader, clusterKey(cl, "members/z"), master("z")) // no lease
	put(t, reader, clusterKey(cl, "members/w"), "{", withLease)
	ms, err := a.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != "a" {
		t.Errorf("Members() = %+v; want a only", ms)
	}
	events, err := a.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The initial state: the members, then the leader.
	for ev := range events {
		if ev.Type == coordinator.EventLeaderChanged {
			break
		}
		if ev.Type == coordinator.EventMemberJoined && ev.Member.ID != "a" {
			t.Errorf("Watch reported %+v; want a only", ev.Member)
		}
	}
	if to, err := a.Switchover(ctx, ""); !errors.Is(err, coordinator.ErrUnknownMember) {
		t.Errorf("Switchover(\"\") = %q, %v; want ErrUnknownMember (nobody to hand over to)", to, err)
	}
	for _, to := range []string{"../../x", "y", "z", "w"} {
		if _, err := a.Switchover(ctx, to); !errors.Is(err, coordinator.ErrUnknownMember) {
			t.Errorf("Switchover(%q) = %v; want ErrUnknownMember", to, err)
		}
	}
}
