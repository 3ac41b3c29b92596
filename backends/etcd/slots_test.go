package etcd_test

import (
	"context"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestSlotClaimsShareALease: the claims of a job's slots share one lease
// rather than taking one each, so a job that runs every 2 s costs no more
// leases at steady state than one that runs daily; a lease revoked under
// the claims is replaced, and each slot is still taken once.
func TestSlotClaimsShareALease(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := etcd.New(ctx, etcd.Config{
		Endpoints: srv.Endpoints(), Cluster: coordinator.Cluster{Environment: "test", Service: "slots"},
		ID: "m1", TTL: 4 * time.Second, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leases := func() int {
		t.Helper()
		resp, err := cli.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Leases)
	}
	before := leases() // the session's

	// 100 slots of a 2 s job, as the scheduler claims them with an hour of
	// retention: 200 s of steady state.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 100; i++ {
		won, err := c.ClaimSlot(ctx, "every2s", t0.Add(time.Duration(i)*2*time.Second), time.Hour)
		if err != nil || !won {
			t.Fatalf("claim slot %d: got %v, %v; want won", i, won, err)
		}
	}
	if won, err := c.ClaimSlot(ctx, "every2s", t0, time.Hour); err != nil || won {
		t.Errorf("claim slot 0 again: got %v, %v; want lost", won, err)
	}
	got := leases() - before
	t.Logf("leases for 100 claims of one job: %d", got)
	if got != 1 {
		t.Errorf("leases for 100 claims of one job: got %d; want 1", got)
	}

	// The lease is revoked (as by an operator): the next claim takes a new one.
	resp, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range resp.Leases {
		if ttl, err := cli.TimeToLive(ctx, l.ID); err == nil && ttl.GrantedTTL >= 3600 {
			if _, err := cli.Revoke(ctx, l.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if won, err := c.ClaimSlot(ctx, "every2s", t0.Add(time.Hour), time.Hour); err != nil || !won {
		t.Errorf("claim after the lease was revoked: got %v, %v; want won", won, err)
	}
}
