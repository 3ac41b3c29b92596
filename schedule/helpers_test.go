package schedule_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/schedule"
)

// wait bounds every wait of these tests.
const wait = 10 * time.Second

// t0 is a whole hour; the tests' schedules fire on whole minutes.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// logSink collects log output and wakes waiters on every write.
type logSink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	kick chan struct{}
}

func newLogSink() *logSink { return &logSink{kick: make(chan struct{}, 1)} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logSink) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// waitFor waits until the log holds every one of subs on one line.
func (l *logSink) waitFor(t *testing.T, subs ...string) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				return
			}
		}
		select {
		case <-l.kick:
		case <-deadline.C:
			t.Fatalf("log: got no line with %q within %v; log:\n%s", subs, wait, l.String())
		}
	}
}

// start runs s until the test ends or the returned stop is called; stop
// returns once Run has returned.
func start(t *testing.T, s *schedule.Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: got %v; want nil", err)
				}
			case <-time.After(wait):
				t.Errorf("Run did not return within %v of its context's end", wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitTimers waits until at least n timers are armed on clk.
func waitTimers(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	done := make(chan struct{})
	tm := time.AfterFunc(wait, func() { close(done) })
	defer tm.Stop()
	if !clk.BlockUntil(n, done) {
		t.Fatalf("timers armed: got %d within %v; want %d", clk.Timers(), wait, n)
	}
}

// waitIdle waits until the scheduler reports no run of job in progress.
func waitIdle(t *testing.T, s *schedule.Scheduler, job string) schedule.Status {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		st := s.Status()[job]
		if !st.Running {
			return st
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("job %s still running after %v", job, wait)
		}
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("%s: nothing within %v", what, wait)
		var zero T
		return zero
	}
}

// blocker is a Go job that reports its start and its end and runs until
// released or cancelled.
type blocker struct {
	started chan schedule.RunInfo
	ended   chan error // context.Cause when cancelled, nil when released
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan schedule.RunInfo, 100), ended: make(chan error, 100), release: make(chan struct{}, 100)}
}

func (b *blocker) run(ctx context.Context) error {
	ri, _ := schedule.RunInfoFrom(ctx)
	b.started <- ri
	select {
	case <-b.release:
		b.ended <- nil
		return nil
	case <-ctx.Done():
		b.ended <- context.Cause(ctx)
		return context.Cause(ctx)
	}
}

// attemptLog records slot claim attempts as "member job slot won".
type attemptLog struct {
	mu       sync.Mutex
	attempts []string
}

func (l *attemptLog) add(member, job string, slot time.Time, won bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts = append(l.attempts, fmt.Sprintf("%s %s %s %v", member, job, slot.UTC().Format(time.RFC3339Nano), won))
}

func (l *attemptLog) Attempts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.attempts...)
}

// waitAttempt waits until a claim attempt starting with prefix was made.
func (l *attemptLog) waitAttempt(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		for _, a := range l.Attempts() {
			if strings.HasPrefix(a, prefix) {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("claim attempts: got %q within %v; want one starting %q", l.Attempts(), wait, prefix)
		}
	}
}

// recording wraps a backend's SlotClaimer to log its attempts.
func recording(inner coordinator.SlotClaimer, member string, l *attemptLog) coordinator.SlotClaimer {
	return claimerFunc(func(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error) {
		won, err := inner.ClaimSlot(ctx, job, slot, retention)
		if err == nil {
			l.add(member, job, slot, won)
		}
		return won, err
	})
}

// claimStore is a cluster-wide record of slot claims for tests that do not
// need a backend.
type claimStore struct {
	attemptLog
	mu    sync.Mutex
	taken map[string]bool
}

func newClaimStore() *claimStore { return &claimStore{taken: map[string]bool{}} }

func (c *claimStore) For(member string) coordinator.SlotClaimer {
	return claimerFunc(func(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		key := job + " " + slot.UTC().Format(time.RFC3339Nano)
		won := !c.taken[key]
		c.taken[key] = true
		c.add(member, job, slot, won)
		return won, nil
	})
}

type claimerFunc func(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error)

func (f claimerFunc) ClaimSlot(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error) {
	return f(ctx, job, slot, retention)
}

// metricValue returns the value of the counter or gauge name for job, or
// the sample count of a histogram.
func metricValue(t *testing.T, g prometheus.Gatherer, name, job string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "job" && l.GetValue() == job {
					switch {
					case m.Counter != nil:
						return m.Counter.GetValue()
					case m.Gauge != nil:
						return m.Gauge.GetValue()
					case m.Histogram != nil:
						return float64(m.Histogram.GetSampleCount())
					}
				}
			}
		}
	}
	return 0
}
