package lifecycle_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/waitfor"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
	"github.com/ccctl/ccctl/lifecycle"
)

// TestActiveWithoutPorts: a member with no PortsWhenActive is active as
// soon as its service runs (the original's rule), so became_active runs,
// the record says active, and wait_for on its service returns.
func TestActiveWithoutPorts(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Service.Argv = []string{"sleep", "600"}
	}))
	got := a.waitLines(t, 3)
	if g, w := got[2].String(), "became_active role=master prev=master master=a tok members=a"; g != w {
		t.Errorf("third hook: got %q; want %q", g, w)
	}
	waitFor(t, "state active", func() bool { return a.ctl.Status().State == coordinator.StateActive })

	w, err := waitfor.New(waitfor.Config{
		Services: []string{testCluster.Service},
		Timeout:  waitTimeout,
		Logger:   discardLogger(),
		Open: func(ctx context.Context, service string) (waitfor.Cluster, error) {
			return memory.New(h.store, memory.Config{
				Cluster: coordinator.Cluster{Environment: testCluster.Environment, Service: service},
				ID:      "web-1", TTL: 3 * time.Second, Logger: discardLogger(),
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Errorf("wait_for %s: got %v; want nil", testCluster.Service, err)
	}
	a.stop(t)
}

// TestPauseAndResumeLogged: every member logs the cluster being paused and
// resumed, once each.
func TestPauseAndResumeLogged(t *testing.T) {
	h := newHarness(t)
	var buf testutil.Buffer
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	}))
	a.waitLines(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.coord.Pause(ctx); err != nil {
		t.Fatalf("pause: %v", err)
	}
	waitFor(t, "the pause logged", func() bool { return strings.Contains(buf.String(), "msg=\"cluster paused") })
	if err := a.coord.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	waitFor(t, "the resume logged", func() bool { return strings.Contains(buf.String(), "msg=\"cluster resumed\"") })
	a.stop(t)
	if n := strings.Count(buf.String(), "cluster paused"); n != 1 {
		t.Errorf("pause logged %d times; want once:\n%s", n, buf.String())
	}
}

// neverRan is an extension with one job that never ran.
type neverRan struct{ recorder }

func (*neverRan) Jobs() map[string]lifecycle.JobStatus {
	return map[string]lifecycle.JobStatus{"dump": {Result: "never ran"}}
}

// TestStatusJSONOfNothingYet: a job that never ran has no last_run (not
// year 1), and a member with no ports publishes "ports":[], not null.
func TestStatusJSONOfNothingYet(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.newMember("a", func(c *lifecycle.Config) {
		c.Extensions = append(c.Extensions, &neverRan{})
	}))
	a.waitLines(t, 2)
	b, err := json.Marshal(a.ctl.Status())
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "last_run") || !strings.Contains(s, `"jobs":{"dump":{"result":"never ran"}}`) {
		t.Errorf("status: got %s; want the job without last_run", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ms, err := a.coord.Members(ctx)
	if err != nil || len(ms) != 1 {
		t.Fatalf("members: got %v, %v; want one", ms, err)
	}
	if b, _ := json.Marshal(ms[0]); !strings.Contains(string(b), `"ports":[]`) {
		t.Errorf("record: got %s; want \"ports\":[]", b)
	}
	a.stop(t)
}
