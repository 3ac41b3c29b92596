package waitfor_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/waitfor"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestWaitsOnRealEtcd: a member of web waits, on a real (embedded) etcd, for
// the db service of the same environment, whose master becomes active
// while it waits; the waiter's views share one client.
func TestWaitsOnRealEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := testContext(t)
	quiet := slog.New(slog.DiscardHandler)
	cfg := func(service, id string) etcd.Config {
		return etcd.Config{Cluster: coordinator.Cluster{Environment: "prod", Service: service}, ID: id, TTL: 2 * time.Second, Logger: quiet}
	}

	db, err := etcd.NewWithClient(ctx, cli, cfg("db", "db-1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Register(ctx, coordinator.Member{Role: coordinator.RoleMaster, State: coordinator.StateRunning}); err != nil {
		t.Fatal(err)
	}

	w, logs := newWaiter(t, waitfor.Config{
		Services:     []string{"db"},
		PollInterval: 50 * time.Millisecond,
		LogInterval:  50 * time.Millisecond,
		Open: func(ctx context.Context, service string) (waitfor.Cluster, error) {
			return etcd.NewWithClient(ctx, cli, cfg(service, "web-1"))
		},
	})
	done, _ := start(t, w)
	logs.waitLog(t, `still waiting for services" awaiting=db `)
	select {
	case err := <-done:
		t.Fatalf("Wait = %v while db's master was only running; want it still waiting", err)
	default:
	}

	if err := db.Register(ctx, coordinator.Member{Role: coordinator.RoleMaster, State: coordinator.StateActive}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait = %v; want nil once db's master is active", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return within 20s after db's master became active")
	}
	if !strings.Contains(logs.String(), `awaited service has an active master" service=db`) {
		t.Errorf("log has no line for db being up:\n%s", logs.String())
	}
}
