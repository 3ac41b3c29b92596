package etcd_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// connectCase is one way a connection to etcd can fail, with what the one
// line must say and the sentinel it must wrap.
type connectCase struct {
	name string
	cfg  etcd.Config
	want []string // each must appear in the error
	is   error
}

func checkConnect(t *testing.T, tc connectCase) {
	t.Helper()
	cfg := tc.cfg
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cli, err := etcd.NewClient(ctx, cfg)
	if err == nil {
		cli.Close()
		t.Fatalf("NewClient: got nil error; want one wrapping %v", tc.is)
	}
	t.Logf("NewClient: %v", err)
	if !errors.Is(err, tc.is) {
		t.Errorf("NewClient: got %v; want an error wrapping %v", err, tc.is)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("NewClient: got %q; want one line", msg)
	}
	for _, w := range append([]string{"connect to etcd at " + strings.Join(cfg.Endpoints, ",")}, tc.want...) {
		if !strings.Contains(msg, w) {
			t.Errorf("NewClient: got %q; want it to say %q", msg, w)
		}
	}
}

// TestConnectAuth: a role granted readwrite --prefix <prefix>/ only (least
// privilege) connects and runs a member that leads; a wrong password and a
// role without the prefix are each one line naming the cause, wrapping
// ErrInvalidConfig (exit 2), not retried as an outage.
func TestConnectAuth(t *testing.T) { testConnectAuth(t, etcdtest.Start(t)) }

// TestConnectAuthEtcd34 is TestConnectAuth against Debian's etcd 3.4.
func TestConnectAuthEtcd34(t *testing.T) { testConnectAuth(t, etcdtest.StartBinary(t)) }

func testConnectAuth(t *testing.T, e *etcdtest.Cluster) {
	direct := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(direct.UserAdd(ctx, "root", "rootpw"))
	must(direct.UserGrantRole(ctx, "root", "root"))
	must(direct.RoleAdd(ctx, "ccctl"))
	must(direct.RoleGrantPermission(ctx, "ccctl", "/ccctl/", "/ccctl0", 2)) // readwrite --prefix /ccctl/
	must(direct.UserAdd(ctx, "member", "memberpw"))
	must(direct.UserGrantRole(ctx, "member", "ccctl"))
	must(direct.RoleAdd(ctx, "other"))
	must(direct.RoleGrantPermission(ctx, "other", "/other/", "/other0", 2))
	must(direct.UserAdd(ctx, "outsider", "outsiderpw"))
	must(direct.UserGrantRole(ctx, "outsider", "other"))
	must(direct.AuthEnable(ctx))

	cfg := etcd.Config{Endpoints: e.Endpoints(), Cluster: newCluster(), ID: "a", TTL: testTTL,
		Username: "member", Password: "memberpw", Logger: quietLogger()}
	t.Run("least privilege", func(t *testing.T) {
		a := openWith(t, cfg)
		if l := lead(t, a); l == nil {
			t.Fatal("no leadership")
		}
		if got := leaderOf(t, a); got.ID != "a" {
			t.Fatalf("leader = %+v; want a", got)
		}
	})
	wrong := cfg
	wrong.Password = "wrong"
	outsider := cfg
	outsider.Username, outsider.Password = "outsider", "outsiderpw"
	none := cfg
	none.Username, none.Password = "", ""
	for _, tc := range []connectCase{
		{"wrong password", wrong, []string{`authentication failed for user "member"`}, coordinator.ErrInvalidConfig},
		{"role without the prefix", outsider, []string{`permission denied: user "outsider" may not read /ccctl/`, "readwrite --prefix /ccctl/"}, coordinator.ErrInvalidConfig},
		{"no credentials", none, []string{"authentication required"}, coordinator.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) { checkConnect(t, tc) })
	}
}

