package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/fslock"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

func TestRunMemoryBackendPassesOutputAndExitCode(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "run", "--", "sh", "-c", "echo hello; echo oops >&2; exit 3")
	if r.code != 3 {
		t.Errorf("exit code: got %d; want 3 (stderr %q)", r.code, r.stderr)
	}
	if r.stdout != "hello\n" {
		t.Errorf("stdout: got %q; want %q", r.stdout, "hello\n")
	}
	if !strings.Contains(r.stderr, "oops\n") {
		t.Errorf("stderr: got %q; want it to contain the service's %q", r.stderr, "oops")
	}
	if n := strings.Count(r.stderr, "memory backend"); n != 1 {
		t.Errorf("stderr: got %d lines about the memory backend; want 1: %q", n, r.stderr)
	}
}

func TestRunExitCodeOfSignal(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "run", "--", "sh", "-c", "kill -9 $$")
	if r.code != 128+9 {
		t.Errorf("exit code: got %d; want %d (stderr %q)", r.code, 128+9, r.stderr)
	}
}

func TestRunSuppressLogRegexp(t *testing.T) {
	r := ccctl(t, 20*time.Second, []string{"SUPPRESS_LOG_REGEXP=^noise"}, "run", "--", "sh", "-c", "echo noise 1; echo keep; echo noise 2")
	if r.code != 0 || r.stdout != "keep\n" {
		t.Errorf("got code %d stdout %q; want 0 and %q", r.code, r.stdout, "keep\n")
	}
}

func TestRunWithoutCommandIsUsageError(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "run")
	if r.code != 2 {
		t.Errorf("exit code: got %d; want 2 (stderr %q)", r.code, r.stderr)
	}
}

func TestRunBadConfigurationExits2BeforeStarting(t *testing.T) {
	dir := t.TempDir()
	marker := dir + "/started"
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"port", []string{"ETCD_PORT=abc"}, `ETCD_PORT: "abc": want a TCP port number`},
		{"ttl", []string{"CCCTL_TTL=1s"}, `CCCTL_TTL: "1s": want at least 2s`},
		{"bool", []string{"TERMINATE_WHEN_NO_LONGER_ACTIVE=maybe"}, `TERMINATE_WHEN_NO_LONGER_ACTIVE: "maybe": want true or false`},
		{"config file", []string{"CCCTL_CONFIG=" + dir + "/missing.yaml"}, "CCCTL_CONFIG: want a readable YAML file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ccctl(t, 20*time.Second, tt.env, "run", "--", "touch", marker)
			if r.code != 2 {
				t.Errorf("exit code: got %d; want 2", r.code)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr: got %q; want one line containing %q", r.stderr, tt.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the service ran; want it never started")
			}
		})
	}
}

func TestRunFilesystemLockHeldWhileRunning(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "ccctl.yaml")
	if err := os.WriteFile(conf, []byte("filesystem_locks: ["+dir+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ccctl(t, 30*time.Second, []string{"CCCTL_CONFIG=" + conf, "CCCTL_INSTANCE_ID=locker"}, "run", "--", "cat", dir+"/.ccctl.lock")
	if r.code != 0 || !strings.Contains(r.stdout, `"id":"locker"`) {
		t.Errorf("got %d %q (stderr %q); want 0 and the lock file naming the member", r.code, r.stdout, r.stderr)
	}
}

// TestRunFilesystemLocksRequired: with filesystem_locks_required, the
// service does not start while another holder has the lock, and starts
// once the lock is released, holding it.
func TestRunFilesystemLocksRequired(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "ccctl.yaml")
	if err := os.WriteFile(conf, []byte("filesystem_locks: ["+dir+"]\nfilesystem_locks_required: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	holder, err := fslock.TryLock(dir, fslock.Owner{ID: "other"})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Unlock()
	marker := filepath.Join(t.TempDir(), "started")
	r := background(t, []string{"CCCTL_CONFIG=" + conf, "CCCTL_INSTANCE_ID=locker"},
		"run", "--", "/bin/sh", "-c", "cat "+dir+"/.ccctl.lock > "+marker)
	testutil.Eventually(t, 30*time.Second, "ccctl to wait for the lock", func() bool {
		return strings.Contains(r.stderr.String(), "waiting for filesystem lock")
	})
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("the service started while another holder had the lock")
	}
	holder.Unlock()
	if code := r.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("ccctl run: exit %d; stderr %q", code, r.stderr.String())
	}
	if b, _ := os.ReadFile(marker); !strings.Contains(string(b), `"id":"locker"`) {
		t.Errorf("the service saw the lock file %q; want it naming the member", b)
	}
}
