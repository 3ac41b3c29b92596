package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
	"github.com/ccctl/ccctl/lifecycle"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 20 * time.Second

var testCluster = coordinator.Cluster{Environment: "test", Service: "db"}

// harness is one cluster of in-process members on the memory backend with a
// fake clock.
type harness struct {
	t     *testing.T
	clk   *clock.Fake
	store *memory.Store
	dir   string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return &harness{t: t, clk: clk, store: memory.NewStore(memory.WithClock(clk)), dir: t.TempDir()}
}

// member is one running Controller.
type member struct {
	id    string
	coord *memory.Coordinator // nil on other backends
	ctl   *lifecycle.Controller
	log   string // the hook log
	ext   *recorder

	cancel context.CancelFunc
	done   chan struct{}
	code   int
	err    error
}

// logHook appends one line per hook run to path: the CC_* values.
func logHook(path string) lifecycle.Hook {
	return lifecycle.Shell(`printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$CC_EVENT" "$CC_ROLE" "$CC_PREVIOUS_ROLE" "$CC_MASTER_ID" "$CC_FENCING_TOKEN" "$CC_MEMBERS" "$CC_MEMBERS_ADDED" "$CC_MEMBERS_REMOVED" >> '` + path + `'`)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newMember opens a coordinator for id and builds its controller with a
// log hook on every event; edit may change the configuration.
func (h *harness) newMember(id string, edit func(*lifecycle.Config)) *member {
	h.t.Helper()
	co, err := memory.New(h.store, memory.Config{Cluster: testCluster, ID: id, TTL: 3 * time.Second, Logger: discardLogger()})
	if err != nil {
		h.t.Fatalf("memory.New(%s): %v", id, err)
	}
	h.t.Cleanup(func() { co.Close() })
	m := h.newMemberOn(co, edit)
	m.coord = co
	return m
}

// newMemberOn builds a controller on co, which may be of any backend.
func (h *harness) newMemberOn(co coordinator.Coordinator, edit func(*lifecycle.Config)) *member {
	h.t.Helper()
	id := co.ID()
	m := &member{id: id, log: filepath.Join(h.dir, id+".log"), ext: &recorder{}, done: make(chan struct{})}
	hooks := map[lifecycle.HookName][]lifecycle.Hook{}
	for _, n := range lifecycle.HookNames {
		hooks[n] = []lifecycle.Hook{logHook(m.log)}
	}
	cfg := lifecycle.Config{
		Coordinator: co,
		Member:      coordinator.Member{Host: id + ".local", Address: "10.0.0." + id[len(id)-1:], Version: "test"},
		Hooks:       hooks,
		Extensions:  []lifecycle.Extension{m.ext},
		Logger:      testLogger(h.t),
		Clock:       h.clk,
		Signals:     make(chan os.Signal),
		GracePeriod: 2 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	ctl, err := lifecycle.New(cfg)
	if err != nil {
		h.t.Fatalf("lifecycle.New(%s): %v", id, err)
	}
	m.ctl = ctl
	return m
}

// start runs the member's controller in the background.
func (h *harness) start(m *member) *member {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		m.code, m.err = m.ctl.Run(ctx)
	}()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-m.done:
		case <-time.After(waitTimeout):
			h.t.Errorf("member %s: Run did not return", m.id)
		}
	})
	return m
}

// run starts a new member with the default configuration.
func (h *harness) run(id string) *member { return h.start(h.newMember(id, nil)) }

// stop cancels the member's context and waits for Run to return.
func (m *member) stop(t *testing.T) (int, error) {
	t.Helper()
	m.cancel()
	return m.wait(t)
}

// exited reports whether Run has returned.
func (m *member) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// wait waits for Run to return.
func (m *member) wait(t *testing.T) (int, error) {
	t.Helper()
	select {
	case <-m.done:
		return m.code, m.err
	case <-time.After(waitTimeout):
		t.Fatalf("member %s: Run did not return within %v", m.id, waitTimeout)
		return 0, nil
	}
}

// hookLine is one line of a hook log.
type hookLine struct {
	Event, Role, Prev, Master, Token string
	Members, Added, Removed          []string
}

// String is the line as the tables spell it, the token shown as "tok"
// when set.
func (l hookLine) String() string {
	s := fmt.Sprintf("%s role=%s prev=%s master=%s", l.Event, l.Role, l.Prev, l.Master)
	if l.Token != "" {
		s += " tok"
	}
	s += " members=" + strings.Join(l.Members, ",")
	if l.Added != nil {
		s += " added=" + strings.Join(l.Added, ",")
	}
	if l.Removed != nil {
		s += " removed=" + strings.Join(l.Removed, ",")
	}
	return s
}

func ids(t *testing.T, js string) []string {
	t.Helper()
	if js == "" {
		return nil
	}
	var ms []coordinator.Member
	if err := json.Unmarshal([]byte(js), &ms); err != nil {
		t.Fatalf("decode members %q: %v", js, err)
	}
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// lines reads the member's hook log.
func (m *member) lines(t *testing.T) []hookLine {
	t.Helper()
	b, err := os.ReadFile(m.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []hookLine
	for _, s := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if s == "" {
			continue
		}
		f := strings.Split(s, "|")
		if len(f) != 8 {
			t.Fatalf("hook log line %q: got %d fields; want 8", s, len(f))
		}
		out = append(out, hookLine{f[0], f[1], f[2], f[3], f[4], ids(t, f[5]), ids(t, f[6]), ids(t, f[7])})
	}
	return out
}

// waitLines waits until the member's hook log has at least n lines and
// returns them.
func (m *member) waitLines(t *testing.T, n int) []hookLine {
	t.Helper()
	var got []hookLine
	waitFor(t, fmt.Sprintf("%d hook runs on %s", n, m.id), func() bool {
		got = m.lines(t)
		return len(got) >= n
	})
	return got
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, waitTimeout, what, cond)
}

// recorder is an Extension that records the roles it is told.
type recorder struct {
	mu    sync.Mutex
	roles []string
}

func (r *recorder) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (r *recorder) RoleChanged(role coordinator.Role, token int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := string(role)
	if token != 0 {
		s += " tok"
	}
	r.roles = append(r.roles, s)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.roles...)
}

// testLogger logs to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func strs(ls []hookLine) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.String()
	}
	return out
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}
