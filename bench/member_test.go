//go:build bench

package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mono returns the CLOCK_MONOTONIC time in nanoseconds, the clock the stamp
// helper writes.
func mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err) // cannot fail on Linux
	}
	return ts.Nano()
}

// bins are the executables the driver runs.
type bins struct {
	ccctl, stamp string
}

// buildBins builds ccctl and the stamp helper into a temporary directory.
func buildBins(t *testing.T) bins {
	t.Helper()
	dir := t.TempDir()
	b := bins{ccctl: filepath.Join(dir, "ccctl"), stamp: filepath.Join(dir, "stamp")}
	for out, pkg := range map[string]string{b.ccctl: "github.com/ccctl/ccctl/cmd/ccctl", b.stamp: "github.com/ccctl/ccctl/bench/stamp"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, o)
		}
	}
	return b
}

// memberSpec describes one ccctl process.
type memberSpec struct {
	id, service string
	endpoints   []string
	ttl         time.Duration
	hooks       bool // stamp every role hook
	stopHook    bool // stamp the stopping hook too
	waiting     bool // the service waits for a signal (else it exits at once)
}

// member is one running ccctl process whose hooks and service stamp into
// its own file.
type member struct {
	spec   memberSpec
	file   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// startMember starts a ccctl process. It is killed and waited for in
// t.Cleanup if still running.
func startMember(t *testing.T, b bins, s memberSpec) *member {
	t.Helper()
	dir := t.TempDir()
	m := &member{spec: s, file: filepath.Join(dir, "stamps"), exited: make(chan struct{})}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"ETCD_ENDPOINTS=" + strings.Join(s.endpoints, ","),
		"ENVIRONMENT=bench",
		"SERVICE=" + s.service,
		"CCCTL_INSTANCE_ID=" + s.id,
		"CCCTL_TTL=" + s.ttl.String(),
		"CCCTL_GRACE_PERIOD=2s",
		"CCCTL_LOG_LEVEL=warn",
	}
	if s.hooks {
		y := "hooks:\n"
		hooks := []string{"started_as_master", "started_as_slave", "transition_slave_to_master", "transition_master_to_slave"}
		if s.stopHook {
			hooks = append(hooks, "stopping")
		}
		for _, h := range hooks {
			y += fmt.Sprintf("  %s: [%q, %q, %q]\n", h, b.stamp, m.file, h)
		}
		conf := filepath.Join(dir, "ccctl.yaml")
		if err := os.WriteFile(conf, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "CCCTL_CONFIG="+conf)
	}
	args := []string{"run", "--", b.stamp, m.file, "service"}
	if s.waiting {
		args = append(args, "wait")
	}
	m.cmd = exec.Command(b.ccctl, args...)
	m.cmd.Env = env
	logf, err := os.Create(filepath.Join(dir, "ccctl.log"))
	if err != nil {
		t.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start ccctl %s: %v", s.id, err)
	}
	go func() {
		m.err = m.cmd.Wait()
		logf.Close()
		close(m.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-m.exited:
			return
		default:
		}
		_ = m.cmd.Process.Kill()
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("ccctl %s not reaped", s.id)
		}
	})
	return m
}

// log returns the member's log, for error messages.
func (m *member) log() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(m.file), "ccctl.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stamp returns the first time event was stamped at or after since, if
// any.
func (m *member) stamp(event string, since int64) (int64, bool) {
	b, err := os.ReadFile(m.file)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		ev, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || ev != event {
			continue
		}
		ns, err := strconv.ParseInt(v, 10, 64)
		if err == nil && ns >= since {
			return ns, true
		}
	}
	return 0, false
}

// pollEvery is how often the driver looks at stamp files. It adds nothing
// to a measured latency: the times are in the files.
const pollEvery = 2 * time.Millisecond

// waitStamp waits up to timeout for one of ms to stamp event at or after
// since, and returns that member and the time.
func waitStamp(t *testing.T, ms []*member, event string, since int64, timeout time.Duration) (*member, int64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range ms {
			if ns, ok := m.stamp(event, since); ok {
				return m, ns
			}
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, m := range ms {
				fmt.Fprintf(&logs, "--- %s:\n%s\n", m.spec.id, m.log())
			}
			t.Fatalf("no %s within %v\n%s", event, timeout, logs.String())
		}
		time.Sleep(pollEvery)
	}
}

// signal sends sig and returns the CLOCK_MONOTONIC time just before.
func (m *member) signal(t *testing.T, sig syscall.Signal) int64 {
	t.Helper()
	t0 := mono()
	if err := m.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", m.spec.id, err)
	}
	return t0
}

// wait waits up to timeout for the process to exit.
func (m *member) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-m.exited:
	case <-time.After(timeout):
		t.Fatalf("ccctl %s did not exit within %v\n%s", m.spec.id, timeout, m.log())
	}
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) and waits.
func (m *member) stop(t *testing.T) {
	t.Helper()
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		m.wait(t, 10*time.Second)
	}
}
