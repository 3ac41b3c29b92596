package waitfor_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/waitfor"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// logBuffer is a log destination safe for concurrent use.
type logBuffer struct{ testutil.Buffer }

// waitLog waits, bounded, until the log holds want.
func (b *logBuffer) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q within 10s:\n%s", want, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// member starts a member of service in environment prod and registers it
// with state.
func member(t *testing.T, store *memory.Store, service, id string, state coordinator.State) *memory.Coordinator {
	t.Helper()
	c, err := memory.New(store, memory.Config{
		Cluster: coordinator.Cluster{Environment: "prod", Service: service}, ID: id,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	setState(t, c, coordinator.RoleSlave, state)
	return c
}

func setState(t *testing.T, c *memory.Coordinator, role coordinator.Role, state coordinator.State) {
	t.Helper()
	if err := c.Register(testContext(t), coordinator.Member{ID: c.ID(), Role: role, State: state}); err != nil {
		t.Fatal(err)
	}
}

// becomeMaster makes c lead and publish role master with state.
func becomeMaster(t *testing.T, c *memory.Coordinator, state coordinator.State) {
	t.Helper()
	if _, err := c.Campaign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	setState(t, c, coordinator.RoleMaster, state)
}

// opener opens views on store's clusters of environment prod; its first
// call for failFirst fails, as an unreachable backend would.
type opener struct {
	store     *memory.Store
	failFirst string

	mu     sync.Mutex
	opened map[string]int
	views  []*memory.Coordinator
}

func (o *opener) open(ctx context.Context, service string) (waitfor.Cluster, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opened == nil {
		o.opened = make(map[string]int)
	}
	o.opened[service]++
	if service == o.failFirst && o.opened[service] == 1 {
		return nil, errors.New("backend unreachable")
	}
	c, err := memory.New(o.store, memory.Config{
		Cluster: coordinator.Cluster{Environment: "prod", Service: service}, ID: "waiter",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	o.views = append(o.views, c)
	return c, nil
}

func newWaiter(t *testing.T, cfg waitfor.Config) (*waitfor.Waiter, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := waitfor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w, logs
}

// start runs w.Wait in a goroutine; done yields its result, exited is
// closed when it returned.
func start(t *testing.T, w *waitfor.Waiter) (done <-chan error, exited <-chan struct{}) {
	t.Helper()
	d, e := make(chan error, 1), make(chan struct{})
	ctx := testContext(t)
	go func() {
		defer close(e)
		d <- w.Wait(ctx)
	}()
	t.Cleanup(func() { <-e })
	return d, e
}

// advanceUntilLog advances fake by step until the log holds want, bounded.
func advanceUntilLog(t *testing.T, fake *clock.Fake, step time.Duration, logs *logBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q within 10s:\n%s", want, logs.String())
		}
		fake.Advance(step)
		time.Sleep(10 * time.Millisecond)
	}
}

// advanceUntilDone advances fake by step until done yields, bounded.
func advanceUntilDone(t *testing.T, fake *clock.Fake, step time.Duration, done <-chan error) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		fake.Advance(step)
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("Wait did not return within 10s")
	return nil
}

func TestWaitsForActiveMasters(t *testing.T) {
	store := memory.NewStore()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	op := &opener{store: store, failFirst: "db"}
	w, logs := newWaiter(t, waitfor.Config{
		Services: []string{"db", "cache"}, Open: op.open, Clock: fake, Timeout: time.Hour,
	})

	db1 := member(t, store, "db", "db-1", coordinator.StateStarting)
	becomeMaster(t, db1, coordinator.StateRunning) // master, not active yet
	cache1 := member(t, store, "cache", "cache-1", coordinator.StateStarting)
	becomeMaster(t, cache1, coordinator.StateRunning)
	member(t, store, "cache", "cache-2", coordinator.StateActive) // an active slave is not enough

	done, exited := start(t, w)
	if !fake.BlockUntil(3, exited) {
		t.Fatal("Wait returned before arming its timers")
	}
	logs.waitLog(t, "backend unreachable")

	// Several looks later, nothing is up yet.
	for range 3 {
		fake.Advance(time.Second)
	}
	select {
	case err := <-done:
		t.Fatalf("Wait = %v while no master was active; want it still waiting", err)
	case <-time.After(50 * time.Millisecond):
	}

	setState(t, db1, coordinator.RoleMaster, coordinator.StateActive)
	advanceUntilLog(t, fake, time.Second, logs, `awaited service has an active master" service=db`)
	fake.Advance(waitfor.DefaultLogInterval)
	logs.waitLog(t, `still waiting for services" awaiting=cache `)
	select {
	case err := <-done:
		t.Fatalf("Wait = %v with cache not up; want it still waiting", err)
	default:
	}

	setState(t, cache1, coordinator.RoleMaster, coordinator.StateActive)
	if err := advanceUntilDone(t, fake, time.Second, done); err != nil {
		t.Fatalf("Wait = %v; want nil once both masters are active", err)
	}
	for _, v := range op.views {
		select {
		case <-v.Done():
		default:
			t.Errorf("view of %s still open after Wait; want it closed", v.Cluster())
		}
	}
}

func TestTimeout(t *testing.T) {
	store := memory.NewStore()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	op := &opener{store: store}
	w, logs := newWaiter(t, waitfor.Config{Services: []string{"db"}, Open: op.open, Clock: fake})
	member(t, store, "db", "db-1", coordinator.StateActive) // a member, but no master

	done, exited := start(t, w)
	if !fake.BlockUntil(3, exited) {
		t.Fatal("Wait returned before arming its timers")
	}
	fake.Advance(waitfor.DefaultLogInterval)
	logs.waitLog(t, `still waiting for services" awaiting=db `)

	fake.Advance(waitfor.DefaultTimeout - waitfor.DefaultLogInterval)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10s after the timeout passed")
	}
	if !errors.Is(err, waitfor.ErrTimeout) || !strings.Contains(err.Error(), "db") {
		t.Errorf("Wait = %v; want ErrTimeout naming db", err)
	}
}

