package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// hooksFile writes a YAML file whose hooks print their event on stdout.
func hooksFile(t *testing.T) string {
	t.Helper()
	y := "hooks:\n"
	for _, h := range []string{"started_as_master", "started_as_slave", "transition_slave_to_master", "transition_master_to_slave", "stopping"} {
		y += fmt.Sprintf("  %s: echo \"hook $CC_EVENT $CC_INSTANCE_ID role=$CC_ROLE token=$CC_FENCING_TOKEN\"\n", h)
	}
	p := filepath.Join(t.TempDir(), "ccctl.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunOnEtcdFailoverHooksAndHTTP(t *testing.T) {
	e := etcdtest.Start(t)
	conf := hooksFile(t)
	base := []string{"ETCD_ENDPOINTS=" + e.Endpoint(0), "ENVIRONMENT=test", "SERVICE=web", "CCCTL_TTL=3", "CCCTL_CONFIG=" + conf, "CCCTL_GRACE_PERIOD=2s"}
	env := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	service := []string{"run", "--", "sleep", "600"}

	addr1 := freeAddr(t)
	m1 := background(t, env("CCCTL_INSTANCE_ID=m1", "CCCTL_HTTP_ADDR="+addr1), service...)
	testutil.Eventually(t, 30*time.Second, "m1 master", func() bool {
		return strings.Contains(m1.stdout.String(), "hook started_as_master m1 role=master token=")
	})
	addr2 := freeAddr(t)
	m2 := background(t, env("CCCTL_INSTANCE_ID=m2", "CCCTL_HTTP_ADDR="+addr2), service...)
	m3 := background(t, env("CCCTL_INSTANCE_ID=m3"), service...)
	for _, m := range []*running{m2, m3} {
		testutil.Eventually(t, 30*time.Second, "slave init hook", func() bool {
			return strings.Contains(m.stdout.String(), "hook started_as_slave")
		})
	}

	r := ccctl(t, 30*time.Second, base, "leader")
	if r.stdout != "m1\n" {
		t.Errorf("leader: got %q (stderr %q); want m1", r.stdout, r.stderr)
	}
	var v clusterView
	testutil.Eventually(t, 30*time.Second, "three active members in status", func() bool {
		r := ccctl(t, 30*time.Second, base, "status", "-o", "json")
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			return false
		}
		running := 0
		for _, m := range v.Members {
			if m.State == "active" { // no ports when active: active once running
				running++
			}
		}
		return running == 3
	})

	// The local controller's health, over HTTP.
	healthEnv := func(addr string) []string { return []string{"CCCTL_HTTP_ADDR=" + addr} }
	if r := ccctl(t, 30*time.Second, healthEnv(addr1), "health", "--role", "master"); r.code != 0 {
		t.Errorf("health --role master on m1: got %d %q %q; want 0", r.code, r.stdout, r.stderr)
	}
	if r := ccctl(t, 30*time.Second, healthEnv(addr2), "health", "--role", "master"); r.code != 1 {
		t.Errorf("health --role master on m2: got %d; want 1", r.code)
	}
	if r := ccctl(t, 30*time.Second, healthEnv(addr2), "health"); r.code != 0 {
		t.Errorf("health on m2: got %d %q; want 0", r.code, r.stderr)
	}
	resp, err := http.Get("http://" + addr1 + "/status")
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	for _, k := range []string{"id", "environment", "service", "role", "state", "master", "token", "paused", "locks", "jobs"} {
		if _, ok := st[k]; !ok {
			t.Errorf("/status: got %v; want key %q", st, k)
		}
	}
	if st["role"] != "master" || st["id"] != "m1" {
		t.Errorf("/status: got role %v id %v; want master m1", st["role"], st["id"])
	}
	resp, err = http.Get("http://" + addr1 + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"ccctl_is_master 1", "ccctl_fencing_token", "ccctl_hook_runs_total", "ccctl_lease_seconds_left"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics: want %q in it", want)
		}
	}

	// A graceful stop of the master hands over at once.
	if code := m1.stop(t, syscall.SIGTERM, 30*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("m1 exit code: got %d; want %d, the service's (stderr %q)", code, 128+int(syscall.SIGTERM), m1.stderr.String())
	}
	if !strings.Contains(m1.stdout.String(), "hook stopping m1") {
		t.Errorf("m1 stdout: got %q; want the stopping hook", m1.stdout.String())
	}
	testutil.Eventually(t, 15*time.Second, "a slave promoted", func() bool {
		return strings.Contains(m2.stdout.String()+m3.stdout.String(), "hook transition_slave_to_master")
	})
	r = ccctl(t, 30*time.Second, base, "leader")
	if r.stdout != "m2\n" && r.stdout != "m3\n" {
		t.Errorf("leader after m1 stopped: got %q; want m2 or m3", r.stdout)
	}

	// Switchover back and forth between the two left.
	other := "m2"
	if r.stdout == "m2\n" {
		other = "m3"
	}
	r = ccctl(t, 60*time.Second, base, "switchover", "--to", other, "--timeout", "30s")
	if r.code != 0 || !strings.Contains(r.stdout, other+" is master") {
		t.Errorf("switchover --to %s: got %d %q %q; want 0", other, r.code, r.stdout, r.stderr)
	}
	for _, m := range []*running{m2, m3} {
		if code := m.stop(t, syscall.SIGTERM, 30*time.Second); code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit code: got %d; want %d", code, 128+int(syscall.SIGTERM))
		}
	}
}

