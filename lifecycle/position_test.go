package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
	"github.com/ccctl/ccctl/lifecycle"
)

func TestShellPositionReadsOneInteger(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		script string
		want   int64
		err    string // "" for no error
	}{
		{"echo 42", 42, ""},
		{"printf '  7\\n\\n'", 7, ""},
		{"echo 0", 0, ""},
		{"echo 9223372036854775807", 9223372036854775807, ""},
		{"echo -5", 0, `printed "-5"; want one non-negative integer`},
		{"echo +5", 0, `printed "+5"; want one non-negative integer`},
		{"echo 1 2", 0, `printed "1 2"`},
		{"echo 0/3A000060", 0, `printed "0/3A000060"`},
		{"echo 9223372036854775808", 0, `printed "9223372036854775808"`},
		{"true", 0, `printed ""`},
		{"echo 5; echo no such table >&2; exit 3", 0, `position command: exit status 3: "no such table"`},
		{"head -c 100000 /dev/zero | tr '\\0' 1", 0, "printed more than 4096 bytes"},
	} {
		got, err := lifecycle.ShellPosition(tt.script).Position(ctx)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%s: got %d, %v; want %d", tt.script, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: got %d, %v; want an error with %q", tt.script, got, err, tt.err)
		}
	}
}

// TestShellPositionKillsItsGroupWhenDone: a command that does not answer in
// time is stopped with every process it started.
func TestShellPositionKillsItsGroupWhenDone(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := "sleep 300 & echo $! > " + pidFile + "; wait"
	ctx, cancel := context.WithCancelCause(context.Background())
	type result struct {
		v   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := lifecycle.ShellPosition(script).Position(ctx)
		done <- result{v, err}
	}()
	var pid int
	testutil.Eventually(t, waitTimeout, "the command's child started", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	cancel(lifecycle.ErrPositionTimeout)
	select {
	case r := <-done:
		if r.err == nil || !strings.Contains(r.err.Error(), "position command timed out") {
			t.Errorf("got %d, %v; want the timeout as the error", r.v, r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Position did not return after its context was done")
	}
	testutil.Eventually(t, waitTimeout, "the child killed", func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	})
}

// positions is a PositionSource the test answers one read at a time.
type positions struct {
	reads chan chan positionAnswer
}

type positionAnswer struct {
	v     int64
	err   error
	block bool // wait until the read's context is done
	cause chan error
}

func newPositions() *positions { return &positions{reads: make(chan chan positionAnswer)} }

func (p *positions) Position(ctx context.Context) (int64, error) {
	reply := make(chan positionAnswer, 1)
	select {
	case p.reads <- reply:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	a := <-reply
	if a.block {
		<-ctx.Done()
		a.cause <- context.Cause(ctx)
		return 0, ctx.Err()
	}
	return a.v, a.err
}

// answer waits for the next read, advancing the fake clock by tick while
// none comes (0: never), and answers it.
func (p *positions) answer(t *testing.T, h *harness, tick time.Duration, a positionAnswer) {
	t.Helper()
	deadline := time.After(waitTimeout)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case reply := <-p.reads:
			reply <- a
			return
		case <-poll.C:
			if tick > 0 {
				h.clk.Advance(tick)
			}
		case <-deadline:
			t.Fatalf("no read of the position within %s", waitTimeout)
		}
	}
}

// updates collects the record updates of id that a watch reports.
type updates struct {
	mu  sync.Mutex
	got []coordinator.Member
}

func watchUpdates(t *testing.T, co coordinator.Coordinator, id string) *updates {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := co.Watch(ctx)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	u := &updates{}
	go func() {
		for ev := range ch {
			if (ev.Type == coordinator.EventMemberUpdated || ev.Type == coordinator.EventMemberJoined) && ev.Member.ID == id {
				u.mu.Lock()
				u.got = append(u.got, ev.Member)
				u.mu.Unlock()
			}
		}
	}()
	return u
}

func (u *updates) all() []coordinator.Member {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]coordinator.Member(nil), u.got...)
}

func posString(p *int64) string {
	if p == nil {
		return "unknown"
	}
	return strconv.FormatInt(*p, 10)
}

