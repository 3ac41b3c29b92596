package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

func TestEtcdServesUntilInterrupted(t *testing.T) {
	dir := t.TempDir() + "/data"
	listen := freeAddr(t)
	r := background(t, nil, "etcd", "--data-dir", dir, "--listen", listen, "--listen-peer", freeAddr(t))
	testutil.Eventually(t, 30*time.Second, "etcd ready line", func() bool { return strings.Contains(r.stderr.String(), "etcd ready") })
	cli := etcdtest.NewClient(t, "http://"+listen)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get /k: got %v, %v; want v", resp, err)
	}
	if code := r.stop(t, os.Interrupt, 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT: got %d; want 0 (stderr %q)", code, r.stderr.String())
	}
	if _, err := os.Stat(dir + "/etcd.log"); err != nil {
		t.Errorf("etcd.log in the data dir: %v", err)
	}
}

func TestEtcdBadListenIsUsageError(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "etcd", "--listen", "nowhere", "--data-dir", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, `--listen "nowhere": want host:port`) {
		t.Errorf("got %d %q; want 2 and a line naming --listen", r.code, r.stderr)
	}
}

func TestEtcdHelpIsCcctlEtcds(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "etcd", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "ccctl-etcd [flags]") || !strings.Contains(r.stdout, "--listen-peer") {
		t.Errorf("got %d, stdout %q, stderr %q; want 0 and ccctl-etcd's usage", r.code, r.stdout, r.stderr)
	}
	r = ccctl(t, 20*time.Second, nil, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Run ccctl-etcd") {
		t.Errorf("ccctl --help: got %d, stdout %q; want 0 and the etcd command listed", r.code, r.stdout)
	}
}

// copyCcctl copies the ccctl binary alone into a new directory and returns
// the copy's path.
func copyCcctl(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(t.TempDir(), "ccctl")
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return alone
}

func TestEtcdFindsCcctlEtcd(t *testing.T) {
	badListen := []string{"etcd", "--listen", "nowhere", "--data-dir", t.TempDir()}
	wantRan := func(t *testing.T, r result) {
		t.Helper()
		if r.code != 2 || !strings.HasPrefix(r.stderr, `ccctl-etcd: --listen "nowhere"`) {
			t.Errorf("got %d %q; want 2 and ccctl-etcd's line naming --listen", r.code, r.stderr)
		}
	}
	t.Run("beside the target of a symlink", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "ccctl")
		if err := os.Symlink(binary, link); err != nil {
			t.Fatal(err)
		}
		wantRan(t, runAt(t, link, 20*time.Second, []string{"PATH="}, badListen...))
	})
	t.Run("on PATH", func(t *testing.T) {
		wantRan(t, runAt(t, copyCcctl(t), 20*time.Second, []string{"PATH=" + filepath.Dir(binary)}, badListen...))
	})
}

func TestEtcdWithoutCcctlEtcdIsUsageError(t *testing.T) {
	r := runAt(t, copyCcctl(t), 20*time.Second, []string{"PATH="}, "etcd", "--data-dir", t.TempDir())
	want := "ccctl: etcd: ccctl-etcd not found beside ccctl or on PATH; build it: go build -o ccctl-etcd ./cmd/ccctl-etcd " +
		"(or go install github.com/ccctl/ccctl/cmd/ccctl-etcd@latest)\n"
	if r.code != 2 || r.stderr != want {
		t.Errorf("got %d %q; want 2 %q", r.code, r.stderr, want)
	}
}

// TestNoEtcdServerInCcctl keeps etcd's server out of the ccctl binary: it
// belongs in ccctl-etcd, and costs ccctl several MB of binary and of memory.
func TestNoEtcdServerInCcctl(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	list := exec.CommandContext(ctx, "go", "list", "-deps", ".")
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v: %s", err, stderr.String())
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"go.etcd.io/etcd/server", "go.etcd.io/bbolt", "go.etcd.io/raft"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("ccctl depends on %s; want none of etcd's server in ccctl (it belongs in cmd/ccctl-etcd; go mod why %s shows the path)", pkg, pkg)
			}
		}
	}
}
