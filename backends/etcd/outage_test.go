package etcd_test

import (
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// waitRenewal returns when c's deadline next moves forward, that is just
// after a renewal was acknowledged.
func waitRenewal(t testing.TB, c *etcd.Coordinator, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	last := c.LeaseRemaining()
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling interval of a bounded poll
		left := c.LeaseRemaining()
		if left > last+50*time.Millisecond {
			return time.Now()
		}
		last = left
	}
	t.Fatalf("no renewal of %s acknowledged within %v", c.ID(), d)
	return time.Time{}
}

// TestSessionSurvivesOutage cuts a member off from etcd just after a
// renewal was acknowledged, breaking its connections (a proxy's Reset and
// Cut: etcd gone), and reconnects it after the last renewal tick before the
// session's deadline: only a renewal sent as soon as a keep-alive stream is
// open again keeps the session (at TTL 10 s: an outage of about 8.3 s,
// against a deadline 9 s after the acknowledged renewal).
func TestSessionSurvivesOutage(t *testing.T) {
	const ttl = 10 * time.Second
	e := etcdtest.Start(t)
	p := etcdtest.NewProxy(t, e.Endpoint(0))
	c := openWith(t, etcd.Config{Endpoints: []string{p.Endpoint()}, Cluster: newCluster(), ID: "m1", TTL: ttl, Logger: quietLogger()})
	interval, margin := ttl/5, ttl/10                // the defaults
	lastTick := (ttl - margin) / interval * interval // the last renewal due before the deadline
	acked := waitRenewal(t, c, 3*interval)
	p.Cut()
	p.Reset()
	down := time.Now()
	time.Sleep(time.Until(acked.Add(lastTick + 300*time.Millisecond))) // the outage itself
	p.Heal()
	back := time.Now()
	t.Logf("cut off %v, back %v after the acknowledged renewal; the session's deadline was %v after it",
		back.Sub(down).Round(time.Millisecond), back.Sub(acked).Round(time.Millisecond), ttl-margin)
	deadline := time.Now().Add(ttl)
	for {
		if err := c.Err(); err != nil {
			t.Fatalf("session of %s: got %v after the outage; want it renewed", c.ID(), err)
		}
		if left := c.LeaseRemaining(); left > ttl-margin-interval/2 {
			t.Logf("renewed %v after the outage", time.Since(back).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session of %s not renewed within %v of the outage's end (lease left %v)", c.ID(), ttl, c.LeaseRemaining())
		}
		time.Sleep(5 * time.Millisecond) // polling interval of a bounded poll
	}
}
