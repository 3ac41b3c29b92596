package etcd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestObserverHoldsNoLeaseAndWatchesThroughARestart: an observer grants no
// lease, reads the cluster, and its watch outlives an etcd restart longer
// than the TTL, then reports what changed.
func TestObserverHoldsNoLeaseAndWatchesThroughARestart(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	a := open(t, cl, "a", e.Endpoint(0))
	cli := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	before, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, err := etcd.NewObserver(cli, etcd.Config{Cluster: cl, ID: "cli", Logger: quietLogger()})
	if err != nil {
		t.Fatalf("NewObserver: %v", err)
	}
	defer o.Close()
	if after, err := cli.Leases(ctx); err != nil || len(after.Leases) != len(before.Leases) {
		t.Fatalf("leases: got %d after NewObserver, %d before (err %v); want no new lease", len(after.Leases), len(before.Leases), err)
	}
	if ms, err := o.Members(ctx); err != nil || len(ms) != 1 || ms[0].ID != "a" {
		t.Fatalf("Members: got %v, %v; want a", ms, err)
	}
	if _, err := o.Leader(ctx); !errors.Is(err, coordinator.ErrNoLeader) {
		t.Fatalf("Leader: got %v; want ErrNoLeader", err)
	}
	events, err := o.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	e.Stop(0)
	// A member's session of testTTL ends without renewals; the observer,
	// with no session, goes on.
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatal("a's session still lives with etcd down")
	}
	if err := e.Restart(ctx, 0); err != nil {
		t.Fatalf("restart etcd: %v", err)
	}
	open(t, cl, "b", e.Endpoint(0))
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("watch ended after the restart; want it to go on")
			}
			if ev.Type == coordinator.EventMemberJoined && ev.Member.ID == "b" {
				return
			}
		case <-ctx.Done():
			t.Fatal("no join of b after the restart")
		}
	}
}
