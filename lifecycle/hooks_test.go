package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/lifecycle"
)

func TestEnviron(t *testing.T) {
	pos := int64(7)
	a := coordinator.Member{ID: "a", Host: "a.local", Address: "10.0.0.1", Role: coordinator.RoleMaster, Priority: 1}
	b := coordinator.Member{ID: "b", Host: "b.local", Address: "10.0.0.2", Role: coordinator.RoleSlave, Priority: 1, Position: &pos}
	ev := lifecycle.HookEvent{
		Name: lifecycle.HookMembersAdded, Role: coordinator.RoleSlave, PreviousRole: coordinator.RoleSlave,
		InstanceID: "b", Environment: "prod", Service: "db", Master: a, Token: 42,
		Members: []coordinator.Member{a, b}, Added: []coordinator.Member{a}, Position: &pos,
	}
	got := ev.Environ()
	sort.Strings(got)
	want := []string{
		"CC_ENVIRONMENT=prod",
		"CC_EVENT=members_added",
		"CC_FENCING_TOKEN=42",
		"CC_INSTANCE_ID=b",
		"CC_MASTER_ADDRESS=10.0.0.1",
		"CC_MASTER_HOST=a.local",
		"CC_MASTER_ID=a",
		`CC_MEMBERS=[{"id":"a","host":"a.local","address":"10.0.0.1","ports":null,"role":"master","state":"","started_at":"0001-01-01T00:00:00Z","version":"","priority":1},{"id":"b","host":"b.local","address":"10.0.0.2","ports":null,"role":"slave","state":"","started_at":"0001-01-01T00:00:00Z","version":"","priority":1,"position":7}]`,
		`CC_MEMBERS_ADDED=[{"id":"a","host":"a.local","address":"10.0.0.1","ports":null,"role":"master","state":"","started_at":"0001-01-01T00:00:00Z","version":"","priority":1}]`,
		"CC_MEMBERS_REMOVED=[]",
		"CC_POSITION=7",
		"CC_PREVIOUS_ROLE=slave",
		"CC_ROLE=slave",
		"CC_SERVICE=db",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Environ:\n got %q\nwant %q", got, want)
	}
	ev.Name, ev.Token, ev.Position = lifecycle.HookStopping, 0, nil
	if env := strings.Join(ev.Environ(), "\n"); !strings.Contains(env, "\nCC_POSITION=\n") {
		t.Errorf("Environ with no position: got %q; want CC_POSITION empty", env)
	}
	for _, kv := range ev.Environ() {
		if strings.HasPrefix(kv, "CC_MEMBERS_") {
			t.Errorf("Environ of %s: got %s; want no CC_MEMBERS_ADDED/REMOVED", ev.Name, kv)
		}
		if strings.HasPrefix(kv, "CC_FENCING_TOKEN=") && kv != "CC_FENCING_TOKEN=" {
			t.Errorf("Environ with no token: got %s; want CC_FENCING_TOKEN=", kv)
		}
	}
}

func TestCommandHook(t *testing.T) {
	var out bytes.Buffer
	ev := lifecycle.HookEvent{Name: lifecycle.HookStart, InstanceID: "a", Stdout: &out}
	if err := lifecycle.Command([]string{"sh", "-c", `echo "$CC_EVENT $CC_INSTANCE_ID"`}).RunHook(context.Background(), ev); err != nil {
		t.Fatalf("RunHook: %v", err)
	}
	if got := out.String(); got != "start a\n" {
		t.Errorf("output: got %q; want %q", got, "start a\n")
	}
	err := lifecycle.Shell("exit 3").RunHook(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing hook: got %v; want an error saying exit status 3", err)
	}
	if err := lifecycle.Command([]string{"/nonexistent/hook"}).RunHook(context.Background(), ev); err == nil {
		t.Errorf("missing command: got nil; want an error")
	}
}

// TestHookTimeout: a hook is stopped when its timeout passes on the
// controller's clock, fails the init, and the service never starts.
func TestHookTimeout(t *testing.T) {
	h := newHarness(t)
	started := h.dir + "/hook-started"
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Hooks[lifecycle.HookStartedAsMaster] = []lifecycle.Hook{lifecycle.WithTimeout(
			lifecycle.Shell(`touch '`+started+`'; exec sleep 600`), 30*time.Second)}
		c.Service.Argv = []string{"touch", h.dir + "/service-ran"}
	}))
	waitFile(t, started)
	h.clk.Advance(29 * time.Second)
	select {
	case <-a.done:
		t.Fatalf("Run returned before the hook's timeout: %d, %v", a.code, a.err)
	default:
	}
	waitFor(t, "the hook to time out", func() bool {
		h.clk.Advance(time.Second)
		return a.exited()
	})
	if !errors.Is(a.err, lifecycle.ErrHookTimeout) || a.code != lifecycle.ExitInitHookFailed {
		t.Errorf("Run: got %d, %v; want %d and ErrHookTimeout", a.code, a.err, lifecycle.ExitInitHookFailed)
	}
	if _, err := os.Stat(h.dir + "/service-ran"); !os.IsNotExist(err) {
		t.Errorf("service marker: got %v; want it absent", err)
	}
}

// TestHooksSerialized: hooks of many changes never overlap, run in the
// order of their list, and the first failure ends the list.
func TestHooksSerialized(t *testing.T) {
	h := newHarness(t)
	var running, maxRunning atomic.Int32
	var mu sync.Mutex
	var order []string
	var added, removed atomic.Int32
	record := func(s string, fail bool) lifecycle.Hook {
		return lifecycle.HookFunc(func(ctx context.Context, ev lifecycle.HookEvent) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond) // give an overlap the chance to show
			mu.Lock()
			order = append(order, string(ev.Name)+":"+s)
			mu.Unlock()
			if s == "1" {
				added.Add(int32(len(ev.Added)))
				removed.Add(int32(len(ev.Removed)))
			}
			if fail {
				return errors.New("fails")
			}
			return nil
		})
	}
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		for _, n := range []lifecycle.HookName{lifecycle.HookMembersAdded, lifecycle.HookMembersRemoved} {
			c.Hooks[n] = []lifecycle.Hook{record("1", false), record("2", n == lifecycle.HookMembersRemoved), record("3", false)}
		}
	}))
	a.waitLines(t, 2)
	const n = 5
	var others []*member
	for i := 0; i < n; i++ {
		others = append(others, h.run("m"+string(rune('0'+i))))
	}
	waitFor(t, "members_added hooks for every member", func() bool { return added.Load() == n })
	for _, o := range others {
		o.stop(t)
	}
	waitFor(t, "members_removed hooks for every member", func() bool { return removed.Load() == n })
	a.stop(t)
	if m := maxRunning.Load(); m != 1 {
		t.Errorf("hooks running at once: got %d; want 1", m)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range order {
		name, idx, _ := strings.Cut(s, ":")
		want := map[string]string{"1": "", "2": "1", "3": "2"}[idx]
		if want != "" && (i == 0 || order[i-1] != name+":"+want) {
			t.Errorf("hook order: %q at %d follows %q; want %s:%s", s, i, order[max(i-1, 0)], name, want)
		}
		if s == "members_removed:3" {
			t.Errorf("hook order: %q ran; want the list to end at the failing hook 2", s)
		}
	}
}
