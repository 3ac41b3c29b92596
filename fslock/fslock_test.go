package fslock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/fslock"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// TestMain lets tests re-execute the test binary as a separate lock holder.
func TestMain(m *testing.M) {
	switch os.Getenv("FSLOCK_HELPER") {
	case "hold":
		os.Exit(helperHold(os.Getenv("FSLOCK_DIR")))
	case "rounds":
		n, _ := strconv.Atoi(os.Getenv("FSLOCK_ROUNDS"))
		os.Exit(helperRounds(os.Getenv("FSLOCK_DIR"), n))
	}
	os.Exit(m.Run())
}

// helperHold takes the lock, says so on stdout, and holds it until its
// standard input is closed.
func helperHold(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := fslock.Acquire(ctx, dir, fslock.Owner{ID: "helper"})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Printf("locked %d\n", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	if err := l.Unlock(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// helperRounds takes and releases the lock n times. Inside each round it
// creates DIR/inside exclusively (failing if another holder is inside),
// checks that the lock file names it, increments DIR/counter by a plain
// read-modify-write, and removes DIR/inside. It prints how often it found
// the lock taken.
func helperRounds(dir string, n int) int {
	inside := filepath.Join(dir, "inside")
	counter := filepath.Join(dir, "counter")
	contended := 0
	for i := 0; i < n; i++ {
		var l *fslock.Lock
		for l == nil {
			var err error
			l, err = fslock.TryLock(dir, fslock.Owner{ID: "rounds"})
			if errors.Is(err, fslock.ErrLocked) {
				contended++
				// Back off a little, at random, so that the two holders
				// interleave rather than spin on each other.
				time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
				continue
			}
			if err != nil {
				fmt.Println("error: lock:", err)
				return 1
			}
		}
		f, err := os.OpenFile(inside, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Println("error: overlap: another holder is inside:", err)
			return 1
		}
		f.Close()
		if o, err := fslock.ReadOwner(dir); err != nil || o.PID != os.Getpid() {
			fmt.Printf("error: owner inside the lock: %+v, %v; want pid %d\n", o, err, os.Getpid())
			return 1
		}
		b, _ := os.ReadFile(counter)
		c, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err := os.WriteFile(counter, []byte(strconv.Itoa(c+1)), 0o644); err != nil {
			fmt.Println("error: counter:", err)
			return 1
		}
		if err := os.Remove(inside); err != nil {
			fmt.Println("error: leave:", err)
			return 1
		}
		if err := l.Unlock(); err != nil {
			fmt.Println("error: unlock:", err)
			return 1
		}
	}
	fmt.Printf("contended=%d\n", contended)
	return 0
}

// helper starts the test binary in helper mode.
func helper(t *testing.T, mode, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FSLOCK_HELPER="+mode, "FSLOCK_DIR="+dir)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// startHolder starts a helper that holds dir's lock; it returns once the
// helper holds it. Closing the returned writer makes the helper release.
func startHolder(t *testing.T, dir string) (*exec.Cmd, *os.File) {
	t.Helper()
	cmd := helper(t, "hold", dir)
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	done := make(chan struct{})
	t.Cleanup(func() {
		w.Close()
		cmd.Process.Kill()
		<-done
	})
	lines := make(chan string, 1)
	go func() {
		defer close(done)
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		cmd.Wait()
	}()
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, "locked ") {
			t.Fatalf("holder said %q; want \"locked <pid>\"", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("holder did not take the lock within 10s")
	}
	return cmd, w
}

func TestTryLockExcludesAndReportsHolder(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "m1", Host: "h1", AcquiredAt: at})
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	if got, want := l.Path(), filepath.Join(dir, fslock.FileName); got != want {
		t.Errorf("Path() = %q; want %q", got, want)
	}
	_, err = fslock.TryLock(dir, fslock.Owner{ID: "m2"})
	if !errors.Is(err, fslock.ErrLocked) {
		t.Fatalf("second TryLock: got %v; want ErrLocked", err)
	}
	var le *fslock.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second TryLock: got %T; want *LockedError", err)
	}
	want := fslock.Owner{ID: "m1", Host: "h1", PID: os.Getpid(), AcquiredAt: at}
	if le.OwnerErr != nil || le.Owner != want {
		t.Errorf("holder: got %+v (%v); want %+v", le.Owner, le.OwnerErr, want)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock: got %v; want nil", err)
	}
	if l.Held() {
		t.Errorf("Held() after Unlock = true; want false")
	}
	if _, err := fslock.ReadOwner(dir); !errors.Is(err, fslock.ErrNoOwner) {
		t.Errorf("ReadOwner after Unlock: got %v; want ErrNoOwner (owner cleared)", err)
	}
	if _, err := os.Stat(l.Path()); err != nil {
		t.Errorf("lock file after Unlock: %v; want it kept", err)
	}
	l2, err := fslock.TryLock(dir, fslock.Owner{ID: "m2"})
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	l2.Unlock()
}

// TestNoOverlapBetweenProcesses runs two processes that each take and
// release the lock many times; inside the lock each creates a marker file
// exclusively and increments a counter by read-modify-write, so an overlap
// fails the marker or loses an increment.
func TestNoOverlapBetweenProcesses(t *testing.T) {
	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	dir := t.TempDir()
	type result struct {
		out string
		err error
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		cmd := helper(t, "rounds", dir, "FSLOCK_ROUNDS="+strconv.Itoa(rounds))
		cmd.Stderr = os.Stderr
		go func() {
			out, err := cmd.Output()
			results <- result{string(out), err}
		}()
	}
	contended := 0
	timeout := time.After(2 * time.Minute)
	for i := 0; i < 2; i++ {
		select {
		case r := <-results:
			if r.err != nil || !strings.HasPrefix(r.out, "contended=") {
				t.Fatalf("holder: %v: %s", r.err, r.out)
			}
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(r.out, "contended=")))
			contended += n
		case <-timeout:
			t.Fatal("holders did not finish within 2m")
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), strconv.Itoa(2*rounds); got != want {
		t.Errorf("counter = %s; want %s (an increment was lost: the holders overlapped)", got, want)
	}
	t.Logf("%d rounds per holder, %d attempts found the lock taken", rounds, contended)
}

