package render_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/render"
	"github.com/ccctl/ccctl/lifecycle"
)

// controller is one member running a real lifecycle.Controller whose
// templates are rendered by a Renderer installed in its hooks.
type controller struct {
	dst, reloads string
	cancel       context.CancelFunc
	done         chan struct{}
	code         int
	err          error
}

// startController runs member id with a service made by argv from the path
// of the rendered file.
func startController(t *testing.T, store *memory.Store, id string, argv func(dst string) []string) *controller {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "conf.tmpl")
	c := &controller{dst: filepath.Join(dir, "conf"), reloads: filepath.Join(dir, "reloads"), done: make(chan struct{})}
	writeFile(t, src, "role={{.Role}} master={{.Master.ID}}@{{.Master.Address}}", 0o644)
	quiet := slog.New(slog.DiscardHandler)
	r, err := render.New([]render.Template{{Source: src, Destination: c.dst, Reload: "echo reloaded >> " + c.reloads}},
		render.WithLogger(quiet), render.WithReloadOutput(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	co, err := memory.New(store, memory.Config{Cluster: coordinator.Cluster{Environment: "test", Service: "db"}, ID: id, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { co.Close() })
	ctl, err := lifecycle.New(lifecycle.Config{
		Coordinator: co,
		Member:      coordinator.Member{Host: id + ".local", Address: "10.0.0." + id},
		Hooks:       r.Install(nil),
		Service:     lifecycle.Service{Argv: argv(c.dst)},
		Logger:      quiet,
		Signals:     make(chan os.Signal),
		Stdout:      io.Discard,
		Stderr:      io.Discard,
		GracePeriod: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.code, c.err = ctl.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			t.Errorf("controller %s did not return within 20s", id)
		}
	})
	return c
}

func (c *controller) stopAndWait(t *testing.T) (int, error) {
	t.Helper()
	c.cancel()
	return c.wait(t)
}

func (c *controller) wait(t *testing.T) (int, error) {
	t.Helper()
	select {
	case <-c.done:
		return c.code, c.err
	case <-time.After(20 * time.Second):
		t.Fatal("controller did not return within 20s")
		return 0, nil
	}
}

// waitContent polls path, bounded, until it holds want.
func waitContent(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q after 20s; want %q", path, b, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInstalledHookRendersBeforeTheService: on a real controller, the
// template is rendered with the init event's data before the service's
// first instruction, which checks it.
func TestInstalledHookRendersBeforeTheService(t *testing.T) {
	c := startController(t, memory.NewStore(), "1", func(dst string) []string {
		return []string{"/bin/sh", "-c", `test "$(cat '` + dst + `')" = "role=master master=1@10.0.0.1" || exit 9`}
	})
	if code, err := c.wait(t); code != 0 || err != nil {
		t.Errorf("Run = %d, %v; want 0, nil (9: the service did not find the rendered file)", code, err)
	}
}

// TestTemplatesFollowTheMaster: a slave's file points at the master; when
// the master stops, the slave's file is rendered again for its new role and
// its reload command runs once (the first render ran no reload: the service
// had not started; the moment without a master renders nothing).
func TestTemplatesFollowTheMaster(t *testing.T) {
	store := memory.NewStore()
	stopFile := filepath.Join(t.TempDir(), "stop")
	a := startController(t, store, "1", func(string) []string {
		return []string{"/bin/sh", "-c", `while [ ! -f '` + stopFile + `' ]; do sleep 0.01; done`}
	})
	waitContent(t, a.dst, "role=master master=1@10.0.0.1")
	b := startController(t, store, "2", func(string) []string { return []string{"/bin/sh", "-c", "sleep 60"} })
	waitContent(t, b.dst, "role=slave master=1@10.0.0.1")
	if _, err := os.Stat(b.reloads); !os.IsNotExist(err) {
		t.Errorf("reload ran for the first render (stat: %v); want it not run before the service started", err)
	}

	writeFile(t, stopFile, "", 0o644)
	if code, err := a.wait(t); code != 0 || err != nil {
		t.Fatalf("master's Run = %d, %v; want 0, nil", code, err)
	}
	waitContent(t, b.dst, "role=master master=2@10.0.0.2")
	waitContent(t, b.reloads, "reloaded\n")
	if _, err := b.stopAndWait(t); err != nil {
		t.Errorf("Run of the new master = %v; want nil", err)
	}
	if strings.Contains(readFile(t, b.dst), "master=1") {
		t.Errorf("file still points at the old master")
	}
}

// TestHookFailureOnlyFailsInit: a template that cannot be rendered fails an
// init hook (the service must not start without its configuration) but not
// a later event's, where the user's hooks that follow must still run; the
// failure is then logged at level error.
func TestHookFailureOnlyFailsInit(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "t")
	writeFile(t, src, "{{.Env.CCCTL_TEST_UNSET_VARIABLE}}", 0o644)
	logs := &strings.Builder{}
	r, err := render.New([]render.Template{{Source: src, Destination: filepath.Join(dir, "out")}},
		render.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	hook := r.Hook()
	ev := lifecycle.HookEvent{Name: lifecycle.HookStartedAsSlave, Role: coordinator.RoleSlave, InstanceID: "1",
		Master: coordinator.Member{ID: "2"}}
	if err := hook(testContext(t), ev); err == nil {
		t.Errorf("init hook = nil; want the render error")
	}
	ev.Name = lifecycle.HookMasterChanged
	if err := hook(testContext(t), ev); err != nil {
		t.Errorf("master_changed hook = %v; want nil", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "CCCTL_TEST_UNSET_VARIABLE") {
		t.Errorf("log = %q; want an error line naming the missing key", logs.String())
	}
	hooks := r.Install(map[lifecycle.HookName][]lifecycle.Hook{lifecycle.HookMasterChanged: {lifecycle.Shell("true")}})
	if got := len(hooks[lifecycle.HookMasterChanged]); got != 2 {
		t.Errorf("master_changed hooks after Install = %d; want 2 (render, then the user's)", got)
	}
	if got := len(hooks[lifecycle.HookStopping]); got != 0 {
		t.Errorf("stopping hooks after Install = %d; want 0", got)
	}
}
