package etcd_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestDuplicateIDRefused: a second session with the id of a live member
// (its record's lease renewed) is refused, wrapping ErrInvalidConfig, with
// an error that names the id and the member's host; the member's record
// stays.
func TestDuplicateIDRefused(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	a := open(t, cl, "web1", e.Endpoint(0))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.Register(ctx, coordinator.Member{ID: "web1", Host: "host-a", State: coordinator.StateActive}); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	c, err := etcd.New(ctx, etcd.Config{Endpoints: []string{e.Endpoint(0)}, Cluster: cl, ID: "web1", TTL: testTTL, Logger: quietLogger()})
	if err == nil {
		c.Close()
		t.Fatal("New with a live member's id: got nil error; want one")
	}
	took := time.Since(begin)
	if !errors.Is(err, coordinator.ErrInvalidConfig) || !strings.Contains(err.Error(), "web1") || !strings.Contains(err.Error(), "host-a") {
		t.Errorf("New with a live member's id: got %v; want ErrInvalidConfig naming web1 and host-a", err)
	}
	if took > testTTL+2*time.Second {
		t.Errorf("refused after %v; want within a TTL", took)
	}
	ms, err := a.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].Host != "host-a" {
		t.Errorf("Members() = %+v, %v; want web1's own record", ms, err)
	}
}

// TestStaleRecordTakenOver: the record of a member cut off from etcd (its
// lease no longer renewed, as after a container restarted under the same
// host name) is waited out, logged, and the id taken over within a TTL.
func TestStaleRecordTakenOver(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	p := etcdtest.NewProxy(t, e.Endpoint(0))
	old := open(t, cl, "web1", p.Endpoint())
	p.Cut()
	defer p.Heal()
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	begin := time.Now()
	c, err := etcd.New(ctx, etcd.Config{Endpoints: []string{e.Endpoint(0)}, Cluster: cl, ID: "web1", TTL: testTTL,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New with a stale record's id: %v", err)
	}
	defer c.Close()
	if took := time.Since(begin); took > testTTL+time.Second {
		t.Errorf("took over after %v; want within a TTL (%v)", took, testTTL)
	}
	if !strings.Contains(logs.String(), "waiting until its lease expires") {
		t.Errorf("log %q; want a line saying it waits", logs.String())
	}
	if err := c.Register(ctx, coordinator.Member{ID: "web1", Host: "new"}); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].Host != "new" {
		t.Errorf("Members() = %+v, %v; want the new record only", ms, err)
	}
	_ = old
}
