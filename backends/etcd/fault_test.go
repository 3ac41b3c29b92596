package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// waitTimeout bounds every wait for something that must happen.
const waitTimeout = 15 * time.Second

func newCluster() coordinator.Cluster {
	return coordinator.Cluster{Environment: "test", Service: fmt.Sprintf("svc%d", clusterSeq.Add(1))}
}

// open opens and registers member id of cl, reaching etcd at endpoints.
func open(t testing.TB, cl coordinator.Cluster, id string, endpoints ...string) *etcd.Coordinator {
	t.Helper()
	return openWith(t, etcd.Config{Endpoints: endpoints, Cluster: cl, ID: id, TTL: testTTL, Logger: quietLogger()})
}

// openWith opens and registers a member configured by cfg.
func openWith(t testing.TB, cfg etcd.Config) *etcd.Coordinator {
	t.Helper()
	return openOn(t, nil, cfg)
}

// openOn opens and registers a member configured by cfg on cli, a client
// the caller owns (nil: a client of its own, from cfg).
func openOn(t testing.TB, cli *clientv3.Client, cfg etcd.Config) *etcd.Coordinator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *etcd.Coordinator
	var err error
	if cli == nil {
		c, err = etcd.New(ctx, cfg)
	} else {
		c, err = etcd.NewWithClient(ctx, cli, cfg)
	}
	if err != nil {
		t.Fatalf("etcd.New(%s): %v", cfg.ID, err)
	}
	t.Cleanup(func() {
		begin := time.Now()
		err := c.Close()
		if took := time.Since(begin); took > time.Second || err != nil {
			t.Logf("Close(%s) took %v: %v", cfg.ID, took, err)
		}
	})
	if err := c.Register(ctx, coordinator.Member{ID: cfg.ID, State: coordinator.StateRunning}); err != nil {
		t.Fatalf("Register(%s): %v", cfg.ID, err)
	}
	return c
}

type result struct {
	l   coordinator.Leadership
	err error
	at  time.Time
}

// campaign runs c.Campaign(ctx) in a goroutine that the test waits for.
func campaign(t testing.TB, ctx context.Context, c coordinator.Coordinator) <-chan result {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l, err := c.Campaign(ctx)
		ch <- result{l, err, time.Now()}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("Campaign(%s) still running at cleanup", c.ID())
		}
	})
	return ch
}

func lead(t testing.TB, c coordinator.Coordinator) coordinator.Leadership {
	t.Helper()
	select {
	case r := <-campaign(t, context.Background(), c):
		if r.err != nil {
			t.Fatalf("Campaign(%s): got %v; want leadership", c.ID(), r.err)
		}
		return r.l
	case <-time.After(waitTimeout):
		t.Fatalf("Campaign(%s) did not return within %v", c.ID(), waitTimeout)
		return nil
	}
}

func waitWon(t testing.TB, ch <-chan result, who string, d time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Campaign(%s): got %v; want leadership", who, r.err)
		}
		return r
	case <-time.After(d):
		t.Fatalf("Campaign(%s) did not win within %v", who, d)
		return result{}
	}
}

func stillWaiting(t testing.TB, ch <-chan result, who, why string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Campaign(%s) returned %s (leadership %v, err %v); want still waiting", who, why, r.l != nil, r.err)
	default:
	}
}

func leaderOf(t testing.TB, c coordinator.Coordinator) coordinator.Leader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := c.Leader(ctx)
	if err != nil {
		t.Fatalf("Leader() seen by %s: %v", c.ID(), err)
	}
	return l
}

// TestCutLeaderReportsLossFirst cuts the leader off behind an open, silent
// connection: it must report the loss while etcd still holds its lease, so
// strictly before anybody else is elected; healed, it rejoins as a follower.
func TestCutLeaderReportsLossFirst(t *testing.T) {
	e := etcdtest.Start(t)
	direct := e.Client(t)
	cl := newCluster()
	pa := etcdtest.NewProxy(t, e.Endpoint(0))
	a := open(t, cl, "a", pa.Endpoint())
	b := open(t, cl, "b", e.Endpoint(0))
	la := lead(t, a)
	chB := campaign(t, context.Background(), b)
	stillWaiting(t, chB, "b", "while a leads")

	// At the moment a reports the loss, ask etcd whether a's lease lives.
	type loss struct {
		at       time.Time
		leaseTTL int64
		err      error
	}
	lost := make(chan loss, 1)
	go func() {
		<-la.Done()
		at := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := direct.TimeToLive(ctx, a.LeaseID())
		ttl := int64(0)
		if resp != nil {
			ttl = resp.TTL
		}
		lost <- loss{at, ttl, err}
	}()

	cut := time.Now()
	pa.Cut()
	var l loss
	select {
	case l = <-lost:
	case <-time.After(waitTimeout):
		t.Fatalf("a's leadership not ended within %v of the cut", waitTimeout)
	}
	if l.err != nil {
		t.Fatalf("TimeToLive of a's lease: %v", l.err)
	}
	// etcd reports the whole seconds left (0 for less than one), -1 once
	// expired.
	if l.leaseTTL < 0 {
		t.Fatalf("when a reported its loss, etcd's TTL of its lease was %d; want >= 0 (still alive)", l.leaseTTL)
	}
	if err := la.Err(); !errors.Is(err, coordinator.ErrLeaseDeadline) {
		t.Errorf("a's Leadership.Err() = %v; want ErrLeaseDeadline", err)
	}
	select {
	case <-a.Done():
	case <-time.After(time.Second):
		t.Fatal("a's session Done not closed after its leadership's")
	}
	expired := waitLeaseGone(t, direct, a.LeaseID(), testTTL+5*time.Second)
	rb := waitWon(t, chB, "b", waitTimeout)
	t.Logf("cut at 0; a reported loss at %v (etcd TTL then %ds); lease gone by %v; b elected at %v",
		l.at.Sub(cut), l.leaseTTL, expired.Sub(cut), rb.at.Sub(cut))
	if !l.at.Before(rb.at) {
		t.Fatalf("a reported its loss at %v, b was elected at %v; want the loss strictly first", l.at.Sub(cut), rb.at.Sub(cut))
	}
	if rb.l.Token() <= la.Token() {
		t.Errorf("b's token %d; want > a's %d", rb.l.Token(), la.Token())
	}

	// Healed: the old session stays ended, and a new one is a follower.
	pa.Heal()
	if _, err := a.Campaign(context.Background()); !errors.Is(err, coordinator.ErrSessionClosed) {
		t.Errorf("Campaign on a's lost session: got %v; want ErrSessionClosed", err)
	}
	a2 := open(t, cl, "a", pa.Endpoint())
	chA2 := campaign(t, context.Background(), a2)
	quiet := time.NewTimer(testTTL)
	defer quiet.Stop()
	select {
	case r := <-chA2:
		t.Fatalf("rejoined a won a campaign (err %v) while b leads", r.err)
	case <-rb.l.Done():
		t.Fatalf("b's term ended after a rejoined: %v", rb.l.Err())
	case <-quiet.C:
	}
	if got := leaderOf(t, a2); got.ID != "b" || got.Token != rb.l.Token() {
		t.Fatalf("leader after a rejoined = %+v; want b with token %d", got, rb.l.Token())
	}
	if err := rb.l.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitWon(t, chA2, "a", waitTimeout)
}