func TestRunEtcdUnreachableExits3(t *testing.T) {
	env := []string{"ETCD_ENDPOINTS=http://" + freeAddr(t), "CCCTL_ETCD_DIAL_TIMEOUT=1s", "CCCTL_ETCD_CONNECT_TIMEOUT=2s"}
	dir := t.TempDir()
	r := ccctl(t, 30*time.Second, env, "run", "--", "touch", dir+"/started")
	if r.code != 3 || !strings.Contains(r.stderr, "connect to etcd at http://127.0.0.1:") {
		t.Errorf("got %d %q; want 3 and a line naming the endpoint", r.code, r.stderr)
	}
	if _, err := os.Stat(dir + "/started"); err == nil {
		t.Errorf("the service ran; want it never started")
	}
}

func TestRunInitHookFailureExits4(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ccctl.yaml")
	if err := os.WriteFile(p, []byte("hooks:\n  started_as_master: exit 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := ccctl(t, 30*time.Second, []string{"CCCTL_CONFIG=" + p}, "run", "--", "touch", dir+"/started")
	if r.code != 4 {
		t.Errorf("exit code: got %d; want 4 (stderr %q)", r.code, r.stderr)
	}
	if _, err := os.Stat(dir + "/started"); err == nil {
		t.Errorf("the service ran; want it never started")
	}
}

func TestRunWaitForTimesOutWith3(t *testing.T) {
	e := etcdtest.Start(t)
	dir := t.TempDir()
	env := []string{"ETCD_ENDPOINTS=" + e.Endpoint(0), "ENVIRONMENT=test", "SERVICE=app", "WAIT_FOR_SERVICES=db", "CCCTL_WAIT_FOR_TIMEOUT=2s"}
	r := ccctl(t, 30*time.Second, env, "run", "--", "touch", dir+"/started")
	if r.code != 3 || !strings.Contains(r.stderr, "db") {
		t.Errorf("got %d %q; want 3 and a line naming db", r.code, r.stderr)
	}
	if _, err := os.Stat(dir + "/started"); err == nil {
		t.Errorf("the service ran; want it never started")
	}
}

func TestRunLeadershipLostExitActionExits5(t *testing.T) {
	e := etcdtest.Start(t)
	env := []string{"ETCD_ENDPOINTS=" + e.Endpoint(0), "ENVIRONMENT=test", "SERVICE=lost", "CCCTL_INSTANCE_ID=m1", "CCCTL_LEADERSHIP_LOST_ACTION=exit", "CCCTL_GRACE_PERIOD=2s"}
	r := background(t, env, "run", "--", "sleep", "600")
	testutil.Eventually(t, 30*time.Second, "m1 leads", func() bool {
		return ccctl(t, 30*time.Second, env, "leader").stdout == "m1\n"
	})
	// An operator (or a bug elsewhere) deletes the leader key.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Client(t).Delete(ctx, "/ccctl/test/lost/election/", clientv3.WithPrefix()); err != nil {
		t.Fatalf("delete the leader key: %v", err)
	}
	if code := r.wait(t, 30*time.Second); code != 5 {
		t.Errorf("exit code: got %d; want 5 (stderr %q)", code, r.stderr.String())
	}
}