func TestKilledHolderReleasesWithinOneSecond(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHolder(t, dir)
	_, err := fslock.TryLock(dir, fslock.Owner{ID: "me"})
	var le *fslock.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("TryLock while held: got %v; want *LockedError", err)
	}
	if le.Owner.PID != cmd.Process.Pid || le.Owner.ID != "helper" {
		t.Errorf("holder: got %+v; want id helper, pid %d", le.Owner, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	deadline := killed.Add(5 * time.Second)
	for {
		l, err := fslock.TryLock(dir, fslock.Owner{ID: "me"})
		if err == nil {
			elapsed := time.Since(killed)
			if elapsed > time.Second {
				t.Errorf("lock taken %v after SIGKILL; want within 1s", elapsed)
			}
			t.Logf("lock taken %v after SIGKILL", elapsed)
			if o, err := fslock.ReadOwner(dir); err != nil || o.PID != os.Getpid() {
				t.Errorf("owner after takeover: got %+v, %v; want pid %d", o, err, os.Getpid())
			}
			l.Unlock()
			return
		}
		if !errors.Is(err, fslock.ErrLocked) {
			t.Fatalf("TryLock: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock still held 5s after SIGKILL of its holder")
		}
	}
}

// TestStaleOwnerNeverBlocks leaves the JSON of a dead holder in the lock
// file, as a crash would, and takes the lock at once.
func TestStaleOwnerNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf(`{"id":"gone","host":"other","pid":%d,"acquired_at":"2001-01-01T00:00:00Z"}`, dead.Process.Pid)
	if err := os.WriteFile(filepath.Join(dir, fslock.FileName), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := fslock.ReadOwner(dir); err != nil || o.ID != "gone" {
		t.Fatalf("ReadOwner of stale file: got %+v, %v; want id gone", o, err)
	}
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "new"})
	if err != nil {
		t.Fatalf("TryLock over a stale owner: got %v; want the lock", err)
	}
	defer l.Unlock()
	if o, err := fslock.ReadOwner(dir); err != nil || o.ID != "new" || o.PID != os.Getpid() {
		t.Errorf("owner: got %+v, %v; want id new, pid %d", o, err, os.Getpid())
	}
}