// TestSlowNetworkKeepsSession: acknowledgements that arrive late but within
// the lease keep the session; the deadline is computed from send times.
func TestSlowNetworkKeepsSession(t *testing.T) {
	e := etcdtest.Start(t)
	p := etcdtest.NewProxy(t, e.Endpoint(0))
	a := open(t, newCluster(), "a", p.Endpoint())
	la := lead(t, a)
	p.SetDelay(300 * time.Millisecond) // 600ms round trips, renewals every 500ms
	quiet := time.NewTimer(2 * testTTL)
	defer quiet.Stop()
	select {
	case <-la.Done():
		t.Fatalf("leadership ended on a slow but working network: %v", la.Err())
	case <-quiet.C:
	}
	if got := a.LeaseRemaining(); got <= 0 {
		t.Errorf("LeaseRemaining() = %v; want > 0", got)
	}
}

// TestOperatorDeletesLeaderKey: the leader key's deletion by someone else
// ends the term (ErrLeadershipLost) and watchers see no_leader.
func TestOperatorDeletesLeaderKey(t *testing.T) {
	e := etcdtest.Start(t)
	direct := e.Client(t)
	cl := newCluster()
	a := open(t, cl, "a", e.Endpoint(0))
	w := open(t, cl, "w", e.Endpoint(0))
	la := lead(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ch, err := w.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	untilEvent(t, ch, coordinator.EventLeaderChanged)
	if _, err := direct.Delete(ctx, "/ccctl/"+cl.Environment+"/"+cl.Service+"/election/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Done():
	case <-time.After(waitTimeout):
		t.Fatal("leadership not ended after its key was deleted")
	}
	if err := la.Err(); !errors.Is(err, coordinator.ErrLeadershipLost) {
		t.Errorf("Err() = %v; want ErrLeadershipLost", err)
	}
	untilEvent(t, ch, coordinator.EventNoLeader)
	// The session lives on and can lead again.
	la2 := lead(t, a)
	if la2.Token() <= la.Token() {
		t.Errorf("new token %d; want > %d", la2.Token(), la.Token())
	}
}

func untilEvent(t testing.TB, ch <-chan coordinator.Event, typ coordinator.EventType) coordinator.Event {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed; want %v", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v within %v", typ, waitTimeout)
		}
	}
}

// TestElectLeaderReadable: `etcdctl elect -l <prefix>/<env>/<service>/election`
// (concurrency.Election's Leader) reads the leader's id.
func TestElectLeaderReadable(t *testing.T) {
	e := etcdtest.Start(t)
	direct := e.Client(t)
	cl := newCluster()
	a := open(t, cl, "a", e.Endpoint(0))
	lead(t, a)
	s, err := concurrency.NewSession(direct, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := concurrency.NewElection(s, "/ccctl/"+cl.Environment+"/"+cl.Service+"/election").Leader(ctx)
	if err != nil {
		t.Fatalf("Election.Leader: %v", err)
	}
	if got := string(resp.Kvs[0].Value); got != "a" {
		t.Fatalf("Election.Leader value = %q; want %q", got, "a")
	}
}

// TestFailedResignReleasedLater: a Resign whose request fails still ends
// the term at once, and the key is released in the background while the
// session lives, so nobody waits for the TTL and the old term is never
// adopted again: the next term gets a new token.
func TestFailedResignReleasedLater(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	a := open(t, cl, "a", e.Endpoint(0))
	la := lead(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := la.Resign(ctx); err == nil {
		t.Fatal("Resign with a cancelled context: got nil error; want the request's error")
	}
	if err := la.Err(); !errors.Is(err, coordinator.ErrResigned) {
		t.Fatalf("Err() after a failed Resign = %v; want ErrResigned", err)
	}
	la2 := lead(t, a)
	if la2.Token() <= la.Token() {
		t.Fatalf("token of the next term = %d; want > %d (a new term)", la2.Token(), la.Token())
	}
	if err := a.Err(); err != nil {
		t.Fatalf("session: %v", err)
	}
}
