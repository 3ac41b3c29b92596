package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// loopService is a service that writes its pid to dir/svc.pid and runs
// until it is signalled; it leaves every signal's default action alone.
func loopService(dir string) []string {
	return []string{"sh", "-c", "echo $$ > " + filepath.Join(dir, "svc.pid") + "; while :; do sleep 0.1; done"}
}

// readPid waits, bounded, for a pid written to path and returns it.
func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	testutil.Eventually(t, 20*time.Second, "a pid in "+path, func() bool {
		b, _ := os.ReadFile(path)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	return pid
}

// healthCode returns the status code of GET /health, 0 when it fails.
func healthCode(client *http.Client, addr string) int {
	resp, err := client.Get("http://" + addr + "/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealthy waits, bounded, until GET /health answers 200.
func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	testutil.Eventually(t, 30*time.Second, "/health 200 at "+addr, func() bool { return healthCode(client, addr) == http.StatusOK })
}

// resetMetrics asks for /metrics, reads the start of the answer and resets
// the connection (SO_LINGER 0, then close), as a scraper that gives up in
// the middle of a response does. It reports whether the answer had started.
func resetMetrics(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: ccctl\r\n\r\n")); err != nil {
		return false
	}
	b := make([]byte, 64)
	n, _ := c.Read(b)
	c.(*net.TCPConn).SetLinger(0)
	return n > 0
}

// TestRunMetricsResetsKeepService: clients of /metrics that reset the
// connection in the middle of the response make ccctl's writes fail with
// SIGPIPE; the service must not get it (it would die of it: exit 141).
func TestRunMetricsResetsKeepService(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	r := background(t, []string{"CCCTL_HTTP_ADDR=" + addr}, append([]string{"run", "--"}, loopService(dir)...)...)
	pid := readPid(t, filepath.Join(dir, "svc.pid"))
	waitHealthy(t, addr)
	started := 0
	for i := 0; i < 300; i++ {
		if resetMetrics(addr) {
			started++
		}
	}
	if started == 0 {
		t.Fatalf("no /metrics answer started in 300 tries; ccctl stderr %q", r.stderr.String())
	}
	if code := healthCode(&http.Client{Timeout: 5 * time.Second}, addr); code != http.StatusOK {
		t.Errorf("/health after %d resets: got %d; want 200", started, code)
	}
	select {
	case <-r.done:
		t.Fatalf("ccctl exited with %d after %d /metrics resets; want it and its service running; stderr %q",
			r.cmd.ProcessState.ExitCode(), started, r.stderr.String())
	default:
	}
	if !testutil.Alive(pid) {
		t.Errorf("service %d gone after %d /metrics resets; want it running", pid, started)
	}
	if code := r.stop(t, syscall.SIGTERM, 20*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code after SIGTERM: got %d; want %d", code, 128+int(syscall.SIGTERM))
	}
}

// TestRunChildrenDieWithCcctl: when ccctl, not PID 1, is killed by SIGKILL,
// its service and a running hook die with it (the kernel's parent-death
// signal) instead of running on unsupervised.
func TestRunChildrenDieWithCcctl(t *testing.T) {
	for _, tc := range []struct{ name, hook string }{
		{"service", ""},
		{"hook", "started_as_master"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"CCCTL_INSTANCE_ID=killed"}
			argv := loopService(dir)
			if tc.hook != "" {
				conf := filepath.Join(dir, "ccctl.yaml")
				y := "hooks:\n  " + tc.hook + ": echo $$ > " + filepath.Join(dir, "svc.pid") + "; while :; do sleep 0.1; done\n"
				if err := os.WriteFile(conf, []byte(y), 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "CCCTL_CONFIG="+conf)
				argv = []string{"sleep", "600"}
			}
			r := background(t, env, append([]string{"run", "--"}, argv...)...)
			pid := readPid(t, filepath.Join(dir, "svc.pid"))
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			r.wait(t, 10*time.Second)
			testutil.Eventually(t, 5*time.Second, "the "+tc.name+" to die with ccctl", func() bool { return !testutil.Alive(pid) })
		})
	}
}
