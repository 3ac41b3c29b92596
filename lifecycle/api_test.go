package lifecycle_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/lifecycle"
)

type heldLocks map[string]bool

func (h heldLocks) Locks() map[string]bool { return h }

// TestOriginalHelpers checks the Go counterparts of get_container_id,
// get_members and get_filesystem_lock from inside a running member's hook.
func TestOriginalHelpers(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := memory.NewStore()
	cl := coordinator.Cluster{Environment: "test", Service: "db"}
	other, err := memory.New(store, memory.Config{Cluster: cl, ID: "db-2", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := other.Register(ctx, coordinator.Member{ID: "db-2", Role: coordinator.RoleSlave, State: coordinator.StateRunning}); err != nil {
		t.Fatal(err)
	}
	co, err := memory.New(store, memory.Config{Cluster: cl, ID: "db-1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}

	type seen struct {
		id      string
		slaves  []string
		all     int
		lockA   bool
		lockB   bool
		missing bool
	}
	got := make(chan seen, 1)
	var ctl *lifecycle.Controller
	ctl, err = lifecycle.New(lifecycle.Config{
		Coordinator: co,
		Locks:       heldLocks{"/data/a": true, "/data/b": false},
		Logger:      log,
		Hooks: map[lifecycle.HookName][]lifecycle.Hook{
			lifecycle.HookStartedAsMaster: {lifecycle.HookFunc(func(ctx context.Context, ev lifecycle.HookEvent) error {
				slaves, err := ctl.Members(ctx, lifecycle.MemberFilter{Role: coordinator.RoleSlave})
				if err != nil {
					return err
				}
				all, err := ctl.Members(ctx, lifecycle.MemberFilter{})
				if err != nil {
					return err
				}
				s := seen{id: ctl.InstanceID(), all: len(all), lockA: ctl.GetFilesystemLock("/data/a"),
					lockB: ctl.GetFilesystemLock("/data/b"), missing: ctl.GetFilesystemLock("/elsewhere")}
				for _, m := range slaves {
					s.slaves = append(s.slaves, m.ID)
				}
				got <- s
				return nil
			})},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctl.Run(runCtx)
	}()
	select {
	case s := <-got:
		if s.id != "db-1" {
			t.Errorf("InstanceID() = %q; want db-1", s.id)
		}
		if len(s.slaves) != 1 || s.slaves[0] != "db-2" {
			t.Errorf("Members(role slave) = %v; want [db-2]", s.slaves)
		}
		if s.all != 2 {
			t.Errorf("Members(all) has %d members; want 2", s.all)
		}
		if !s.lockA || s.lockB || s.missing {
			t.Errorf("GetFilesystemLock a, b, elsewhere = %v, %v, %v; want true, false, false", s.lockA, s.lockB, s.missing)
		}
	case <-ctx.Done():
		t.Fatal("the started_as_master hook did not run")
	}
	stop()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
