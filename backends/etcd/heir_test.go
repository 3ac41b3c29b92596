package etcd_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// heirKey returns the key of cl's heir's place.
func heirKey(cl coordinator.Cluster) string {
	return fmt.Sprintf("/ccctl/%s/%s/election-heir", cl.Environment, cl.Service)
}

// heirOf returns the id of the member in cl's heir's place ("" if none).
func heirOf(t testing.TB, cli *clientv3.Client, cl coordinator.Cluster) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), heirKey(cl))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// TestOnlyTheHeirTriesOnAVacancy: of the members waiting, one holds the
// heir's place. A resigning leader hands over to it in its own
// transaction (no member sends one to lead); when the leader key goes
// otherwise (here an operator deletes it), only the heir sends a
// transaction to lead, and wins. The others wake for the place it leaves.
func TestOnlyTheHeirTriesOnAVacancy(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	var leads atomic.Int64
	cli := countingClient(t, e.Endpoint(0), func(key string) bool { return strings.Contains(key, "/election/") }, &leads)
	ids := []string{"a", "b", "c", "d", "e"}
	cs := map[string]*etcd.Coordinator{}
	for _, id := range ids {
		cs[id] = openOn(t, cli, etcd.Config{Cluster: cl, ID: id, TTL: testTTL, Logger: quietLogger()})
	}
	la := lead(t, cs["a"])
	waits := map[string]<-chan result{}
	for _, id := range ids[1:] {
		waits[id] = campaign(t, context.Background(), cs[id])
	}
	reader := etcdtest.NewClient(t, e.Endpoint(0))
	// waitHeir returns the member in the heir's place once there is one
	// other than not.
	waitHeir := func(not string) string {
		t.Helper()
		var heir string
		testutil.Eventually(t, waitTimeout, "a member in the heir's place", func() bool {
			heir = heirOf(t, reader, cl)
			return heir != "" && heir != not
		})
		return heir
	}
	heir := waitHeir("")
	// The handover goes by the heir's place as the term's monitor saw it:
	// wait until it has seen the claim.
	hr, err := reader.Get(context.Background(), heirKey(cl))
	if err != nil || len(hr.Kvs) == 0 {
		t.Fatalf("read the heir's place: %v, %v", hr, err)
	}
	waitView(t, cs["a"], hr.Kvs[0].ModRevision)
	before := leads.Load()
	if err := la.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := waitWon(t, waits[heir], heir, waitTimeout)
	if got := leads.Load() - before; got != 0 {
		t.Errorf("%d transactions to lead after the resignation; want 0 (handed over)", got)
	}
	wantLeader(t, cs["a"], heir, r.l.Token())
	if r.l.Token() <= la.Token() {
		t.Errorf("token after the handover %d; want > %d", r.l.Token(), la.Token())
	}

	next := waitHeir(heir)
	before = leads.Load()
	if _, err := reader.Delete(context.Background(), fmt.Sprintf("/ccctl/%s/%s/election/", cl.Environment, cl.Service), clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	r2 := waitWon(t, waits[next], next, waitTimeout)
	if got := leads.Load() - before; got != 1 {
		t.Errorf("%d transactions to lead after the leader key was deleted; want 1 (the heir's)", got)
	}
	wantLeader(t, cs["a"], next, r2.l.Token())
}

// heirCluster is a cluster of three members on one embedded etcd: a
// leads, and b, campaigning under ctx, holds the heir's place; c is open.
type heirCluster struct {
	cl     coordinator.Cluster
	a, c   *etcd.Coordinator
	la     coordinator.Leadership
	chB    <-chan result
	reader *clientv3.Client
}

func newHeirCluster(t *testing.T, ctx context.Context) heirCluster {
	t.Helper()
	e := etcdtest.Start(t)
	h := heirCluster{cl: newCluster(), reader: etcdtest.NewClient(t, e.Endpoint(0))}
	h.a = open(t, h.cl, "a", e.Endpoint(0))
	b := open(t, h.cl, "b", e.Endpoint(0))
	h.c = open(t, h.cl, "c", e.Endpoint(0))
	h.la = lead(t, h.a)
	h.chB = campaign(t, ctx, b)
	h.waitHeir(t, "b")
	return h
}

// waitHeir waits until member id holds the heir's place.
func (h heirCluster) waitHeir(t *testing.T, id string) {
	t.Helper()
	testutil.Eventually(t, waitTimeout, id+" in the heir's place", func() bool { return heirOf(t, h.reader, h.cl) == id })
}

// TestCancelledCampaignLeavesTheHeirsPlace: a campaign that ends without
// leading gives the heir's place up at once (its session lives on), so
// that the next vacancy goes to a member still campaigning.
func TestCancelledCampaignLeavesTheHeirsPlace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := newHeirCluster(t, ctx)
	cancel()
	if r := <-h.chB; r.err == nil {
		t.Fatal("b's cancelled campaign won")
	}
	if id := heirOf(t, h.reader, h.cl); id != "" {
		t.Fatalf("after b's campaign returned, %q holds the heir's place; want nobody", id)
	}
	chC := campaign(t, context.Background(), h.c)
	h.waitHeir(t, "c")
	if err := h.la.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitWon(t, chC, "c", waitTimeout)
}

// TestSwitchoverToAWaitingMember: a switchover may name a member that waits
// without the heir's place (and so without watching the leader key); it
// takes over when the leader resigns, and the heir does not.
func TestSwitchoverToAWaitingMember(t *testing.T) {
	h := newHeirCluster(t, context.Background())
	chC := campaign(t, context.Background(), h.c)
	if _, err := h.a.Switchover(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := h.la.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	lc := waitWon(t, chC, "c", waitTimeout)
	wantLeader(t, h.a, "c", lc.l.Token())
	select {
	case r := <-h.chB:
		t.Fatalf("the heir b returned from its campaign (%v) while c leads", r.err)
	default:
	}
}

// wantLeader fails t unless m reads id as the leader with token.
func wantLeader(t *testing.T, m coordinator.Coordinator, id string, token int64) {
	t.Helper()
	got, err := m.Leader(context.Background())
	if err != nil || got.ID != id || got.Token != token {
		t.Fatalf("Leader() = %+v, %v; want %s with token %d", got, err, id, token)
	}
}

// TestSwitchoverAfterAVacancy: a member waiting without the heir's place
// does not follow the leader key; when a switchover names it after the
// leadership fell vacant (here while the cluster was paused), it reads the
// key again instead of trusting the leader it read last.
func TestSwitchoverAfterAVacancy(t *testing.T) {
	h := newHeirCluster(t, context.Background())
	a, la := h.a, h.la
	chC := campaign(t, context.Background(), h.c)
	ctx := context.Background()
	if err := a.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Switchover(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := a.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	lc := waitWon(t, chC, "c", waitTimeout)
	wantLeader(t, a, "c", lc.l.Token())
}
