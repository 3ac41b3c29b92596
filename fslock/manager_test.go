package fslock_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/fslock"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// changeLog records OnChange calls.
type changeLog struct {
	mu  sync.Mutex
	got []string
}

func (c *changeLog) record(dir string, held bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, fmt.Sprintf("%s=%v", filepath.Base(dir), held))
}

func (c *changeLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

// tick advances the fake clock by d and waits until the manager's Run has
// made its attempt and re-armed its timer.
func tick(t *testing.T, fake *clock.Fake, d time.Duration) {
	t.Helper()
	fake.Advance(d)
	done := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() { close(done) })
	defer timer.Stop()
	if !fake.BlockUntil(1, done) {
		t.Fatal("manager did not re-arm its retry timer within 10s")
	}
}

func TestManager(t *testing.T) {
	root := t.TempDir()
	a, b, c := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// b is held by another process; c does not exist yet.
	_, release := startHolder(t, b)

	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var changes changeLog
	m, err := fslock.NewManager([]string{a, b, c}, fslock.ManagerOptions{
		Owner:    fslock.Owner{ID: "member-1"},
		Retry:    time.Second,
		Clock:    fake,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnChange: changes.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	if got := m.Attempt(); got != 1 {
		t.Errorf("first Attempt holds %d; want 1", got)
	}
	want := map[string]bool{a: true, b: false, c: false}
	if got := m.Status(); !maps.Equal(got, want) {
		t.Errorf("Status() = %v; want %v", got, want)
	}
	if !m.Held(a+"/") || m.Held(b) || m.Held(filepath.Join(root, "unmanaged")) {
		t.Errorf("Held(a, b, unmanaged) = %v, %v, %v; want true, false, false", m.Held(a), m.Held(b), m.Held(filepath.Join(root, "unmanaged")))
	}
	if got := changes.take(); !slices.Equal(got, []string{"a=true"}) {
		t.Errorf("changes %v; want [a=true]", got)
	}
	if o, err := fslock.ReadOwner(a); err != nil || o.ID != "member-1" || !o.AcquiredAt.Equal(fake.Now()) {
		t.Errorf("owner of a: %+v, %v; want member-1 acquired at %v", o, err, fake.Now())
	}

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("Run returned %v; want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of the cancellation")
		}
	}()
	done := make(chan struct{})
	if !fake.BlockUntil(1, done) {
		t.Fatal("Run armed no timer")
	}

	// The other process releases b, and c appears: both are taken at the
	// next retry.
	release.Close()
	if err := os.Mkdir(c, 0o755); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !m.Held(b) || !m.Held(c) {
		if time.Now().After(deadline) {
			t.Fatalf("Status() = %v 10s after b was released and c created; want all held", m.Status())
		}
		tick(t, fake, time.Second)
	}
	// b is released asynchronously, so b and c may be taken in either order.
	if got := slices.Sorted(slices.Values(changes.take())); !slices.Equal(got, []string{"b=true", "c=true"}) {
		t.Errorf("changes %v; want b=true and c=true", got)
	}

	// a's lock file is deleted and another holder locks the new file: the
	// manager reports a as lost.
	if err := os.Remove(filepath.Join(a, fslock.FileName)); err != nil {
		t.Fatal(err)
	}
	other, err := fslock.TryLock(a, fslock.Owner{ID: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	tick(t, fake, time.Second)
	if m.Held(a) {
		t.Errorf("Held(a) after its lock file was replaced and taken = true; want false")
	}
	if got := changes.take(); !slices.Equal(got, []string{"a=false"}) {
		t.Errorf("changes %v; want [a=false]", got)
	}
	// Run waits for a: it is taken as soon as the intruder leaves, with no
	// retry.
	other.Unlock()
	testutil.Eventually(t, 10*time.Second, "a taken after the intruder left", func() bool { return m.Held(a) })
	if o, err := fslock.ReadOwner(a); err != nil || !o.AcquiredAt.Equal(fake.Now()) {
		t.Errorf("owner of a after retaking: %+v, %v; want acquired at %v", o, err, fake.Now())
	}

	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, d := range []string{a, b, c} {
		l, err := fslock.TryLock(d, fslock.Owner{ID: "after"})
		if err != nil {
			t.Errorf("TryLock(%s) after Close: %v; want the lock", d, err)
			continue
		}
		l.Unlock()
	}
	if got := m.Attempt(); got != 0 {
		t.Errorf("Attempt after Close holds %d; want 0", got)
	}
}

func TestNewManagerValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		dirs []string
		opts fslock.ManagerOptions
		ok   bool
	}{
		{"good", []string{"/a", "/b"}, fslock.ManagerOptions{}, true},
		{"none", nil, fslock.ManagerOptions{}, true},
		{"duplicate", []string{"/a", "/a/"}, fslock.ManagerOptions{}, false},
		{"empty", []string{""}, fslock.ManagerOptions{}, false},
		{"negative retry", []string{"/a"}, fslock.ManagerOptions{Retry: -time.Second}, false},
	} {
		_, err := fslock.NewManager(tc.dirs, tc.opts)
		if (err == nil) != tc.ok {
			t.Errorf("%s: NewManager = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}
