package etcdtest

import (
	"context"
	"testing"
	"time"
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