// TestPositionPublishedOnChangeOnly: the record is written when the
// position or its known-ness changes, not at every read; failures are
// logged once per change of state; a read that does not answer in time is
// cancelled and the position unknown.
func TestPositionPublishedOnChangeOnly(t *testing.T) {
	h := newHarness(t)
	src := newPositions()
	logs := &testutil.Buffer{}
	m := h.newMember("db-1", func(c *lifecycle.Config) {
		c.Service.Argv = []string{"sleep", "600"}
		c.PositionSource = src
		c.PositionInterval = time.Second
		c.PositionTimeout = 500 * time.Millisecond
		c.Logger = testLoggerTo(t, logs)
	})
	u := watchUpdates(t, m.coord, "db-1")
	h.start(m)

	src.answer(t, h, 0, positionAnswer{v: 5}) // the first read: at once
	var steady int
	waitFor(t, "db-1 active at position 5", func() bool {
		got := u.all()
		for i, r := range got {
			if r.State == coordinator.StateActive && posString(r.Position) == "5" {
				steady = i
				return true
			}
		}
		return false
	})
	for range 5 {
		src.answer(t, h, 100*time.Millisecond, positionAnswer{v: 5})
	}
	src.answer(t, h, 100*time.Millisecond, positionAnswer{v: 9})
	waitFor(t, "position 9 published", func() bool {
		got := u.all()
		return posString(got[len(got)-1].Position) == "9"
	})
	if got := u.all()[steady+1:]; len(got) != 1 {
		t.Errorf("records written after position 5, read five times again, then 9: got %d; want 1, the one with 9", len(got))
	}
	if r := u.all()[len(u.all())-1]; r.PositionAt.IsZero() || !r.PositionAt.Before(h.clk.Now().Add(time.Nanosecond)) {
		t.Errorf("position_at: got %v; want the time of the read, by the clock (now %v)", r.PositionAt, h.clk.Now())
	}

	// Failures: unknown, published once, logged once per kind.
	n := len(u.all())
	src.answer(t, h, 100*time.Millisecond, positionAnswer{err: errors.New("database starting")})
	waitFor(t, "position unknown published", func() bool {
		got := u.all()
		return len(got) > n && got[len(got)-1].Position == nil && got[len(got)-1].PositionAt.IsZero()
	})
	src.answer(t, h, 100*time.Millisecond, positionAnswer{err: errors.New("database still starting")})
	cause := make(chan error, 1)
	src.answer(t, h, 100*time.Millisecond, positionAnswer{block: true, cause: cause})
	for done := false; !done; {
		select {
		case err := <-cause:
			if !errors.Is(err, lifecycle.ErrPositionTimeout) {
				t.Errorf("the read's cause: got %v; want ErrPositionTimeout", err)
			}
			done = true
		case <-time.After(5 * time.Millisecond):
			h.clk.Advance(100 * time.Millisecond)
		}
	}
	src.answer(t, h, 100*time.Millisecond, positionAnswer{v: 12})
	waitFor(t, "position 12 published", func() bool {
		got := u.all()
		return posString(got[len(got)-1].Position) == "12"
	})
	if got := len(u.all()) - n; got != 2 {
		t.Errorf("records written for two failures, a timeout and 12: got %d; want 2 (unknown, then 12)", got)
	}
	if got := strings.Count(logs.String(), "position unknown"); got != 2 {
		t.Errorf("'position unknown' logged %d times; want 2 (the failure, then the timeout):\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "no answer within 500ms") {
		t.Errorf("log: want the timeout named:\n%s", logs)
	}
	if got := strings.Count(logs.String(), "position known again"); got != 1 {
		t.Errorf("'position known again' logged %d times; want 1", got)
	}
	if _, err := m.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestPositionReadAgainAtVacancy: a slave reads its position at once when
// the master goes away, without waiting for the interval.
func TestPositionReadAgainAtVacancy(t *testing.T) {
	h := newHarness(t)
	m1 := h.run("db-1")
	waitFor(t, "db-1 master", func() bool { return m1.ctl.Status().Role == coordinator.RoleMaster })
	src := newPositions()
	m2 := h.start(h.newMember("db-2", func(c *lifecycle.Config) {
		c.Service.Argv = []string{"sleep", "600"}
		c.PositionSource = src
		c.PositionInterval = time.Hour
	}))
	src.answer(t, h, 0, positionAnswer{v: 3})
	waitFor(t, "db-2 slave", func() bool { return m2.ctl.Status().State == coordinator.StateActive })
	if _, err := m1.stop(t); err != nil {
		t.Fatal(err)
	}
	src.answer(t, h, 0, positionAnswer{v: 4}) // the clock stands still: the vacancy asked for it
	waitFor(t, "db-2 master", func() bool { return m2.ctl.Status().Role == coordinator.RoleMaster })
}

// TestHooksGetPosition: CC_POSITION is the member's latest position, read
// by its position command.
func TestHooksGetPosition(t *testing.T) {
	h := newHarness(t)
	out := filepath.Join(h.dir, "positions")
	m1 := h.start(h.newMember("db-1", func(c *lifecycle.Config) {
		c.PositionSource = lifecycle.ShellPosition("echo 42")
		c.Hooks[lifecycle.HookMembersAdded] = []lifecycle.Hook{lifecycle.Shell(`echo "added $CC_POSITION" >> ` + out)}
	}))
	waitFor(t, "db-1 publishes 42", func() bool {
		ms, err := m1.coord.Members(context.Background())
		return err == nil && len(ms) == 1 && posString(ms[0].Position) == "42"
	})
	m2 := h.start(h.newMember("db-2", func(c *lifecycle.Config) {
		c.Hooks[lifecycle.HookStartedAsSlave] = []lifecycle.Hook{lifecycle.Shell(`echo "slave ${CC_POSITION-unset}" >> ` + out)}
	}))
	waitFor(t, "both hooks ran", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n") == 2
	})
	b, _ := os.ReadFile(out)
	for _, want := range []string{"added 42\n", "slave \n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("hooks wrote %q; want %q in it (db-2 has no position: empty, set)", b, want)
		}
	}
	m2.stop(t)
	m1.stop(t)
}

// testLoggerTo logs to the test's log and to w.
func testLoggerTo(t *testing.T, w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, w), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
