package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

func TestVersion(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ccctl ") {
		t.Errorf("got %d %q; want 0 and a line starting with ccctl", r.code, r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := ccctl(t, 20*time.Second, nil, "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "ccctl") {
			t.Errorf("completion %s: got %d, %d bytes; want 0 and a script", sh, r.code, len(r.stdout))
		}
	}
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "status", "--bogus")
	if r.code != 2 || !strings.Contains(r.stderr, "unknown flag: --bogus") {
		t.Errorf("got %d %q; want 2 and the unknown flag named", r.code, r.stderr)
	}
}

func TestRunYAMLErrorsExit2(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "ttl: 5s\nretries: 3\n", `line 2: unknown key "retries"`},
		{"unknown hook", "hooks:\n  on_start: echo\n", `hooks.on_start: unknown hook`},
		{"bad cron", "jobs:\n  - name: j\n    schedule: '61 * * * *'\n    command: echo\n", `jobs[0].schedule: "61 * * * *": want 5 or 6 cron fields`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ccctl.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			r := ccctl(t, 20*time.Second, nil, "run", "--config", p, "--", "true")
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("got %d %q; want 2 and one line containing %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestRunJobsAndHTTPOnMemoryBackend(t *testing.T) {
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	p := filepath.Join(dir, "ccctl.yaml")
	y := "jobs:\n  - name: tick\n    schedule: '@every 1s'\n    command: echo \"$CC_JOB $CC_ROLE\" >> " + marks + "\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	r := background(t, []string{"CCCTL_CONFIG=" + p, "CCCTL_HTTP_ADDR=" + addr, "CCCTL_INSTANCE_ID=solo"}, "run", "--", "sleep", "600")
	testutil.Eventually(t, 20*time.Second, "a job run", func() bool {
		b, _ := os.ReadFile(marks)
		return strings.Contains(string(b), "tick master")
	})
	var st struct {
		ID   string `json:"id"`
		Role string `json:"role"`
		Jobs map[string]struct {
			Result string `json:"result"`
		} `json:"jobs"`
	}
	testutil.Eventually(t, 20*time.Second, "the job's result in /status", func() bool {
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return false
		}
		return st.Jobs["tick"].Result == "success"
	})
	if st.ID != "solo" || st.Role != "master" {
		t.Errorf("/status: got id %q role %q; want solo master", st.ID, st.Role)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ccctl_executions{job="tick"}`, "ccctl_is_master 1", "ccctl_lease_seconds_left"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics: want %s in it", want)
		}
	}
	if h := ccctl(t, 20*time.Second, []string{"CCCTL_HTTP_ADDR=" + addr}, "health", "--role", "master"); h.code != 0 {
		t.Errorf("health --role master: got %d; want 0", h.code)
	}
	if code := r.stop(t, syscall.SIGTERM, 20*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code: got %d; want %d", code, 128+int(syscall.SIGTERM))
	}
}

func TestRunWaitForNeedsEtcd(t *testing.T) {
	r := ccctl(t, 20*time.Second, []string{"WAIT_FOR_SERVICES=db"}, "run", "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "WAIT_FOR_SERVICES: needs etcd") {
		t.Errorf("got %d %q; want 2 and a line naming WAIT_FOR_SERVICES", r.code, r.stderr)
	}
}

func TestRunStandalone(t *testing.T) {
	r := ccctl(t, 20*time.Second, []string{"ETCD_ENDPOINTS=http://" + freeAddr(t)}, "run", "--standalone", "--", "sh", "-c", "echo alone; exit 5")
	if r.code != 5 || r.stdout != "alone\n" || !strings.Contains(r.stderr, "standalone") {
		t.Errorf("got %d %q %q; want 5, the output, and a line saying standalone (etcd not contacted)", r.code, r.stdout, r.stderr)
	}
}

// TestStandaloneSignals: standalone runs on the member's supervisor, with
// its signal set: SIGPIPE sent to ccctl is dropped (the service lives on),
// SIGWINCH is forwarded, SIGTERM stops the service.
func TestStandaloneSignals(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	script := `trap 'echo winch' WINCH; trap 'echo term; exit 7' TERM; touch '` + ready + `'; while :; do sleep 0.05; done`
	r := background(t, nil, "run", "--standalone", "--", "sh", "-c", script)
	testutil.Eventually(t, 20*time.Second, "the service to start", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	r.cmd.Process.Signal(syscall.SIGPIPE)
	r.cmd.Process.Signal(syscall.SIGWINCH)
	testutil.Eventually(t, 20*time.Second, "SIGWINCH forwarded", func() bool { return strings.Contains(r.stdout.String(), "winch") })
	if code := r.stop(t, syscall.SIGTERM, 20*time.Second); code != 7 || !strings.Contains(r.stdout.String(), "term") {
		t.Errorf("got %d, output %q; want 7 after the service's TERM trap (SIGPIPE dropped, not fatal)", code, r.stdout.String())
	}
}

func TestJSONLogsCarryTheMemberID(t *testing.T) {
	r := ccctl(t, 20*time.Second, []string{"CCCTL_LOG_FORMAT=json", "CCCTL_INSTANCE_ID=m7"}, "run", "--", "true")
	if r.code != 0 {
		t.Fatalf("got %d %q; want 0", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 3 {
		t.Fatalf("stderr: got %d lines; want the controller's log", len(lines))
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %q: %v; want JSON", line, err)
			continue
		}
		if rec["member"] != "m7" {
			t.Errorf("log line %q: member got %v; want m7", line, rec["member"])
		}
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	r := ccctl(t, 20*time.Second, []string{"CCCTL_TTL=5s"}, "run", "--ttl", "1s", "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, `--ttl: "1s": want at least 2s`) {
		t.Errorf("got %d %q; want 2 and an error naming --ttl", r.code, r.stderr)
	}
	r = ccctl(t, 20*time.Second, []string{"CCCTL_TTL=1s"}, "run", "--ttl", "5s", "--", "true")
	if r.code != 0 {
		t.Errorf("flag 5s over env 1s: got %d %q; want 0", r.code, r.stderr)
	}
}
