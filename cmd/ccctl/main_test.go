package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// binary is the ccctl binary built once for the black-box tests; ccctl-etcd
// is built beside it, where ccctl etcd finds it.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv("CCCTL_LOADGEN_ADDR") != "" {
		return m.Run() // the load generator of TestRunLoadDrill needs no binary
	}
	dir, err := os.MkdirTemp("", "ccctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ccctl")
	for out, pkg := range map[string]string{binary: ".", filepath.Join(dir, "ccctl-etcd"): "../ccctl-etcd"} {
		build := exec.Command("go", "build", "-race", "-o", out, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", filepath.Base(out), err)
			return 1
		}
	}
	return m.Run()
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// cleanEnv is the environment of a child: PATH and HOME only, so that the
// tester's own settings cannot leak in. A NAME=value in env overrides them.
func cleanEnv(env ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
}

// ccctl runs the binary with env (NAME=value) and args, bounded by timeout.
func ccctl(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	return runAt(t, binary, timeout, env, args...)
}

// runAt runs the ccctl binary at path bin, as ccctl does.
func runAt(t *testing.T, bin string, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ccctl %s: no exit within %s; stdout=%q stderr=%q", strings.Join(args, " "), timeout, out.String(), errb.String())
	}
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
	if err != nil && r.code < 0 {
		t.Fatalf("ccctl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// running is a ccctl process started in the background.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr *testutil.Buffer
	done           chan struct{}
}

// background starts the binary; the test's cleanup kills it if it still
// runs.
func background(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	return backgroundAt(t, binary, env, args...)
}

// backgroundAt is background with the ccctl binary at path bin.
func backgroundAt(t *testing.T, bin string, env []string, args ...string) *running {
	t.Helper()
	r := &running{stdout: &testutil.Buffer{}, stderr: &testutil.Buffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Env = cleanEnv(env...)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	r.cmd.WaitDelay = time.Second
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start ccctl %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// signal sends sig and waits, bounded, for the exit; it returns the code.
func (r *running) stop(t *testing.T, sig os.Signal, timeout time.Duration) int {
	t.Helper()
	r.cmd.Process.Signal(sig)
	return r.wait(t, timeout)
}

// wait waits, bounded, for the process to exit and returns its code.
func (r *running) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("ccctl %s: no exit within %s; stderr %q", strings.Join(r.cmd.Args[1:], " "), timeout, r.stderr.String())
		return -1
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
