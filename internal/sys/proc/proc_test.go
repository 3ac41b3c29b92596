package proc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/sys/proc"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// TestMain lets the reaping tests run in a child of the test binary, so the
// reaper never takes the waits of other tests.
func TestMain(m *testing.M) {
	switch os.Getenv("PROC_TEST_REAPER") {
	case "1":
		os.Exit(reaperChild())
	case "late":
		os.Exit(lateReaperChild())
	case "parent":
		os.Exit(parentChild())
	}
	os.Exit(m.Run())
}

// reaperChild enables reaping, runs a service that orphans 100 short-lived
// grandchildren, and prints how many were reaped and how many zombies are
// left among its children.
func reaperChild() int {
	orphans, err := proc.EnableReaping()
	if err != nil {
		fmt.Println("enable:", err)
		return 1
	}
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 100 ]; do (sleep 0.01 &) ; i=$((i+1)); done; exit 7`)
	st, err := proc.Run(context.Background(), cmd, time.Second)
	if err != nil {
		fmt.Println("run:", err)
		return 1
	}
	testutil.Poll(10*time.Second, func() bool { return orphans() >= 100 })
	fmt.Printf("exit=%d orphans=%d zombies=%d\n", st.ExitCode(), orphans(), testutil.Zombies())
	return 0
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 128 + int(syscall.SIGTERM)},
	} {
		st, err := proc.Run(context.Background(), exec.Command("sh", "-c", tc.script), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.ExitCode(); got != tc.want {
			t.Errorf("%q: exit code %d; want %d", tc.script, got, tc.want)
		}
	}
}

func TestRunCapturesOutputDespiteLingeringGrandchild(t *testing.T) {
	var out bytes.Buffer
	cmd := exec.Command("sh", "-c", "echo hello; sleep 30 & exit 0")
	cmd.Stdout = &out
	done := make(chan proc.Status, 1)
	go func() {
		st, _ := proc.Run(context.Background(), cmd, time.Second)
		done <- st
	}()
	select {
	case st := <-done:
		if !st.Success() {
			t.Errorf("status %v; want success", st)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run hung on a grandchild holding the pipe")
	}
	if got := out.String(); got != "hello\n" {
		t.Errorf("output %q; want %q", got, "hello\n")
	}
}

func TestStopKillsGroupAfterGrace(t *testing.T) {
	dir := t.TempDir()
	pidFile := dir + "/grandchild"
	cmd := exec.Command("sh", "-c", `trap '' TERM; sh -c 'trap "" TERM; echo $$ > `+pidFile+`; while :; do sleep 0.05; done' & while :; do sleep 0.05; done`)
	p, err := proc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	deadline := time.Now().Add(10 * time.Second)
	for grandchild == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(pidFile)
		grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(5 * time.Millisecond)
	}
	if grandchild == 0 {
		t.Fatal("grandchild did not start")
	}
	start := time.Now()
	st := p.Stop(200 * time.Millisecond)
	if st.Signal != syscall.SIGKILL {
		t.Errorf("status %v; want killed by SIGKILL", st)
	}
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("stopped after %v; want at least the grace period", elapsed)
	}
	if p.GroupAlive() {
		t.Error("process group still alive after Stop")
	}
}

func TestRunCancelSendsTerm(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := t.TempDir() + "/ready"
	cmd := exec.Command("sh", "-c", "trap 'exit 42' TERM; touch "+ready+"; while :; do sleep 0.05; done")
	res := make(chan proc.Status, 1)
	go func() {
		st, _ := proc.Run(ctx, cmd, 10*time.Second)
		res <- st
	}()
	testutil.WaitFile(t, ready, 10*time.Second)
	cancel()
	select {
	case st := <-res:
		if st.ExitCode() != 42 {
			t.Errorf("exit code %d; want 42 (the TERM trap)", st.ExitCode())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// lateReaperChild starts a child without reaping, then enables reaping
// while the child runs and again once it has exited, and prints the
// child's status and both results.
func lateReaperChild() int {
	p, err := proc.Start(exec.Command("sh", "-c", "sleep 0.5; exit 3"))
	if err != nil {
		fmt.Println("start:", err)
		return 1
	}
	_, early := proc.EnableReaping()
	st := p.Wait()
	_, late := proc.EnableReaping()
	fmt.Printf("exit=%d early=%v late=%v\n", st.ExitCode(), early, late)
	return 0
}

// TestEnableReapingRefusedWhileOwnChildRuns: a child started before
// reaping keeps its own wait, and reaping is refused until it has exited,
// so that its status is never taken by the reaper.
func TestEnableReapingRefusedWhileOwnChildRuns(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROC_TEST_REAPER=late")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reaper child: %v\n%s", err, out)
	}
	want := "exit=3 early=enable reaping: children started before still run (1) late=<nil>"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestSignalAfterExitSendsNothing: once the child was waited for, while a
// grandchild still holds its output pipe open, Signal reports
// os.ErrProcessDone instead of signalling the pid, which may be reused.
func TestSignalAfterExitSendsNothing(t *testing.T) {
	var out bytes.Buffer
	cmd := exec.Command("sh", "-c", "sleep 5 & exit 0")
	cmd.Stdout = &out
	p, err := proc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(0) })
	testutil.Eventually(t, 10*time.Second, "the child to be waited for", func() bool {
		return errors.Is(syscall.Kill(p.Pid, 0), syscall.ESRCH)
	})
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the child was waited for: got %v; want os.ErrProcessDone", err)
	}
}

func TestReaperReapsOrphans(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROC_TEST_REAPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reaper child: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "exit=7 orphans=100 zombies=0"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// parentChild starts a long sleep, prints its pid and waits to be killed.
func parentChild() int {
	p, err := proc.Start(exec.Command("sleep", "600"))
	if err != nil {
		fmt.Println("start:", err)
		return 1
	}
	fmt.Println(p.Pid)
	p.Wait()
	return 0
}

// TestChildDiesWithParent: a child gets SIGKILL when the process that
// started it is killed by SIGKILL, though that process is not PID 1.
func TestChildDiesWithParent(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROC_TEST_REAPER=parent")
	var out testutil.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var child int
	testutil.Eventually(t, 10*time.Second, "the child's pid", func() bool {
		child, _ = strconv.Atoi(strings.TrimSpace(out.String()))
		return child > 0
	})
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("child %d to die with its parent", child), func() bool {
		return !testutil.Alive(child)
	})
}

// TestChildOutlivesThreadOfCaller: a child started from a goroutine whose
// OS thread then ends (locked, it returns) keeps running: the parent-death
// signal follows the forking thread, which must not be the caller's.
func TestChildOutlivesThreadOfCaller(t *testing.T) {
	started := make(chan *proc.Process, 1)
	tids := make(chan int, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		tids <- syscall.Gettid()
		p, err := proc.Start(exec.Command("sleep", "600"))
		if err != nil {
			t.Error(err)
		}
		started <- p
	}()
	tid, p := <-tids, <-started
	if p == nil {
		t.FailNow()
	}
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	testutil.Eventually(t, 10*time.Second, "the caller's thread to end", func() bool {
		_, err := os.Stat(task)
		return errors.Is(err, os.ErrNotExist)
	})
	// The kernel sent any parent-death signal before the thread was gone:
	// the child dies of SIGTERM only if it got none.
	if st := p.Stop(10 * time.Second); st.Signal != syscall.SIGTERM {
		t.Errorf("child's status after the thread of its caller ended and SIGTERM: got %v; want killed by SIGTERM", st)
	}
}