// TestConnectTLSCauses: each TLS failure names its cause (the x509 one
// where there is one) and wraps ErrInvalidConfig, at once, not after the
// dial timeout.
func TestConnectTLSCauses(t *testing.T) {
	e, files := etcdtest.StartTLS(t)
	foreign := etcdtest.WritePKI(t)
	ep := e.Endpoint(0)
	plain := etcdtest.Start(t).Endpoint(0)
	refused := freeLoopback(t)
	base := etcd.Config{Endpoints: []string{ep}, Logger: quietLogger(), DialTimeout: 20 * time.Second}
	wrongCA := base
	wrongCA.CACert, wrongCA.Cert, wrongCA.Key = foreign.CACert, files.Cert, files.Key
	noCert := base
	noCert.CACert = files.CACert
	foreignCert := base
	foreignCert.CACert, foreignCert.Cert, foreignCert.Key = files.CACert, foreign.Cert, foreign.Key
	httpToTLS := base
	httpToTLS.Endpoints = []string{strings.Replace(ep, "https://", "http://", 1)}
	tlsToPlain := base
	tlsToPlain.Endpoints = []string{strings.Replace(plain, "http://", "https://", 1)}
	tlsToPlain.CACert = files.CACert
	for _, tc := range []connectCase{
		{"wrong CA", wrongCA, []string{"x509: ", "signed by unknown authority", "CA certificate"}, coordinator.ErrInvalidConfig},
		{"no client certificate", noCert, []string{"requires a client certificate"}, coordinator.ErrInvalidConfig},
		{"foreign client certificate", foreignCert, []string{"refused the client certificate"}, coordinator.ErrInvalidConfig},
		{"http:// against TLS", httpToTLS, []string{"speaks TLS: use https://"}, coordinator.ErrInvalidConfig},
		{"https:// against plain", tlsToPlain, []string{"does not speak TLS: use http://"}, coordinator.ErrInvalidConfig},
		// One endpoint may come back: retried (exit 3), both causes named.
		{"one speaks TLS, one refused", etcd.Config{Endpoints: []string{httpToTLS.Endpoints[0], "http://" + refused},
			Logger: quietLogger(), DialTimeout: 20 * time.Second},
			[]string{httpToTLS.Endpoints[0] + ": the endpoint speaks TLS", "http://" + refused + ": connection refused"}, coordinator.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			checkConnect(t, tc)
			// The dial timeout is 20s: an answer long before it shows the
			// cause was found on the way, not waited out.
			if took := time.Since(begin); took > 10*time.Second {
				t.Errorf("NewClient took %v; want the cause found before the dial timeout of %v", took, tc.cfg.DialTimeout)
			}
		})
	}
}

// TestConnectNetworkCauses: what may come back (nothing listening, a host
// name not found, a server that never answers) is named and wraps
// ErrUnavailable (exit 3).
func TestConnectNetworkCauses(t *testing.T) {
	refused := freeLoopback(t)
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
	cfg := func(ep string) etcd.Config {
		return etcd.Config{Endpoints: []string{ep}, Logger: quietLogger(), DialTimeout: 2 * time.Second}
	}
	for _, tc := range []connectCase{
		{"refused", cfg("http://" + refused), []string{"connection refused: nothing listens on " + refused}, coordinator.ErrUnavailable},
		{"host not found", cfg("http://no-such-host.invalid:2379"), []string{"host no-such-host.invalid not found (DNS)"}, coordinator.ErrUnavailable},
		{"no answer", cfg("http://" + hole.Addr().String()), []string{"no answer within 2s"}, coordinator.ErrUnavailable},
		{"one refused, one not found", etcd.Config{Endpoints: []string{"http://" + refused, "http://no-such-host.invalid:2379"}, Logger: quietLogger(), DialTimeout: 2 * time.Second},
			[]string{"http://" + refused + ": connection refused", "http://no-such-host.invalid:2379: host no-such-host.invalid not found"}, coordinator.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) { checkConnect(t, tc) })
	}
}

// TestConnectHonoursContextDeadline: an attempt ends at ctx's deadline even
// when the dial timeout is longer, token request included.
func TestConnectHonoursContextDeadline(t *testing.T) {
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
	cfg := etcd.Config{Endpoints: []string{"http://" + hole.Addr().String()}, Logger: quietLogger(),
		DialTimeout: 20 * time.Second, Username: "u", Password: "p"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	begin := time.Now()
	cli, err := etcd.NewClient(ctx, cfg)
	took := time.Since(begin)
	if err == nil {
		cli.Close()
		t.Fatal("NewClient: got nil error; want one")
	}
	if !errors.Is(err, coordinator.ErrUnavailable) {
		t.Errorf("NewClient: got %v; want ErrUnavailable", err)
	}
	if took > 5*time.Second {
		t.Errorf("NewClient took %v with a context of 1s; want it ended by the context", took)
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
