package etcd_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

func TestHerdWindow(t *testing.T) {
	for _, tc := range []struct {
		members int64
		want    time.Duration
	}{
		{0, 0},
		{1, 0},
		{2, 0},
		{3, 0},
		{9, 0},
		{10, 2250 * time.Microsecond},
		{1001, 250 * time.Millisecond},
		{10001, 2500 * time.Millisecond},
		{240001, time.Minute},
		{1000000, time.Minute},
	} {
		if got := etcd.HerdWindow(tc.members); got != tc.want {
			t.Errorf("herdWindow(%d) = %v; want %v", tc.members, got, tc.want)
		}
	}
}

// countingClient returns a client of endpoint that counts the campaign
// transactions it sends (those that put a key on success) whose first put
// is of a key that match accepts.
func countingClient(t *testing.T, endpoint string, match func(key string) bool, puts *atomic.Int64) *clientv3.Client {
	t.Helper()
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(*pb.TxnRequest); ok && len(r.Success) > 0 && r.Success[0].GetRequestPut() != nil &&
			match(string(r.Success[0].GetRequestPut().Key)) {
			puts.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(count)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestVacancySpreadsTheHerd: with many members waiting, a vacancy costs far
// fewer campaign transactions than there are waiters, because each waits a
// random delay and most see the new leader before their turn. The window
// per member is raised (to a 2 s window for these few hundred members,
// about 27 times production's) so that the round trip of a machine
// slowed by -race stays small against it: the test checks the
// mechanism (the count of member records, the delay, the watch that calls
// an attempt off), TestHerdWindow the production sizes.
func TestVacancySpreadsTheHerd(t *testing.T) {
	const (
		n         = 300
		vacancies = 3
		window    = 2 * time.Second
	)
	e := etcdtest.Start(t)
	var puts atomic.Int64
	cli := countingClient(t, e.Endpoint(0), func(string) bool { return true }, &puts)
	cl := newCluster()
	ctx, cancel := context.WithCancel(context.Background())
	type win struct {
		l coordinator.Leadership
	}
	wins := make(chan win, n)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("campaigns still running at cleanup")
		}
	})
	ms := make([]*etcd.Coordinator, n)
	sem := make(chan struct{}, 32)
	var ow sync.WaitGroup
	errs := make(chan error, n)
	for i := range ms {
		sem <- struct{}{}
		ow.Add(1)
		go func() {
			defer ow.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("m%04d", i)
			octx, ocancel := context.WithTimeout(ctx, waitTimeout)
			defer ocancel()
			c, err := etcd.NewWithClient(octx, cli, etcd.Config{Cluster: cl, ID: id, TTL: 10 * time.Second, Logger: quietLogger()})
			if err == nil {
				etcd.SetHerdWindow(c, window/(n-1), window)
				if err = c.Register(octx, coordinator.Member{ID: id, State: coordinator.StateRunning}); err != nil {
					c.Close()
				}
			}
			if err != nil {
				errs <- fmt.Errorf("open %s: %w", id, err)
				return
			}
			ms[i] = c
		}()
	}
	ow.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range ms {
			sem <- struct{}{}
			ow.Add(1)
			go func() {
				defer ow.Done()
				defer func() { <-sem }()
				c.Close()
			}()
		}
		ow.Wait()
	})
	for _, c := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				l, err := c.Campaign(ctx)
				if err != nil {
					return
				}
				wins <- win{l}
				select {
				case <-l.Done():
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var cur win
	select {
	case cur = <-wins:
	case <-time.After(waitTimeout):
		t.Fatal("nobody won")
	}
	for v := range vacancies {
		settle := time.NewTimer(time.Second) // every campaign reaches its wait
		<-settle.C
		before := puts.Load()
		if err := cur.l.Resign(context.Background()); err != nil {
			t.Fatal(err)
		}
		select {
		case cur = <-wins:
		case <-time.After(waitTimeout):
			t.Fatalf("vacancy %d: no new leader within %v", v, waitTimeout)
		}
		// Let every turn pass.
		settle = time.NewTimer(window + 500*time.Millisecond)
		<-settle.C
		got := puts.Load() - before
		t.Logf("vacancy %d: %d campaign transactions for %d waiters", v, got, n-1)
		if got < 1 || got > n/3 {
			t.Errorf("vacancy %d: got %d campaign transactions; want between 1 and %d (%d waiters)", v, got, n/3, n-1)
		}
	}
}

// TestCampaignRecountsMembers: a campaign that started while few members
// had registered counts them again while it waits, so that its herd window
// grows with the cluster.
func TestCampaignRecountsMembers(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	open := func(id string) *etcd.Coordinator {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		c, err := etcd.New(ctx, etcd.Config{Endpoints: []string{e.Endpoint(0)}, Cluster: cl, ID: id, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Register(ctx, coordinator.Member{ID: id, State: coordinator.StateRunning}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	leader := open("leader")
	lead(t, leader)
	a := open("a")
	etcd.SetRecount(a, 50*time.Millisecond, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.Campaign(ctx)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	testutil.Eventually(t, waitTimeout, "first count", func() bool { return etcd.MembersCounted(a) == 2 })
	for i := range 5 {
		open(fmt.Sprintf("late%d", i))
	}
	testutil.Eventually(t, waitTimeout, "count of 7 members", func() bool { return etcd.MembersCounted(a) == 7 })
}
