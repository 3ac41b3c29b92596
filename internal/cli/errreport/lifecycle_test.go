package errreport_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/lifecycle"
)

// TestFailedInitHookOfRealController: a real controller whose init hook
// fails logs the failure through the Reporter's handler; Sentry gets it with
// the member's tags and the hook's name as a tag.
func TestFailedInitHookOfRealController(t *testing.T) {
	in := newIngest(t)
	r := newReporter(t, in.dsn())
	log := slog.New(r.Handler(slog.NewTextHandler(io.Discard, nil)))

	co, err := memory.New(memory.NewStore(), memory.Config{
		Cluster: coordinator.Cluster{Environment: "prod", Service: "db"}, ID: "db-1", Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { co.Close() })
	ctl, err := lifecycle.New(lifecycle.Config{
		Coordinator: co,
		Hooks: map[lifecycle.HookName][]lifecycle.Hook{
			lifecycle.HookStartedAsMaster: {lifecycle.Shell("exit 4")},
		},
		Service: lifecycle.Service{Argv: []string{"/bin/sh", "-c", "exit 0"}},
		Logger:  log,
		Signals: make(chan os.Signal),
		Stdout:  io.Discard,
		Stderr:  io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code, _ := ctl.Run(ctx); code != lifecycle.ExitInitHookFailed {
		t.Errorf("Run = %d; want %d (init hook failed)", code, lifecycle.ExitInitHookFailed)
	}
	if !r.Close() {
		t.Fatal("Close = false; want every event sent")
	}
	evs, _ := in.snapshot()
	var found bool
	for _, ev := range evs {
		if ev.Message == "hook failed" {
			found = true
			wantTags(t, ev, map[string]string{"hook": "started_as_master", "member": "db-1", "service": "db", "environment": "prod"})
			if !strings.Contains(string(ev.Exception), "exit status 4") {
				t.Errorf("exception = %s; want the hook's exit status", ev.Exception)
			}
		}
	}
	if !found {
		t.Errorf("no %q event among %d; want one", "hook failed", len(evs))
	}
}
