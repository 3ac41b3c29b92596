package lifecycle_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// ccctlProcess is the test binary running ccctlMain.
type ccctlProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *os.File // files, not pipes: an orphan holding them cannot block Wait
	done           chan struct{}
	code           int
}

func (p *ccctlProcess) output(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// startCcctl starts a "ccctl" process supervising the shell script service,
// prefixed by wrapper (for example unshare). A service that writes its pid
// to pidfile (when not "") has its group killed at cleanup if ccctl had to
// be killed, so that a failing test leaks nothing.
func startCcctl(t *testing.T, pidfile, service string, grace time.Duration, orphans int, wrapper ...string) *ccctlProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal([]string{"/bin/sh", "-c", service})
	args := append(append([]string(nil), wrapper...), self, "-test.run=^$")
	p := &ccctlProcess{done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(),
		"LIFECYCLE_TEST_CCCTL=1",
		"LT_SERVICE="+string(argv),
		"LT_GRACE="+grace.String(),
		"LT_ORPHANS="+strconv.Itoa(orphans),
	)
	dir := t.TempDir()
	for _, f := range []**os.File{&p.stdout, &p.stderr} {
		if *f, err = os.CreateTemp(dir, "out"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*f).Close() })
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ccctl: %v", err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		default:
			p.code = -1
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
			if b, err := os.ReadFile(pidfile); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					syscall.Kill(-pid, syscall.SIGKILL)
				}
			}
		}
		if t.Failed() {
			t.Logf("ccctl stderr:\n%s", p.output(p.stderr))
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *ccctlProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(waitTimeout):
		t.Fatalf("ccctl did not exit within %v", waitTimeout)
		return 0
	}
}

// waitFile waits, at most waitTimeout, until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	testutil.WaitFile(t, path, waitTimeout)
}

// TestSIGTERMToCcctl: the service gets SIGTERM and ccctl exits with the
// service's code.
func TestSIGTERMToCcctl(t *testing.T) {
	dir := t.TempDir()
	p := startCcctl(t, dir+"/svc.pid", fmt.Sprintf(`echo $$ > %[1]s/svc.pid; trap 'echo term > %[1]s/term; exit 42' TERM; touch %[1]s/ready; while :; do sleep 0.01; done`, dir), 5*time.Second, 0)
	waitFile(t, dir+"/ready")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 42 {
		t.Errorf("ccctl exit code: got %d; want 42 (the service's)", code)
	}
	if b, err := os.ReadFile(dir + "/term"); err != nil || string(b) != "term\n" {
		t.Errorf("service's SIGTERM trap: got %q, %v; want it to have run", b, err)
	}
}

// TestSIGTERMIgnored: a service that ignores SIGTERM is killed after the
// grace period, and its grandchildren are gone too; a second signal during
// the grace period changes nothing.
func TestSIGTERMIgnored(t *testing.T) {
	dir := t.TempDir()
	const grace = 500 * time.Millisecond
	p := startCcctl(t, dir+"/svc.pid", fmt.Sprintf(`echo $$ > %[1]s/svc.pid; trap '' TERM; sleep 600 & echo $! > %[1]s/gc; touch %[1]s/ready; while :; do sleep 0.01; done`, dir), grace, 0)
	waitFile(t, dir+"/ready")
	b, err := os.ReadFile(dir + "/gc")
	if err != nil {
		t.Fatal(err)
	}
	gc, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A second signal while stopping must not kill ccctl before its service.
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t)
	took := time.Since(sent)
	if code != 128+int(syscall.SIGKILL) {
		t.Errorf("ccctl exit code: got %d; want %d (killed)", code, 128+int(syscall.SIGKILL))
	}
	if took < grace {
		t.Errorf("time from SIGTERM to exit: got %v; want at least the grace period %v", took, grace)
	}
	t.Logf("SIGTERM to exit: %v (grace %v)", took, grace)
	if err := syscall.Kill(gc, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("grandchild %d after ccctl exited: kill(0) got %v; want ESRCH (gone)", gc, err)
	}
}

// orphanService orphans 100 short-lived grandchildren, then exits with 3.
const orphanService = `i=0; while [ $i -lt 100 ]; do (sleep 0.01 &); i=$((i+1)); done; sleep 0.5; exit 3`

// TestOrphansReaped: a service that orphans 100 short-lived grandchildren
// leaves no zombie, with ccctl as child subreaper and as PID 1 of a new
// PID namespace.
func TestOrphansReaped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wrapper []string
		pid1    bool
	}{
		{"subreaper", nil, false},
		{"pid 1", []string{"unshare", "--pid", "--fork", "--mount-proc"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pid1 {
				if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
					t.Skipf("unshare does not work here: %v: %s", err, out)
				}
			}
			p := startCcctl(t, "", orphanService, time.Second, 100, tc.wrapper...)
			if code := p.wait(t); code != 3 {
				t.Errorf("ccctl exit code: got %d; want 3 (the service's)", code)
			}
			var pid, orphans, zombies int
			if _, err := fmt.Sscanf(p.output(p.stdout), "pid=%d orphans=%d zombies=%d", &pid, &orphans, &zombies); err != nil {
				t.Fatalf("ccctl report %q: %v", p.output(p.stdout), err)
			}
			if tc.pid1 != (pid == 1) {
				t.Errorf("ccctl pid: got %d; want pid 1: %v", pid, tc.pid1)
			}
			if orphans < 100 {
				t.Errorf("orphans reaped: got %d; want at least 100", orphans)
			}
			if zombies != 0 {
				t.Errorf("zombies left: got %d; want 0", zombies)
			}
		})
	}
}

// TestSignalForwarded: a signal other than SIGTERM and SIGINT sent to ccctl
// reaches the service, and ccctl keeps running.
func TestSignalForwarded(t *testing.T) {
	dir := t.TempDir()
	p := startCcctl(t, dir+"/svc.pid", fmt.Sprintf(`echo $$ > %[1]s/svc.pid; trap 'echo hup >> %[1]s/hup' HUP; trap 'exit 5' USR2; touch %[1]s/ready; while :; do sleep 0.01; done`, dir), 5*time.Second, 0)
	waitFile(t, dir+"/ready")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFile(t, dir+"/hup")
	select {
	case <-p.done:
		t.Fatalf("ccctl exited on SIGHUP with %d; want it to keep running", p.code)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 5 {
		t.Errorf("ccctl exit code after SIGUSR2: got %d; want 5 (the service's trap)", code)
	}
}