func TestContextCancelled(t *testing.T) {
	store := memory.NewStore()
	op := &opener{store: store}
	w, _ := newWaiter(t, waitfor.Config{Services: []string{"db"}, Open: op.open, Clock: clock.NewFake(time.Unix(0, 0))})
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() { done <- w.Wait(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait = %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10s after cancel")
	}
}

func TestNothingToWaitFor(t *testing.T) {
	w, _ := newWaiter(t, waitfor.Config{})
	if err := w.Wait(testContext(t)); err != nil {
		t.Errorf("Wait = %v; want nil with no services", err)
	}
}

func TestNewValidates(t *testing.T) {
	open := func(context.Context, string) (waitfor.Cluster, error) { return nil, errors.New("unused") }
	tests := []struct {
		name string
		cfg  waitfor.Config
		want string
	}{
		{"no opener", waitfor.Config{Services: []string{"db"}}, "no way to open"},
		{"bad name", waitfor.Config{Services: []string{"db/x"}, Open: open}, "service"},
		{"twice", waitfor.Config{Services: []string{"db", "db"}, Open: open}, "twice"},
		{"negative timeout", waitfor.Config{Timeout: -time.Second}, "timeout"},
		{"poll above timeout", waitfor.Config{Timeout: time.Second, PollInterval: 2 * time.Second}, "poll interval"},
		{"log below poll", waitfor.Config{PollInterval: 2 * time.Second, LogInterval: time.Second}, "log interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := waitfor.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseServices(t *testing.T) {
	got := waitfor.ParseServices(" db, cache ,,queue\tsearch ")
	want := []string{"db", "cache", "queue", "search"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ParseServices = %q; want %q", got, want)
	}
}