// TestStaleOwnerOfKilledHolderNeverBlocks kills a real holder, whose JSON
// stays in the file, and then takes the lock without waiting.
func TestStaleOwnerOfKilledHolderNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHolder(t, dir)
	cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for !reaped(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("holder did not die within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	if o, err := fslock.ReadOwner(dir); err != nil || o.PID != cmd.Process.Pid {
		t.Fatalf("left-over owner: got %+v, %v; want the dead holder's pid %d", o, err, cmd.Process.Pid)
	}
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "next"})
	if err != nil {
		t.Fatalf("TryLock after the holder died: %v", err)
	}
	l.Unlock()
}

func TestGarbageLockFile(t *testing.T) {
	big := strings.Repeat("x", 1<<16)
	for _, tc := range []struct{ name, content string }{
		{"binary", "\x00\xff\x01garbage\n\x7f"},
		{"truncated json", `{"id":"half","pid":12`},
		{"wrong types", `{"id":1,"pid":"x","acquired_at":false}`},
		{"json then junk", `{"id":"a","pid":1}` + big},
		{"long garbage", big},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, fslock.FileName)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := fslock.TryLock(dir, fslock.Owner{ID: "me"})
			if err != nil {
				t.Fatalf("TryLock over %s: %v", tc.name, err)
			}
			defer l.Unlock()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "garbage") || strings.Contains(string(b), "xxx") {
				t.Errorf("lock file still holds old bytes: %q", b)
			}
			o, err := fslock.ReadOwner(dir)
			if err != nil || o.ID != "me" || o.PID != os.Getpid() {
				t.Errorf("ReadOwner: got %+v, %v; want id me, pid %d", o, err, os.Getpid())
			}
		})
	}
	t.Run("read garbage", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fslock.FileName), []byte("\x00garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := fslock.ReadOwner(dir); !errors.Is(err, fslock.ErrNoOwner) {
			t.Errorf("ReadOwner of garbage: got %v; want ErrNoOwner", err)
		}
	})
	t.Run("lock path is a directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, fslock.FileName), 0o755); err != nil {
			t.Fatal(err)
		}
		l, err := fslock.TryLock(dir, fslock.Owner{ID: "me"})
		if err == nil {
			l.Unlock()
			t.Fatal("TryLock on a directory named like the lock file: got the lock; want an error")
		}
		if errors.Is(err, fslock.ErrLocked) {
			t.Errorf("got %v; want an error that is not ErrLocked", err)
		}
	})
}

