package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestDeadlineIsSendTimePlusTTLMinusMargin drives the lease logic with a
// fake clock while the network is cut: the session is given up exactly at
// the send time of the last acknowledged request (here the grant) + TTL -
// margin, not a moment later and not before, however many renewals are in
// flight.
func TestDeadlineIsSendTimePlusTTLMinusMargin(t *testing.T) {
	e := etcdtest.Start(t)
	p := etcdtest.NewProxy(t, e.Endpoint(0))
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	const margin = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := etcd.New(ctx, etcd.Config{
		Endpoints: []string{p.Endpoint()}, Cluster: newCluster(), ID: "a",
		TTL: testTTL, RenewInterval: 500 * time.Millisecond, Margin: margin,
		Clock: fake, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	l := lead(t, a)
	p.Cut()

	if got, want := a.LeaseRemaining(), testTTL-margin; got != want {
		t.Fatalf("LeaseRemaining() right after the grant = %v; want %v", got, want)
	}
	fake.Advance(testTTL - margin - time.Millisecond) // renewals fire and hang
	if got, want := a.LeaseRemaining(), time.Millisecond; got != want {
		t.Fatalf("LeaseRemaining() 1ms before the deadline = %v; want %v", got, want)
	}
	select {
	case <-l.Done():
		t.Fatalf("leadership ended before the deadline: %v", l.Err())
	case <-a.Done():
		t.Fatalf("session ended before the deadline: %v", a.Err())
	default:
	}
	fake.Advance(time.Millisecond)
	select {
	case <-l.Done():
	case <-time.After(waitTimeout):
		t.Fatal("leadership not ended at the deadline")
	}
	select {
	case <-a.Done():
	case <-time.After(waitTimeout):
		t.Fatal("session not ended after the leadership")
	}
	if err := l.Err(); !errors.Is(err, coordinator.ErrLeaseDeadline) {
		t.Errorf("Leadership.Err() = %v; want ErrLeaseDeadline", err)
	}
	if err := a.Err(); !errors.Is(err, coordinator.ErrLeaseDeadline) {
		t.Errorf("Err() = %v; want ErrLeaseDeadline", err)
	}
	if got := a.LeaseRemaining(); got != 0 {
		t.Errorf("LeaseRemaining() after the loss = %v; want 0", got)
	}
}
