// Package etcdtest starts real etcd servers for tests and benchmarks: an
// embedded single member (Start), an embedded cluster of several members
// (StartCluster), and Debian's etcd binary in a subprocess (StartBinary), each
// on free loopback ports with its data in tb.TempDir(). A member can be
// stopped (Stop), killed (Kill: SIGKILL of a binary member) and restarted on
// its data (Restart). Proxy
// is a TCP proxy between a client and etcd that a test can cut, delay and
// heal.
//
// Everything started here is stopped in tb.Cleanup. The servers are real
// etcd: they fsync, elect raft leaders and expire leases on their own
// timers. What this package does not guarantee: that a port chosen as free
// is still free when etcd binds it (a start is retried a few times), nor any
// timing of etcd's own (raft elections take about a second). Password
// hashing uses bcrypt's lowest cost, so that tests with authentication stay
// fast.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startTimeout bounds how long a member may take to become ready.
const startTimeout = 30 * time.Second

// Cluster is a running etcd cluster of one or more members.
type Cluster struct {
	tb      testing.TB
	mu      sync.Mutex
	members []*member
}

type member struct {
	name     string
	endpoint string                      // client URL
	restart  func() (*embed.Etcd, error) // nil for a binary member (see relaunch)
	// relaunch starts a binary member's process again on its data; nil
	// for an embedded member.
	relaunch func(ctx context.Context) (stop, kill func(), err error)
	kill     func() // SIGKILL of a binary member's process; guarded by op

	op      sync.Mutex // held by Stop and Restart of this member
	stop    func()     // guarded by op
	stopped bool       // guarded by op and Cluster.mu (either to read)
}

// Start starts an embedded single-member etcd and returns it once it serves
// clients. It is stopped in tb.Cleanup.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	return StartCluster(tb, 1)
}

// StartCluster starts an embedded etcd cluster of n members and returns it
// once every member serves clients. It is stopped in tb.Cleanup.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("etcdtest: cluster of %d members; want at least 1", n)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := startEmbedded(tb, n, nil)
		if err == nil {
			return c
		}
		lastErr = err
	}
	tb.Fatalf("etcdtest: start embedded etcd: %v", lastErr)
	return nil
}

func startEmbedded(tb testing.TB, n int, tlsFiles *TLSFiles) (*Cluster, error) {
	scheme := "http://"
	if tlsFiles != nil {
		scheme = "https://"
	}
	c := &Cluster{tb: tb}
	peers := make([]string, n)
	clients := make([]string, n)
	for i := range n {
		peers[i] = "http://" + freeAddr(tb)
		clients[i] = scheme + freeAddr(tb)
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	dir := tb.TempDir()
	started := make([]*embed.Etcd, 0, n)
	stopAll := func() {
		for _, e := range started {
			e.Close()
		}
	}
	newConfig := func(i int, state string) *embed.Config {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "etcdtest"
		cfg.ClusterState = state
		pu, _ := url.Parse(peers[i])
		cu, _ := url.Parse(clients[i])
		cfg.ListenPeerUrls = []url.URL{*pu}
		cfg.AdvertisePeerUrls = []url.URL{*pu}
		cfg.ListenClientUrls = []url.URL{*cu}
		if tlsFiles != nil {
			cfg.ClientTLSInfo = transport.TLSInfo{
				CertFile:       tlsFiles.serverCert,
				KeyFile:        tlsFiles.serverKey,
				TrustedCAFile:  tlsFiles.CACert,
				ClientCertAuth: true,
			}
		}
		cfg.AdvertiseClientUrls = []url.URL{*cu}
		// The cheapest password hashing: authentication tests stay fast
		// under -race.
		cfg.BcryptCost = 4
		cfg.Logger = "zap"
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{filepath.Join(dir, cfg.Name+".log")}
		return cfg
	}
	for i := range n {
		cfg := newConfig(i, embed.ClusterStateFlagNew)
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("start member %s: %w", cfg.Name, err)
		}
		started = append(started, e)
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for i, e := range started {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			stopAll()
			return nil, fmt.Errorf("member m%d: %w", i, err)
		case <-deadline.C:
			stopAll()
			return nil, fmt.Errorf("members not ready within %v", startTimeout)
		}
	}
	for i, e := range started {
		c.members = append(c.members, &member{
			name:     fmt.Sprintf("m%d", i),
			endpoint: clients[i],
			restart: func() (*embed.Etcd, error) {
				return embed.StartEtcd(newConfig(i, embed.ClusterStateFlagExisting))
			},
			stop: e.Close,
		})
	}
	tb.Cleanup(c.stopAll)
	return c, nil
}