// reaped reports whether pid is gone from /proc: the whole process, all its
// threads included, exited and was waited for. (A killed multi-threaded
// process shows as a zombie while its other threads still close its files.)
func reaped(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// fdsTo lists the descriptors of process pid that name path.
func fdsTo(t *testing.T, pid int, path string) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var fds []string
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == path {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

// TestDescriptorNotInherited starts children while holding the lock, with
// internal/sys/proc (as ccctl starts the service) and with os/exec, and checks
// their /proc/<pid>/fd: none has the lock file open. The lock is then
// released and retaken while the children still run.
func TestDescriptorNotInherited(t *testing.T) {
	dir := t.TempDir()
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "me"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	path, err := filepath.EvalSymlinks(l.Path())
	if err != nil {
		t.Fatal(err)
	}

	own := fdsTo(t, os.Getpid(), path)
	if len(own) != 1 {
		t.Fatalf("descriptors of this process on the lock file: %v; want exactly one", own)
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%s", own[0]))
	if err != nil {
		t.Fatal(err)
	}
	var flags int64
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, _ = strconv.ParseInt(strings.TrimSpace(v), 8, 64)
		}
	}
	if flags&syscall.O_CLOEXEC == 0 {
		t.Errorf("lock descriptor flags %#o; want O_CLOEXEC set", flags)
	}

	p, err := proc.Start(exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	viaExec := exec.Command("sleep", "30")
	if err := viaExec.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		viaExec.Process.Kill()
		viaExec.Wait()
	}()
	for name, pid := range map[string]int{"proc.Start": p.Pid, "os/exec": viaExec.Process.Pid} {
		if fds := fdsTo(t, pid, path); len(fds) != 0 {
			t.Errorf("child started with %s has the lock file open on fds %v; want none", name, fds)
		}
	}

	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := fslock.TryLock(dir, fslock.Owner{ID: "again"})
	if err != nil {
		t.Fatalf("TryLock while the children run: got %v; want the lock (no child keeps it)", err)
	}
	l2.Unlock()
}

// TestInodeCheck deletes and replaces the lock file under a holder: Check
// reports the loss, and a new lock is taken on the new file.
func TestInodeCheck(t *testing.T) {
	t.Run("deleted", func(t *testing.T) {
		dir := t.TempDir()
		l, err := fslock.TryLock(dir, fslock.Owner{ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Unlock()
		if err := l.Check(); err != nil {
			t.Fatalf("Check while intact: %v", err)
		}
		if err := os.Remove(l.Path()); err != nil {
			t.Fatal(err)
		}
		if err := l.Check(); !errors.Is(err, fslock.ErrLost) {
			t.Errorf("Check after deletion: got %v; want ErrLost", err)
		}
		l2, err := fslock.TryLock(dir, fslock.Owner{ID: "b"})
		if err != nil {
			t.Fatalf("TryLock on the new file: %v", err)
		}
		defer l2.Unlock()
		if err := l2.Check(); err != nil {
			t.Errorf("Check of the new holder: %v", err)
		}
	})
	t.Run("replaced", func(t *testing.T) {
		dir := t.TempDir()
		l, err := fslock.TryLock(dir, fslock.Owner{ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Unlock()
		other := filepath.Join(dir, "other")
		if err := os.WriteFile(other, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, l.Path()); err != nil {
			t.Fatal(err)
		}
		if err := l.Check(); !errors.Is(err, fslock.ErrLost) {
			t.Errorf("Check after replacement: got %v; want ErrLost", err)
		}
	})
	t.Run("after unlock", func(t *testing.T) {
		dir := t.TempDir()
		l, err := fslock.TryLock(dir, fslock.Owner{ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		l.Unlock()
		if err := l.Check(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Check after Unlock: got %v; want os.ErrClosed", err)
		}
	})
}

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "first"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = fslock.Acquire(ctx, dir, fslock.Owner{ID: "second"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, fslock.ErrLocked) {
		t.Fatalf("Acquire while held: got %v; want DeadlineExceeded and ErrLocked", err)
	}

	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l2, err := fslock.Acquire(ctx, dir, fslock.Owner{ID: "second"})
		if err == nil {
			err = l2.Unlock()
		}
		got <- err
	}()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Acquire after release: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return within 10s of the release")
	}

	if _, err := fslock.Acquire(context.Background(), filepath.Join(dir, "missing"), fslock.Owner{}); err == nil || errors.Is(err, fslock.ErrLocked) {
		t.Errorf("Acquire on a missing directory: got %v; want an immediate error", err)
	}
}

func TestSelfTest(t *testing.T) {
	dir := t.TempDir()
	if err := fslock.SelfTest(dir); err != nil {
		t.Fatalf("SelfTest on %s: %v", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("SelfTest left %v; want nothing", entries)
	}
	if err := fslock.SelfTest(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("SelfTest on a missing directory: got nil; want an error")
	}
}

func TestFilesystemWarningLocal(t *testing.T) {
	if got := fslock.FilesystemWarning(t.TempDir()); got != "" {
		t.Skipf("the test directory is on a risky filesystem: %s", got)
	}
}

func ExampleTryLock() {
	dir, err := os.MkdirTemp("", "fslock-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	l, err := fslock.TryLock(dir, fslock.Owner{ID: "web-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Unlock()

	_, err = fslock.TryLock(dir, fslock.Owner{ID: "web-2"})
	var held *fslock.LockedError
	if errors.As(err, &held) {
		fmt.Println("held by", held.Owner.ID)
	}
	// Output: held by web-1
}

func BenchmarkTryLockUnlock(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		l, err := fslock.TryLock(dir, fslock.Owner{ID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		l.Unlock()
	}
}

func BenchmarkTryLockHeld(b *testing.B) {
	dir := b.TempDir()
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "holder"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Unlock()
	for b.Loop() {
		if _, err := fslock.TryLock(dir, fslock.Owner{ID: "bench"}); !errors.Is(err, fslock.ErrLocked) {
			b.Fatal(err)
		}
	}
}
