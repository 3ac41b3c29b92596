package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// errorLine returns the line of stderr that carries the final error (the
// one that names etcd's endpoints and ends with the sentinel).
func errorLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "connect to etcd at ") && !strings.Contains(l, "retrying") {
			return l
		}
	}
	return ""
}

// checkRunFails runs ccctl run with env and checks its exit code, that the
// service never started, and that the final error line says each of want.
func checkRunFails(t *testing.T, env []string, code int, want ...string) result {
	t.Helper()
	dir := t.TempDir()
	begin := time.Now()
	r := ccctl(t, 60*time.Second, env, "run", "--", "touch", filepath.Join(dir, "started"))
	t.Logf("exit %d after %v; stderr:\n%s", r.code, time.Since(begin).Round(time.Millisecond), r.stderr)
	if r.code != code {
		t.Errorf("exit code: got %d; want %d", r.code, code)
	}
	line := errorLine(r.stderr)
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("error line %q: want it to say %q", line, w)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Errorf("the service ran; want it never started")
	}
	return r
}

// TestRunEtcdAuthErrors: a role granted readwrite --prefix /ccctl/ runs a
// member; a wrong password and a role without the prefix exit 2 at once
// (the connect timeout is 60 s) with one line naming the cause.
func TestRunEtcdAuthErrors(t *testing.T) {
	e := etcdtest.Start(t)
	e.EnableAuth(t,
		etcdtest.PrefixUser{Name: "member", Password: "memberpw", Prefix: "/ccctl/"},
		etcdtest.PrefixUser{Name: "outsider", Password: "outsiderpw", Prefix: "/other/"})
	base := []string{"ETCD_ENDPOINTS=" + e.Endpoint(0), "ENVIRONMENT=test", "SERVICE=web", "CCCTL_INSTANCE_ID=m1",
		"CCCTL_TTL=3", "CCCTL_ETCD_CONNECT_TIMEOUT=60s"}
	env := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }

	t.Run("least privilege", func(t *testing.T) {
		dir := t.TempDir()
		r := ccctl(t, 60*time.Second, env("ETCD_USERNAME=member", "ETCD_PASSWORD=memberpw"),
			"run", "--", "sh", "-c", "echo $CC_ROLE > "+filepath.Join(dir, "role"))
		if r.code != 0 {
			t.Fatalf("exit code: got %d; want 0; stderr %q", r.code, r.stderr)
		}
		role, err := os.ReadFile(filepath.Join(dir, "role"))
		if err != nil || string(role) != "master\n" {
			t.Errorf("the service saw role %q (%v); want master", role, err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		begin := time.Now()
		r := checkRunFails(t, env("ETCD_USERNAME=member", "ETCD_PASSWORD=wrong"), 2, `authentication failed for user "member"`)
		if strings.Contains(r.stderr, "retrying") {
			t.Errorf("a wrong password was retried; want exit at once")
		}
		if took := time.Since(begin); took > 30*time.Second {
			t.Errorf("took %v; want an exit long before the connect timeout of 60s", took)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		r := checkRunFails(t, env("ETCD_USERNAME=outsider", "ETCD_PASSWORD=outsiderpw"), 2,
			`permission denied: user "outsider" may not read /ccctl/`)
		if strings.Contains(r.stderr, "retrying") {
			t.Errorf("a permission denied was retried; want exit at once")
		}
	})
}

// TestRunEtcdTLSErrors: a wrong CA exits 2 with the x509 cause; a missing
// client certificate and http:// against a TLS etcd are named, exit 2.
func TestRunEtcdTLSErrors(t *testing.T) {
	e, files := etcdtest.StartTLS(t)
	foreign := etcdtest.WritePKI(t)
	base := []string{"ENVIRONMENT=test", "SERVICE=web", "CCCTL_INSTANCE_ID=m1", "CCCTL_ETCD_CONNECT_TIMEOUT=60s"}
	env := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	ep := e.Endpoint(0)
	t.Run("wrong CA", func(t *testing.T) {
		checkRunFails(t, env("ETCD_ENDPOINTS="+ep, "ETCD_CACERT="+foreign.CACert, "ETCD_CERT="+files.Cert, "ETCD_KEY="+files.Key), 2,
			"x509: certificate signed by unknown authority")
	})
	t.Run("no client certificate", func(t *testing.T) {
		checkRunFails(t, env("ETCD_ENDPOINTS="+ep, "ETCD_CACERT="+files.CACert), 2, "etcd requires a client certificate")
	})
	t.Run("http against https", func(t *testing.T) {
		checkRunFails(t, env("ETCD_ENDPOINTS="+strings.Replace(ep, "https://", "http://", 1)), 2, "the endpoint speaks TLS: use https://")
	})
}

// TestRunEtcdNetworkErrors: what may come back is retried until the
// connect timeout and exits 3, naming the cause.
func TestRunEtcdNetworkErrors(t *testing.T) {
	base := []string{"ENVIRONMENT=test", "SERVICE=web", "CCCTL_INSTANCE_ID=m1", "CCCTL_ETCD_DIAL_TIMEOUT=1s", "CCCTL_ETCD_CONNECT_TIMEOUT=2s"}
	env := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	t.Run("refused", func(t *testing.T) {
		addr := freeAddr(t)
		checkRunFails(t, env("ETCD_ENDPOINTS=http://"+addr), 3, "connection refused: nothing listens on "+addr)
	})
	t.Run("host not found", func(t *testing.T) {
		checkRunFails(t, env("ETCD_ENDPOINTS=http://no-such-host.invalid:2379"), 3, "host no-such-host.invalid not found (DNS)")
	})
}

// TestRunEtcdConnectTimeoutHonoured: against an endpoint that accepts and
// never answers, CCCTL_ETCD_CONNECT_TIMEOUT=3s with a dial timeout of 2s
// ends ccctl run after about 3s. The retries used to ignore the deadline
// within an attempt: here they gave up at 2s (a second attempt would not
// have fit), and with a connect timeout of 8s and the dial timeout of 5s
// the second attempt began at 6s and ended at 11s.
func TestRunEtcdConnectTimeoutHonoured(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	const timeout = 3 * time.Second
	env := []string{"ENVIRONMENT=test", "SERVICE=web", "CCCTL_INSTANCE_ID=m1", "ETCD_ENDPOINTS=http://" + hole.Addr().String(),
		"CCCTL_ETCD_DIAL_TIMEOUT=2s", "CCCTL_ETCD_CONNECT_TIMEOUT=" + timeout.String()}
	begin := time.Now()
	checkRunFails(t, env, 3, "no answer within", "gave up after 3s")
	took := time.Since(begin)
	// The upper bound leaves room for the start of a -race binary on a
	// loaded machine; the old overshoot was 2s.
	if took < timeout || took > timeout+900*time.Millisecond {
		t.Errorf("ccctl run exited after %v; want about %v (the connect timeout)", took, timeout)
	}
}