// BinaryEnv names the environment variable that points StartBinary at an
// etcd executable; when it is empty, StartBinary looks for etcd on PATH.
const BinaryEnv = "CCCTL_ETCD_BINARY"

// StartBinary starts a single-member etcd from an etcd executable (Debian's
// etcd 3.4 in CI) in a subprocess and returns it once it serves clients. It
// skips the test when no executable is found (see BinaryEnv). It is stopped
// in tb.Cleanup.
func StartBinary(tb testing.TB) *Cluster {
	tb.Helper()
	bin := os.Getenv(BinaryEnv)
	if bin == "" {
		p, err := exec.LookPath("etcd")
		if err != nil {
			tb.Skipf("etcdtest: no etcd executable: set %s or put etcd on PATH", BinaryEnv)
		}
		bin = p
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := startBinary(tb, bin)
		if err == nil {
			return c
		}
		lastErr = err
	}
	tb.Fatalf("etcdtest: start %s: %v", bin, lastErr)
	return nil
}

func startBinary(tb testing.TB, bin string) (*Cluster, error) {
	dir := tb.TempDir()
	peer := "http://" + freeAddr(tb)
	client := "http://" + freeAddr(tb)
	launch := func(ctx context.Context) (stop, kill func(), err error) {
		logf, err := os.OpenFile(filepath.Join(dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("create log: %w", err)
		}
		cmd := exec.Command(bin,
			"--name", "m0",
			"--data-dir", filepath.Join(dir, "data"),
			"--listen-peer-urls", peer,
			"--initial-advertise-peer-urls", peer,
			"--listen-client-urls", client,
			"--advertise-client-urls", client,
			"--initial-cluster", "m0="+peer,
			"--initial-cluster-state", "new",
			"--initial-cluster-token", "etcdtest",
			"--bcrypt-cost", "4",
		)
		cmd.Stdout = logf
		cmd.Stderr = logf
		// ETCD_UNSUPPORTED_ARCH lets etcd 3.4 run on the architectures it
		// warns about; harmless elsewhere.
		cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, nil, fmt.Errorf("start: %w", err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() {
			waitErr = cmd.Wait()
			logf.Close()
			close(exited)
		}()
		stop = func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		kill = func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if err := waitHealthyCtx(ctx, client, exited); err != nil {
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			if waitErr != nil {
				err = fmt.Errorf("%w (exit: %v)", err, waitErr)
			}
			return nil, nil, fmt.Errorf("%w; log:\n%s", err, tail(log, 2000))
		}
		return stop, kill, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	stop, kill, err := launch(ctx)
	if err != nil {
		return nil, err
	}
	c := &Cluster{tb: tb, members: []*member{{name: "m0", endpoint: client, stop: stop, kill: kill, relaunch: launch}}}
	tb.Cleanup(c.stopAll)
	return c, nil
}

// waitHealthyCtx polls the endpoint until it answers a linearizable read
// (through the raft leader), exited closes or ctx is done.
func waitHealthyCtx(ctx context.Context, endpoint string, exited <-chan struct{}) error {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer cli.Close()
	for {
		select {
		case <-exited:
			return errors.New("etcd exited before serving clients")
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = cli.Get(rctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("etcd exited before serving clients")
		case <-ctx.Done():
			return fmt.Errorf("not serving clients: %w (last error %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (c *Cluster) stopAll() {
	c.mu.Lock()
	ms := append([]*member(nil), c.members...)
	c.mu.Unlock()
	for i := range ms {
		c.Stop(i)
	}
}

// Size returns the number of members, stopped ones included.
func (c *Cluster) Size() int { return len(c.members) }

// Endpoint returns the client URL of member i (http://127.0.0.1:port).
func (c *Cluster) Endpoint(i int) string { return c.members[i].endpoint }

// Endpoints returns the client URLs of the members that have not been
// stopped.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var eps []string
	for _, m := range c.members {
		if !m.stopped {
			eps = append(eps, m.endpoint)
		}
	}
	return eps
}

// Stop stops member i and waits until it has stopped. Stopping a stopped
// member does nothing. Stop and Restart may be called from any goroutine;
// calls for one member are serialized.
func (c *Cluster) Stop(i int) {
	m := c.members[i]
	m.op.Lock()
	defer m.op.Unlock()
	if m.stopped {
		return
	}
	c.mu.Lock()
	m.stopped = true
	c.mu.Unlock()
	begin := time.Now()
	m.stop()
	if took := time.Since(begin); took > time.Second {
		c.tb.Logf("etcdtest: stopping member %s took %v", m.name, took)
	}
}

// Kill stops member i at once, as a crash does: SIGKILL for a member from
// StartBinary, which Restart starts again on its data; an embedded member
// is stopped as Stop does. Killing a stopped member does nothing.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	m.op.Lock()
	defer m.op.Unlock()
	if m.stopped {
		return
	}
	c.mu.Lock()
	m.stopped = true
	c.mu.Unlock()
	if m.kill != nil {
		m.kill()
		return
	}
	m.stop()
}

// ErrRunning is returned by Restart for a member that has not been stopped.
var ErrRunning = errors.New("etcdtest: member is running")

// Restart starts the stopped member i again, as etcd restarts
// after a crash: the same name, data directory, peer and client URLs, and
// initial cluster state "existing" (etcd reads its membership from the data
// directory). It returns once the member serves a linearizable read through
// its own endpoint, that is once it has rejoined the cluster and caught up
// with its leader, or with an error when ctx is done first, when the member
// runs (ErrRunning). A member from StartBinary is started again the same
// way, once it serves clients. A
// port taken by another process meanwhile makes it fail: the URLs are not
// changed. The member is stopped in tb.Cleanup as before.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	m := c.members[i]
	m.op.Lock()
	defer m.op.Unlock()
	if !m.stopped {
		return fmt.Errorf("restart member %s: %w", m.name, ErrRunning)
	}
	if m.relaunch != nil {
		stop, kill, err := m.relaunch(ctx)
		if err != nil {
			return fmt.Errorf("restart member %s: %w", m.name, err)
		}
		m.stop, m.kill = stop, kill
		c.mu.Lock()
		m.stopped = false
		c.mu.Unlock()
		return nil
	}
	if m.restart == nil {
		return fmt.Errorf("restart member %s: not restartable", m.name)
	}
	var (
		e   *embed.Etcd
		err error
	)
	// The ports were closed a moment ago: retry a bind that fails while
	// the kernel still holds them.
	for attempt := 0; ; attempt++ {
		if e, err = m.restart(); err == nil {
			break
		}
		if attempt == 4 {
			return fmt.Errorf("restart member %s: %w", m.name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart member %s: %w (last error %v)", m.name, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("restart member %s: %w", m.name, err)
	case <-ctx.Done():
		e.Close()
		return fmt.Errorf("restart member %s: not ready: %w", m.name, ctx.Err())
	}
	if err := waitHealthyCtx(ctx, m.endpoint, e.Server.StopNotify()); err != nil {
		e.Close()
		return fmt.Errorf("restart member %s: %w", m.name, err)
	}
	m.stop = e.Close
	c.mu.Lock()
	m.stopped = false
	c.mu.Unlock()
	return nil
}

// Client returns a client of every running member, closed in tb.Cleanup.
func (c *Cluster) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	return NewClient(tb, c.Endpoints()...)
}

// NewClient returns a client of the given endpoints, closed in tb.Cleanup.
// It does not wait for a connection.
func NewClient(tb testing.TB, endpoints ...string) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		tb.Fatalf("etcdtest: client of %v: %v", endpoints, err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the member that is the raft leader, waiting
// up to 10 s for the cluster to have one.
func (c *Cluster) Leader(tb testing.TB) int {
	tb.Helper()
	cli := c.Client(tb)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range c.members {
			c.mu.Lock()
			stopped := m.stopped
			c.mu.Unlock()
			if stopped {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.endpoint)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("etcdtest: no raft leader within 10s")
	return -1
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("etcdtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
