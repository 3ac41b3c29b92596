package lifecycle

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
)

// roleLog is an Extension that records what it is told.
type roleLog struct {
	mu   sync.Mutex
	told []coordinator.Role
}

func (r *roleLog) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (r *roleLog) RoleChanged(role coordinator.Role, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.told = append(r.told, role)
}

// TestLateEndOfOldTerm: the end of a term, reported after the next term
// began, neither tells the extensions slave nor clears the master gauge.
func TestLateEndOfOldTerm(t *testing.T) {
	co, err := memory.New(memory.NewStore(), memory.Config{
		Cluster: coordinator.Cluster{Environment: "test", Service: "db"}, ID: "a",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { co.Close() })
	ext := &roleLog{}
	c, err := New(Config{Coordinator: co, Extensions: []Extension{ext}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}

	c.termStarted(2)
	c.notifyRole(coordinator.RoleMaster, 2, nil)
	c.notifyRole(coordinator.RoleSlave, 0, nil) // the loop demotes (handover)
	c.termStarted(5)                            // and wins again
	c.notifyRole(coordinator.RoleMaster, 5, nil)
	c.termEnded(2) // term 2's end, seen late

	want := []coordinator.Role{coordinator.RoleMaster, coordinator.RoleSlave, coordinator.RoleMaster}
	if !slices.Equal(ext.told, want) {
		t.Errorf("extensions told: got %v; want %v", ext.told, want)
	}
	if got := gaugeValue(t, c.metrics.isMaster); got != 1 {
		t.Errorf("master gauge: got %v; want 1", got)
	}

	c.termEnded(5)
	want = append(want, coordinator.RoleSlave)
	if !slices.Equal(ext.told, want) {
		t.Errorf("extensions told after the current term ended: got %v; want %v", ext.told, want)
	}
	if got := gaugeValue(t, c.metrics.isMaster); got != 0 {
		t.Errorf("master gauge after the current term ended: got %v; want 0", got)
	}
}

// gaugeValue reads g's value.
func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(g); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gather the gauge: got %v, %v", mfs, err)
	}
	return mfs[0].GetMetric()[0].GetGauge().GetValue()
}
