package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/lifecycle"
)

// TestInitHookBeforeService: the init hook has returned before the
// service's first instruction, which checks a file the hook wrote last.
func TestInitHookBeforeService(t *testing.T) {
	h := newHarness(t)
	f := h.dir + "/init-done"
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Hooks[lifecycle.HookStartedAsMaster] = []lifecycle.Hook{lifecycle.Shell(`sleep 0.2; echo done > '` + f + `'`)}
		c.Service.Argv = []string{"/bin/sh", "-c", `test "$(cat '` + f + `')" = done || exit 9; exit 0`}
	}))
	if code, err := a.wait(t); code != 0 || err != nil {
		t.Errorf("Run: got %d, %v; want 0, nil (9: the service ran before the init hook finished)", code, err)
	}
}

// TestServiceExitResigns: the service exits on its own; the controller
// exits with its code and resigns, and the slave takes over at once (the
// fake clock never moves, so no lease expires).
func TestServiceExitResigns(t *testing.T) {
	h := newHarness(t)
	gofile := h.dir + "/go"
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Service.Argv = []string{"/bin/sh", "-c", `while [ ! -f '` + gofile + `' ]; do sleep 0.01; done; exit 7`}
	}))
	a.waitLines(t, 2)
	b := h.run("b")
	b.waitLines(t, 2)
	if err := os.WriteFile(gofile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, err := a.wait(t); code != 7 || err != nil {
		t.Errorf("Run: got %d, %v; want 7 (the service's code), nil", code, err)
	}
	returned := time.Now()
	var took time.Duration
	waitFor(t, "b to take over", func() bool {
		for _, l := range b.lines(t) {
			if l.Event == "transition_slave_to_master" {
				took = time.Since(returned)
				return true
			}
		}
		return false
	})
	t.Logf("a's Run returned to b's transition hook done: %v", took)
	if got := a.lines(t); got[len(got)-1].Event != "stopping" {
		t.Errorf("a's last hook: got %s; want stopping", got[len(got)-1].Event)
	}
}

// failing is an Extension that fails when fail is closed.
type failing struct{ fail chan struct{} }

func (f failing) Run(ctx context.Context) error {
	select {
	case <-f.fail:
		return errors.New("scheduler broke")
	case <-ctx.Done():
		return nil
	}
}

func (failing) RoleChanged(coordinator.Role, int64) {}

// TestControllerFailureTerminatesService: when the controller cannot go on
// (an extension fails), the service is terminated. (A lost session is not
// such a failure: see TestSlaveRidesThroughOutage.)
func TestControllerFailureTerminatesService(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(h *harness, m *member, ext failing)
		code int
	}{
		{"extension fails", func(h *harness, m *member, ext failing) { close(ext.fail) }, lifecycle.ExitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			pidfile := h.dir + "/pid"
			ext := failing{fail: make(chan struct{})}
			a := h.start(h.newMember("a", func(c *lifecycle.Config) {
				c.Service.Argv = []string{"/bin/sh", "-c", `echo $$ > '` + pidfile + `.tmp'; mv '` + pidfile + `.tmp' '` + pidfile + `'; exec sleep 600`}
				c.Extensions = append(c.Extensions, ext)
			}))
			waitFile(t, pidfile)
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			tc.fail(h, a, ext)
			code, err := a.wait(t)
			if code != tc.code || err == nil {
				t.Errorf("Run: got %d, %v; want %d and an error", code, err, tc.code)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("service %d after Run returned: kill(0) got %v; want ESRCH (gone)", pid, err)
			}
			if st := a.ctl.Status().State; st != coordinator.StateFailed {
				t.Errorf("state: got %s; want failed", st)
			}
		})
	}
}

// TestInitHookFails: the service never starts, the master resigns (the
// slave takes over with no clock advance), and Run returns 4.
func TestInitHookFails(t *testing.T) {
	h := newHarness(t)
	entered, release := make(chan struct{}), make(chan struct{})
	ran := h.dir + "/service-ran"
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Hooks[lifecycle.HookStartedAsMaster] = []lifecycle.Hook{lifecycle.HookFunc(func(ctx context.Context, ev lifecycle.HookEvent) error {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return errors.New("cannot initialise the data")
		})}
		c.Service.Argv = []string{"touch", ran}
	}))
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("init hook not entered")
	}
	b := h.run("b")
	b.waitLines(t, 2)
	close(release)
	code, err := a.wait(t)
	if code != lifecycle.ExitInitHookFailed || err == nil || !strings.Contains(err.Error(), "cannot initialise") {
		t.Errorf("Run: got %d, %v; want %d and the hook's error", code, err, lifecycle.ExitInitHookFailed)
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Errorf("service marker: got %v; want it absent (the service never started)", err)
	}
	// a's resignation and its record's removal both reach b; either hook
	// may run first.
	waitFor(t, "b to take over", func() bool {
		for _, l := range b.lines(t)[2:] {
			if l.Event == "transition_slave_to_master" {
				return true
			}
		}
		return false
	})
}

// TestStatusAndMetrics: Status and the Prometheus collectors follow the
// role.
func TestStatusAndMetrics(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewPedanticRegistry()
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Registerer = reg
		c.Locks = lockMap{"/data": true}
		c.Extensions = append(c.Extensions, jobs{})
	}))
	a.waitLines(t, 2)
	waitFor(t, "the extension to be told", func() bool { return len(a.ext.got()) == 1 })
	st := a.ctl.Status()
	if st.ID != "a" || st.Environment != "test" || st.Service != "db" || st.Role != coordinator.RoleMaster ||
		st.Master != "a" || st.Token <= 0 || st.Paused || !st.Locks["/data"] || st.Jobs["backup"].Result != "ok" {
		t.Errorf("Status: got %+v; want a master of test/db with its token, lock and job", st)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(js, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "environment", "service", "role", "state", "master", "token", "paused", "locks", "jobs"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("Status JSON %s: key %q missing", js, k)
		}
	}
	got := gather(t, reg)
	for _, want := range []string{
		`ccctl_is_master 1`,
		`ccctl_fencing_token ` + strconv.FormatInt(st.Token, 10),
		`ccctl_hook_runs_total{hook="start"} 1`,
		`ccctl_hook_runs_total{hook="started_as_master"} 1`,
		`ccctl_transitions_total 0`,
	} {
		if !got[want] {
			t.Errorf("metrics: %q missing from %v", want, got)
		}
	}
	if !got["ccctl_lease_seconds_left"] {
		t.Errorf("metrics: ccctl_lease_seconds_left missing from %v", got)
	}
	a.stop(t)
}

type lockMap map[string]bool

func (l lockMap) Locks() map[string]bool { return l }

type jobs struct{}

func (jobs) Run(ctx context.Context) error       { <-ctx.Done(); return nil }
func (jobs) RoleChanged(coordinator.Role, int64) {}
func (jobs) Jobs() map[string]lifecycle.JobStatus {
	return map[string]lifecycle.JobStatus{"backup": {Result: "ok"}}
}

// gather returns the registry's series as "name{labels} value" and "name".
func gather(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		out[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[fmt.Sprintf("%s %v", name, v)] = true
		}
	}
	return out
}

// TestServiceCannotStart: a service whose command does not exist gives 127,
// as a shell would.
func TestServiceCannotStart(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Service.Argv = []string{h.dir + "/no-such-command"}
	}))
	if code, err := a.wait(t); code != 127 || err == nil {
		t.Errorf("Run: got %d, %v; want 127 and an error", code, err)
	}
}
