package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestAuth runs a session against etcd with authentication on: the
// session's own keep-alive stream carries the credentials too, so the
// session outlives its TTL; a wrong password is refused as a bad
// configuration.
func TestAuth(t *testing.T) { testAuth(t, etcdtest.Start(t)) }

// TestAuthEtcd34 is TestAuth against Debian's etcd 3.4.
func TestAuthEtcd34(t *testing.T) { testAuth(t, etcdtest.StartBinary(t)) }

func testAuth(t *testing.T, e *etcdtest.Cluster) {
	direct := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := direct.UserAdd(ctx, "root", "rootpw"); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := etcd.Config{Endpoints: e.Endpoints(), Cluster: newCluster(), ID: "a", TTL: testTTL,
		Username: "root", Password: "rootpw", Logger: quietLogger()}
	a := openWith(t, cfg)
	l := lead(t, a)
	quiet := time.NewTimer(2 * testTTL)
	defer quiet.Stop()
	select {
	case <-l.Done():
		t.Fatalf("leadership ended with authentication on: %v", l.Err())
	case <-quiet.C:
	}
	if got := leaderOf(t, a); got.ID != "a" {
		t.Fatalf("leader = %+v; want a", got)
	}

	bad := cfg
	bad.ID, bad.Password = "b", "wrong"
	c, err := etcd.New(ctx, bad)
	if err == nil {
		c.Close()
		t.Fatal("New with a wrong password: got nil error; want one")
	}
	if !errors.Is(err, coordinator.ErrInvalidConfig) {
		t.Errorf("New with a wrong password: got %v; want an error wrapping ErrInvalidConfig", err)
	}
}
