package memory

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/coordinator/coordinatortest"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeHarness runs members on a fake clock: Expire is Crash, then a jump
// of the clock to the instant the lease expires. The living members'
// renewals are applied on schedule by the store (see catchUpLocked), so
// the jump expires only the crashed member. No time passes otherwise but
// by Pass.
type fakeHarness struct {
	store   *Store
	clk     *clock.Fake
	cluster coordinator.Cluster
	cfg     Config
}

func newFakeHarness(t *testing.T) *fakeHarness {
	clk := clock.NewFake(epoch)
	return &fakeHarness{
		store:   NewStore(WithClock(clk)),
		clk:     clk,
		cluster: coordinator.Cluster{Environment: "test", Service: "db"},
		cfg:     Config{TTL: 10 * time.Second, Margin: time.Second, RenewInterval: 3 * time.Second, Logger: quietLogger()},
	}
}

func (h *fakeHarness) New(t *testing.T, id string) coordinator.Coordinator {
	t.Helper()
	return h.NewRanked(t, id, coordinator.Ranking{})
}

// NewRanked opens id with ranking r.
func (h *fakeHarness) NewRanked(t *testing.T, id string, r coordinator.Ranking) coordinator.Coordinator {
	t.Helper()
	cfg := h.cfg
	cfg.Cluster, cfg.ID, cfg.Ranking = h.cluster, id, r
	c, err := New(h.store, cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (h *fakeHarness) Expire(t *testing.T, cc coordinator.Coordinator) {
	t.Helper()
	c := cc.(*Coordinator)
	c.crash()
	h.store.mu.Lock()
	expiry := c.lease.expiry
	h.store.mu.Unlock()
	h.clk.Set(expiry)
	h.store.mu.Lock()
	h.store.expireDueLocked()
	alive := h.store.aliveLocked(c.lease)
	h.store.mu.Unlock()
	if alive {
		t.Fatalf("lease of crashed %s alive after advancing the clock by the TTL", c.id)
	}
}

// Pass advances the fake clock by d.
func (h *fakeHarness) Pass(t *testing.T, d time.Duration) { h.clk.Advance(d) }

// Heal undoes Expire's crash: the member reaches the store again.
func (h *fakeHarness) Heal(t *testing.T, cc coordinator.Coordinator) { heal(cc.(*Coordinator)) }

// Heal undoes Expire's crash: the member reaches the store again.
func (h *realHarness) Heal(t *testing.T, cc coordinator.Coordinator) { heal(cc.(*Coordinator)) }

func heal(c *Coordinator) {
	c.store.mu.Lock()
	c.crashed = false
	c.store.mu.Unlock()
	c.partition(false)
}

var (
	_ coordinatortest.RankedHarness = (*fakeHarness)(nil)
	_ coordinatortest.TimeMover     = (*fakeHarness)(nil)
	_ coordinatortest.RankedHarness = (*realHarness)(nil)
)

func TestConformanceFakeClock(t *testing.T) {
	coordinatortest.Run(t, func(t *testing.T) coordinatortest.Harness { return newFakeHarness(t) })
}

// realHarness runs members on the real clock with a short TTL: Expire is
// Crash, then a bounded wait for the store to expire the lease.
type realHarness struct {
	store *Store
	cfg   Config
}

func (h *realHarness) New(t *testing.T, id string) coordinator.Coordinator {
	t.Helper()
	return h.NewRanked(t, id, coordinator.Ranking{})
}

// NewRanked opens id with ranking r.
func (h *realHarness) NewRanked(t *testing.T, id string, r coordinator.Ranking) coordinator.Coordinator {
	t.Helper()
	cfg := h.cfg
	cfg.ID, cfg.Ranking = id, r
	c, err := New(h.store, cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (h *realHarness) Expire(t *testing.T, cc coordinator.Coordinator) {
	t.Helper()
	c := cc.(*Coordinator)
	c.crash()
	deadline := time.Now().Add(h.cfg.TTL + 5*time.Second)
	for {
		h.store.mu.Lock()
		h.store.expireDueLocked()
		alive := h.store.aliveLocked(c.lease)
		h.store.mu.Unlock()
		if !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease of %s not expired within %v", c.id, h.cfg.TTL+5*time.Second)
		}
		time.Sleep(10 * time.Millisecond) // bounded poll of a real-time expiry
	}
}

func TestConformanceRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("real-clock expiry takes real time; skipped in short mode")
	}
	n := 0
	coordinatortest.Run(t, func(t *testing.T) coordinatortest.Harness {
		n++
		return &realHarness{
			store: NewStore(),
			cfg: Config{
				Cluster: coordinator.Cluster{Environment: "real", Service: fmt.Sprintf("svc%d", n)},
				TTL:     2 * time.Second, Margin: 200 * time.Millisecond, RenewInterval: 400 * time.Millisecond,
				Logger: quietLogger(),
			},
		}
	})
}
