package etcd_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/coordinator/coordinatortest"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// testTTL is the session TTL of the tests: the shortest the backend allows.
const testTTL = 2 * time.Second

var clusterSeq atomic.Int64

// harness gives the conformance suite handles on one fresh cluster (a new
// service name) of a shared etcd. Every handle reaches etcd through a proxy
// of its own, so that Expire can cut it off.
type harness struct {
	etcd    *etcdtest.Cluster
	direct  *clientv3.Client
	cluster coordinator.Cluster

	mu      sync.Mutex
	proxies map[coordinator.Coordinator]*etcdtest.Proxy
}

func newHarness(t *testing.T, e *etcdtest.Cluster, direct *clientv3.Client) *harness {
	return &harness{
		etcd:    e,
		direct:  direct,
		cluster: coordinator.Cluster{Environment: "test", Service: fmt.Sprintf("svc%d", clusterSeq.Add(1))},
		proxies: map[coordinator.Coordinator]*etcdtest.Proxy{},
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// config returns the configuration of member id of the harness's cluster,
// reaching etcd at endpoint.
func (h *harness) config(id, endpoint string, r coordinator.Ranking) etcd.Config {
	return etcd.Config{
		Endpoints: []string{endpoint},
		Cluster:   h.cluster,
		ID:        id,
		TTL:       testTTL,
		Logger:    quietLogger(),
		Ranking:   r,
	}
}

var _ coordinatortest.RankedHarness = (*harness)(nil)

// New opens a handle for id through a new proxy to one of the etcd
// members (in turn).
func (h *harness) New(t *testing.T, id string) coordinator.Coordinator {
	t.Helper()
	return h.NewRanked(t, id, coordinator.Ranking{})
}

// NewRanked opens a handle for id with ranking r, as New does.
func (h *harness) NewRanked(t *testing.T, id string, r coordinator.Ranking) coordinator.Coordinator {
	t.Helper()
	h.mu.Lock()
	n := len(h.proxies)
	h.mu.Unlock()
	p := etcdtest.NewProxy(t, h.etcd.Endpoint(n%h.etcd.Size()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := etcd.New(ctx, h.config(id, p.Endpoint(), r))
	if err != nil {
		t.Fatalf("etcd.New(%s): %v", id, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close(%s) at cleanup: %v", id, err)
		}
	})
	h.mu.Lock()
	h.proxies[c] = p
	h.mu.Unlock()
	return c
}

// Expire cuts c's proxy and returns once etcd has expired its lease.
func (h *harness) Expire(t *testing.T, c coordinator.Coordinator) {
	t.Helper()
	h.mu.Lock()
	p := h.proxies[c]
	h.mu.Unlock()
	if p == nil {
		t.Fatalf("Expire(%s): not a handle of this harness", c.ID())
	}
	p.Cut()
	waitLeaseGone(t, h.direct, c.(*etcd.Coordinator).LeaseID(), testTTL+5*time.Second)
}

// Heal heals c's proxy after Expire.
func (h *harness) Heal(t *testing.T, c coordinator.Coordinator) {
	t.Helper()
	h.mu.Lock()
	p := h.proxies[c]
	h.mu.Unlock()
	if p == nil {
		t.Fatalf("Heal(%s): not a handle of this harness", c.ID())
	}
	p.Heal()
}

// waitLeaseGone polls etcd until the lease is gone, failing after d.
func waitLeaseGone(t testing.TB, cli *clientv3.Client, id clientv3.LeaseID, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.TimeToLive(ctx, id)
		cancel()
		if err == nil && resp.TTL == -1 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %x still alive %v after the cut (ttl %v, err %v)", int64(id), d, resp, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a bounded poll
	}
}

func runConformance(t *testing.T, e *etcdtest.Cluster) {
	direct := e.Client(t)
	coordinatortest.Run(t, func(t *testing.T) coordinatortest.Harness { return newHarness(t, e, direct) })
}

func TestConformance(t *testing.T) {
	runConformance(t, etcdtest.Start(t))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3-member etcd cluster: not in -short")
	}
	runConformance(t, etcdtest.StartCluster(t, 3))
}

func TestConformanceEtcd34(t *testing.T) {
	runConformance(t, etcdtest.StartBinary(t))
}
