package etcdtest

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestStartServesClients(t *testing.T) {
	c := Start(t)
	if got := len(c.Endpoints()); got != 1 {
		t.Fatalf("got %d endpoints; want 1", got)
	}
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put: got %v; want nil", err)
	}
}

func TestProxyCutHealDelay(t *testing.T) {
	c := Start(t)
	p := NewProxy(t, c.Endpoint(0))
	cli := NewClient(t, p.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put through proxy: got %v; want nil", err)
	}
	if p.Bytes() == 0 {
		t.Fatalf("got 0 bytes through the proxy; want more")
	}

	p.Cut()
	cctx, ccancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := cli.Get(cctx, "k")
	ccancel()
	if err == nil {
		t.Fatalf("get through a cut proxy: got nil error; want a timeout")
	}
	p.Heal()
	if _, err := cli.Get(ctx, "k"); err != nil {
		t.Fatalf("get after heal: got %v; want nil", err)
	}

	p.SetDelay(100 * time.Millisecond)
	start := time.Now()
	if _, err := cli.Get(ctx, "k"); err != nil {
		t.Fatalf("get with delay: got %v; want nil", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("round trip with 100ms delay each way took %v; want at least 200ms", d)
	}
}

func TestStartClusterLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("3-member cluster in -short")
	}
	c := StartCluster(t, 3)
	if got := len(c.Endpoints()); got != 3 {
		t.Fatalf("got %d endpoints; want 3", got)
	}
	l := c.Leader(t)
	c.Stop(l)
	if got := len(c.Endpoints()); got != 2 {
		t.Fatalf("got %d endpoints after a stop; want 2", got)
	}
	if nl := c.Leader(t); nl == l {
		t.Fatalf("got leader %d after stopping it; want another", nl)
	}
}

func TestStartBinary(t *testing.T) {
	c := StartBinary(t)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, c.Endpoint(0))
	if err != nil {
		t.Fatalf("status: got %v; want nil", err)
	}
	t.Logf("etcd binary version %s", st.Version)
}

func TestRestartRejoins(t *testing.T) {
	c := StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Restart(ctx, 0); !errors.Is(err, ErrRunning) {
		t.Fatalf("restart of a running member: got %v; want ErrRunning", err)
	}
	l := c.Leader(t)
	c.Stop(l)
	cli := c.Client(t)
	if _, err := cli.Put(ctx, "k", "written while stopped"); err != nil {
		t.Fatalf("put with one member stopped: got %v; want nil", err)
	}
	if err := c.Restart(ctx, l); err != nil {
		t.Fatalf("restart member %d: got %v; want nil", l, err)
	}
	if got := len(c.Endpoints()); got != 3 {
		t.Fatalf("got %d endpoints after the restart; want 3", got)
	}
	// A serializable read answers from the restarted member's own store:
	// it has caught up with what was written while it was down.
	own := NewClient(t, c.Endpoint(l))
	resp, err := own.Get(ctx, "k", clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("get from the restarted member: got %v; want nil", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "written while stopped" {
		t.Fatalf("get from the restarted member: got %v; want the value written while it was down", resp.Kvs)
	}
	ml, err := own.MemberList(ctx)
	if err != nil {
		t.Fatalf("member list: got %v; want nil", err)
	}
	if got := len(ml.Members); got != 3 {
		t.Fatalf("got %d members after the restart; want 3 (the same cluster)", got)
	}
	// Stopped and restarted again: Stop works on the new server.
	c.Stop(l)
	if err := c.Restart(ctx, l); err != nil {
		t.Fatalf("second restart of member %d: got %v; want nil", l, err)
	}
}
