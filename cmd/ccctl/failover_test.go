package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/config"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// memoryCluster is members registered on one memory store, and a handle
// of its own for the command under test, which registers nothing.
type memoryCluster struct {
	t     *testing.T
	store *memory.Store
}

var rankCluster = coordinator.Cluster{Environment: "test", Service: "db"}

func (mc *memoryCluster) handle(id string, r coordinator.Ranking) *memory.Coordinator {
	mc.t.Helper()
	co, err := memory.New(mc.store, memory.Config{Cluster: rankCluster, ID: id, TTL: 5 * time.Second, Ranking: r,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		mc.t.Fatalf("memory.New %s: %v", id, err)
	}
	mc.t.Cleanup(func() { co.Close() })
	return co
}

// add registers a slave with priority (0: never leads) and position (-1:
// unknown).
func (mc *memoryCluster) add(id string, priority int, position int64) *memory.Coordinator {
	mc.t.Helper()
	r := coordinator.Ranking{Priority: priority}
	if priority == 0 {
		r.Priority = coordinator.NeverLead
	}
	co := mc.handle(id, r)
	m := coordinator.Member{ID: id, Host: id, Role: coordinator.RoleSlave, State: coordinator.StateRunning, Priority: r.EffectivePriority()}
	if position >= 0 {
		m.Position, m.PositionAt = &position, time.Now()
	}
	if err := co.Register(context.Background(), m); err != nil {
		mc.t.Fatalf("register %s: %v", id, err)
	}
	return co
}

// refusal runs failover and returns its error line, failing unless it is
// a refusal (exit code 1).
func refusal(t *testing.T, coord clusterReader, maxLag int64, to string, force bool) string {
	t.Helper()
	var out, errOut bytes.Buffer
	err := failover(context.Background(), coord, maxLag, failoverRequest{to: to, force: force, wait: false, timeout: time.Second, out: &out, errOut: &errOut})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFailure {
		t.Fatalf("failover --to %s (force %v): got %v; want a refusal with exit code 1", to, force, err)
	}
	return err.Error() + "\n" + errOut.String()
}

// withoutFailover hides every method but clusterReader's: a backend that
// cannot force a leader.
type withoutFailover struct{ clusterReader }

func TestFailoverRefusals(t *testing.T) {
	mc := &memoryCluster{t: t, store: memory.NewStore()}
	mc.add("b", 1, 20)
	mc.add("c", 0, 1000)
	mc.add("d", 1, 995)
	cli := mc.handle("cli", coordinator.Ranking{})
	ctx := context.Background()

	if msg := refusal(t, cli, 100, "ghost", false); !strings.Contains(msg, "failover: no member \"ghost\"") && !strings.Contains(msg, "failover: no member ghost in the cluster") {
		t.Errorf("unknown member: got %q; want it named", msg)
	}
	if msg := refusal(t, cli, 100, "b", false); !strings.Contains(msg, "failover: b may not lead: lag 980 > maximum_lag 100; --force overrides") {
		t.Errorf("laggard: got %q; want its lag and --force", msg)
	}
	if msg := refusal(t, cli, 100, "c", false); !strings.Contains(msg, "failover: c may not lead: priority 0; --force overrides") {
		t.Errorf("priority 0: got %q; want the priority and --force", msg)
	}
	if msg := refusal(t, withoutFailover{cli}, 100, "b", true); !strings.Contains(msg, "failover: this backend cannot force a member to lead") || strings.Contains(msg, "warning") {
		t.Errorf("forced without Failoverer: got %q; want a clear error, and no warning (nothing was forced)", msg)
	}
	if msg := refusal(t, withoutFailover{cli}, 100, "d", false); !strings.Contains(msg, "this backend cannot force a member to lead") {
		t.Errorf("eligible member without Failoverer: got %q; want a clear error", msg)
	}

	// A master leads: switchover's business.
	a := mc.add("a", 1, 1000)
	if _, err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if msg := refusal(t, cli, 100, "d", false); !strings.Contains(msg, "failover: a is master; use ccctl switchover --to d for a handover (--force overrides)") {
		t.Errorf("with a master: got %q; want switchover named", msg)
	}
	var out bytes.Buffer
	if err := failover(ctx, cli, 100, failoverRequest{to: "a", out: &out, errOut: io.Discard}); err != nil || !strings.Contains(out.String(), "a is master (token") {
		t.Errorf("failover to the master: got %v %q; want it said, exit 0", err, out.String())
	}
	if err := cli.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if msg := refusal(t, cli, 100, "d", true); !strings.Contains(msg, "the cluster is paused; run ccctl resume first") {
		t.Errorf("paused: got %q; want resume named", msg)
	}
}

func TestStatusSaysWhyNobodyTakesOver(t *testing.T) {
	mc := &memoryCluster{t: t, store: memory.NewStore()}
	mc.add("b", 1, 20)
	mc.add("c", 0, 1000)
	cli := mc.handle("cli", coordinator.Ranking{})
	cfg := &config.Config{Cluster: rankCluster, MaximumLag: 100}
	none := func(context.Context) map[string]int64 { return nil }
	v, err := readView(context.Background(), cfg, cli, none, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := "no master: no eligible member (c: priority 0; b: lag 980 > maximum_lag 100); ccctl failover --to ID to force one"
	if v.Vacancy != want {
		t.Errorf("vacancy: got %q; want %q", v.Vacancy, want)
	}
	var b bytes.Buffer
	if err := printTable(&b, v, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) < 5 || lines[1] != want {
		t.Fatalf("table: want the vacancy on its second line:\n%s", b.String())
	}
	if !strings.Contains(lines[2], "PRIORITY") || !strings.Contains(lines[2], "POSITION") {
		t.Errorf("table: got titles %q; want PRIORITY and POSITION", lines[2])
	}
	for _, l := range lines[3:5] {
		f := strings.Fields(l)
		if f[0] == "b" && (f[5] != "1" || f[6] != "20") || f[0] == "c" && (f[5] != "0" || f[6] != "1000") {
			t.Errorf("table line %q: want b 1 20 and c 0 1000 in PRIORITY and POSITION", l)
		}
	}
	js, _ := json.Marshal(v)
	for _, w := range []string{`"priority":1,"position":20`, `"priority":0,"position":1000`, `"vacancy":"no master: no eligible member`, `"standings":[{"id":"c","eligible":false,"reason":"priority 0"}`} {
		if !strings.Contains(string(js), w) {
			t.Errorf("json: want %s in %s", w, js)
		}
	}

	mc.add("d", 1, 950)
	mc.add("e", 2, -1)
	v, _ = readView(context.Background(), cfg, cli, none, "", "")
	if want := "no master yet: d is the best candidate; not eligible: c: priority 0; b: lag 980 > maximum_lag 100; e: position unknown"; v.Vacancy != want {
		t.Errorf("vacancy: got %q; want %q", v.Vacancy, want)
	}
	if js, _ := json.Marshal(v.Members); strings.Contains(string(js), `"id":"e","host":"e","address":"","ports":[],"role":"slave","state":"running","started_at":"0001-01-01T00:00:00Z","version":"","priority":2,"position"`) {
		t.Errorf("json: member e with an unknown position has a position field: %s", js)
	}
	cfg.MaximumLag = 0
	v, _ = readView(context.Background(), cfg, cli, none, "", "")
	if want := "no master yet: d is the best candidate (then b, e); not eligible: c: priority 0"; v.Vacancy != want {
		t.Errorf("vacancy with no maximum lag: got %q; want %q", v.Vacancy, want)
	}
}

// TestFailoverOnEtcd: the refusals and the flags through the binary,
// against a real etcd.
func TestFailoverOnEtcd(t *testing.T) {
	tc := newTestCluster(t)
	tc.add(t, "m1", coordinator.RoleMaster, coordinator.StateActive)
	tc.add(t, "m2", coordinator.RoleSlave, coordinator.StateRunning)
	tc.addRanked(t, "m3", coordinator.Ranking{Priority: coordinator.NeverLead}, 0)

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"failover"}, 2, "failover: --to ID is required"},
		{[]string{"failover", "--to", "m2", "extra"}, 2, "unknown command"},
		{[]string{"failover", "--to", "m2", "--timeout", "soon"}, 2, "invalid argument"},
		{[]string{"failover", "--to", "m2"}, 1, "failover: m1 is master; use ccctl switchover --to m2 for a handover (--force overrides)"},
		{[]string{"failover", "--to", "ghost"}, 1, "failover: no member ghost in the cluster"},
		{[]string{"failover", "--to", "m1"}, 0, ""},
		{[]string{"switchover", "--force"}, 2, "switchover: --force needs --to ID"},
		{[]string{"switchover", "--to", "m3"}, 1, "switchover: m3 has priority 0 and never leads; --force overrides"},
		{[]string{"failover", "--to", "m2", "--maximum-lag", "-1"}, 2, `--maximum-lag: "-1": want a whole number`},
	} {
		r := ccctl(t, 30*time.Second, tc.env, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 && tt.code != 0 {
			t.Errorf("ccctl %s: got %d %q; want %d and one line with %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.want)
		}
	}

	// No master: a member of priority 0 is refused without --force.
	tc.members["m1"].Close()
	r := ccctl(t, 30*time.Second, tc.env, "status")
	if !strings.Contains(r.stdout, "no master") {
		t.Errorf("status with no master: got %q; want why nobody leads", r.stdout)
	}
	r = ccctl(t, 30*time.Second, tc.env, "failover", "--to", "m3", "--wait=false")
	if r.code != 1 || !strings.Contains(r.stderr, "failover: m3 may not lead: priority 0; --force overrides") {
		t.Errorf("failover --to m3: got %d %q; want 1 and priority 0", r.code, r.stderr)
	}
	r = ccctl(t, 30*time.Second, tc.env, "failover", "--to", "m3", "--force", "--wait=false")
	if _, ok := any(&etcd.Observer{}).(coordinator.Failoverer); !ok {
		if r.code != 1 || !strings.Contains(r.stderr, "this backend cannot force a member to lead") {
			t.Errorf("failover --force without Failoverer: got %d %q; want 1 and a clear error", r.code, r.stderr)
		}
	} else if r.code != 0 || !strings.Contains(r.stdout, "failover to m3 requested") || !strings.Contains(r.stderr, "warning: forcing m3 to lead") {
		t.Errorf("failover --force: got %d %q %q; want the request made", r.code, r.stdout, r.stderr)
	}
}

// TestRunPublishesPositionAndPriority: ccctl run hands the position
// command and the priority on; status shows them.
func TestRunPublishesPositionAndPriority(t *testing.T) {
	tc := newTestCluster(t)
	env := append(append([]string(nil), tc.env...), "CCCTL_INSTANCE_ID=p1", "CCCTL_PRIORITY=3", "CCCTL_POSITION_COMMAND=echo 77", "CCCTL_GRACE_PERIOD=2s")
	m := background(t, env, "run", "--", "sleep", "600")
	var v clusterView
	testutil.Eventually(t, 30*time.Second, "p1 at position 77 in status", func() bool {
		r := ccctl(t, 30*time.Second, tc.env, "status", "-o", "json")
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || len(v.Members) != 1 {
			return false
		}
		p := v.Members[0].Position
		return p != nil && *p == 77
	})
	if got := v.Members[0].Priority; got != 3 {
		t.Errorf("priority: got %d; want 3", got)
	}
	r := ccctl(t, 30*time.Second, tc.env, "status")
	if f := strings.Fields(strings.Split(r.stdout, "\n")[2]); len(f) < 7 || f[0] != "p1" || f[5] != "3" || f[6] != "77" {
		t.Errorf("status table: got %q; want p1 with priority 3 and position 77", r.stdout)
	}
	m.stop(t, syscall.SIGTERM, 30*time.Second)
}
