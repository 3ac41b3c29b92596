package fslock_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/fslock"
)

// lineWaiter is a slog handler that signals the first record whose message
// is msg.
type lineWaiter struct {
	msg  string
	once *sync.Once
	seen chan struct{}
}

func newLineWaiter(msg string) lineWaiter {
	return lineWaiter{msg: msg, once: new(sync.Once), seen: make(chan struct{})}
}

func (w lineWaiter) Enabled(context.Context, slog.Level) bool { return true }
func (w lineWaiter) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w lineWaiter) WithGroup(string) slog.Handler            { return w }
func (w lineWaiter) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, w.msg) {
		w.once.Do(func() { close(w.seen) })
	}
	return nil
}

// BenchmarkManagerHandover measures how long a running Manager, with its
// default settings, takes to get a lock after the other holder released it:
// the handover latency a member waiting for a filesystem lock sees. It is
// reported as ms/handover.
func BenchmarkManagerHandover(b *testing.B) {
	dir := b.TempDir()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		holder, err := fslock.TryLock(dir, fslock.Owner{ID: "holder"})
		if err != nil {
			b.Fatal(err)
		}
		tried := newLineWaiter("filesystem lock not taken")
		taken := make(chan time.Time, 1)
		m, err := fslock.NewManager([]string{dir}, fslock.ManagerOptions{
			Owner:    fslock.Owner{ID: "waiter"},
			Logger:   slog.New(tried),
			OnChange: func(_ string, held bool) { taken <- time.Now() },
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		select {
		case <-tried.seen:
		case <-time.After(10 * time.Second):
			b.Fatal("the manager made no attempt within 10s")
		}
		released := time.Now()
		if err := holder.Unlock(); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-taken:
			total += at.Sub(released)
		case <-time.After(20 * time.Second):
			b.Fatal("the manager did not take the released lock within 20s")
		}
		cancel()
		<-done
		m.Close()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/handover")
}

// TestManagerTakesLockWhenHolderDies: a running Manager waiting for a lock
// that another process holds takes it within milliseconds of that process's
// death, with no retry: its clock is a fake one that never moves.
func TestManagerTakesLockWhenHolderDies(t *testing.T) {
	dir := t.TempDir()
	holder, _ := startHolder(t, dir)
	tried := newLineWaiter("filesystem lock not taken")
	taken := make(chan time.Time, 1)
	m, err := fslock.NewManager([]string{dir}, fslock.ManagerOptions{
		Owner:    fslock.Owner{ID: "waiter"},
		Clock:    clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		Logger:   slog.New(tried),
		OnChange: func(_ string, held bool) { taken <- time.Now() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of the cancellation")
		}
	}()
	select {
	case <-tried.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the manager made no attempt within 10s")
	}
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case at := <-taken:
		d := at.Sub(killed)
		t.Logf("lock taken %v after the holder's SIGKILL", d)
		if d > 500*time.Millisecond {
			t.Errorf("lock taken %v after the holder died; want within 500ms", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lock not taken within 10s of the holder's death")
	}
	if o, err := fslock.ReadOwner(dir); err != nil || o.ID != "waiter" {
		t.Errorf("owner: got %+v, %v; want waiter", o, err)
	}
}

// TestAcquireCancelled: a waiting Acquire returns at once when its context
// is cancelled, naming the holder, and leaves no lock behind.
func TestAcquireCancelled(t *testing.T) {
	dir := t.TempDir()
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "first"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := fslock.Acquire(ctx, dir, fslock.Owner{ID: "second"})
		got <- err
	}()
	cancel()
	cancelled := time.Now()
	select {
	case err := <-got:
		var le *fslock.LockedError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &le) || le.Owner.ID != "first" {
			t.Errorf("Acquire cancelled: got %v; want Canceled and a *LockedError naming first", err)
		}
		if d := time.Since(cancelled); d > 500*time.Millisecond {
			t.Errorf("Acquire returned %v after the cancellation; want at once", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return within 10s of the cancellation")
	}
	l.Unlock()
	l2, err := fslock.TryLock(dir, fslock.Owner{ID: "third"})
	if err != nil {
		t.Fatalf("TryLock after the cancelled wait: %v", err)
	}
	l2.Unlock()
}

// TestManagerWait: Wait takes the locks in their order, never a later one
// while it waits for an earlier one, and returns once it holds them all; a
// cancelled Wait names the holder.
func TestManagerWait(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	holder, _ := startHolder(t, a)
	waiting := newLineWaiter("waiting for filesystem lock")
	m, err := fslock.NewManager([]string{a, b}, fslock.ManagerOptions{Owner: fslock.Owner{ID: "waiter"}, Logger: slog.New(waiting)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = m.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, fslock.ErrLocked) {
		t.Fatalf("Wait while a is held: got %v; want DeadlineExceeded and ErrLocked", err)
	}
	if m.Held(b) {
		t.Errorf("b held while a was awaited; want b taken only after a")
	}

	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got <- m.Wait(ctx)
	}()
	select {
	case <-waiting.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not start waiting within 10s")
	}
	holder.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Wait after the holder died: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10s of the holder's death")
	}
	if !m.Held(a) || !m.Held(b) {
		t.Errorf("after Wait: Status() = %v; want both held", m.Status())
	}

	m2, err := fslock.NewManager([]string{filepath.Join(root, "missing")}, fslock.ManagerOptions{Logger: slog.New(waiting)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Wait(context.Background()); err == nil {
		t.Error("Wait on a missing directory: got nil; want an error at once")
	}
}
