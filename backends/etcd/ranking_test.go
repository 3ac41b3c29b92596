package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// The tests of this file check the ranking (rank.go) on a real etcd: who
// takes over at a crash, whom a resigning leader hands over to, whom a
// switchover without a target names, and the levers of priority 0,
// maximum_lag and Failover.

func pos(n int64) *int64 { return &n }

// rankedCluster is one cluster of members that each reach etcd through a
// proxy of their own, so that a test can cut any of them off.
type rankedCluster struct {
	e      *etcdtest.Cluster
	cl     coordinator.Cluster
	reader *clientv3.Client
	px     map[string]*etcdtest.Proxy
}

func newRankedCluster(t *testing.T, e *etcdtest.Cluster, reader *clientv3.Client) *rankedCluster {
	return &rankedCluster{e: e, cl: newCluster(), reader: reader, px: map[string]*etcdtest.Proxy{}}
}

// open opens member id with ranking r and registers it with position p
// (nil: none).
func (rc *rankedCluster) open(t *testing.T, id string, r coordinator.Ranking, p *int64) *etcd.Coordinator {
	t.Helper()
	return rc.openTTL(t, id, r, p, testTTL)
}

// openTTL opens member id as open does, with a session TTL of ttl.
func (rc *rankedCluster) openTTL(t *testing.T, id string, r coordinator.Ranking, p *int64, ttl time.Duration) *etcd.Coordinator {
	t.Helper()
	px := etcdtest.NewProxy(t, rc.e.Endpoint(0))
	rc.px[id] = px
	c := openWith(t, etcd.Config{Endpoints: []string{px.Endpoint()}, Cluster: rc.cl, ID: id, TTL: ttl, Logger: quietLogger(), Ranking: r})
	register(t, c, p)
	return c
}

// register registers c again, running, with position p.
func register(t *testing.T, c *etcd.Coordinator, p *int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Register(ctx, coordinator.Member{State: coordinator.StateRunning, Position: p}); err != nil {
		t.Fatalf("Register(%s): %v", c.ID(), err)
	}
}

// expire cuts member c off and returns once etcd has expired its lease.
func (rc *rankedCluster) expire(t *testing.T, c *etcd.Coordinator) time.Time {
	t.Helper()
	rc.px[c.ID()].Cut()
	return waitLeaseGone(t, rc.reader, c.LeaseID(), testTTL+5*time.Second)
}

// waitCandidate waits until member id campaigns (its candidate key is in
// place).
func (rc *rankedCluster) waitCandidate(t *testing.T, id string) {
	t.Helper()
	key := clusterKey(rc.cl, "candidates/"+id)
	testutil.Eventually(t, waitTimeout, id+" campaigning", func() bool {
		resp, err := rc.reader.Get(context.Background(), key)
		return err == nil && len(resp.Kvs) == 1
	})
}

// waitHeir waits until member id holds the heir's place.
func (rc *rankedCluster) waitHeir(t *testing.T, id string) {
	t.Helper()
	testutil.Eventually(t, waitTimeout, id+" in the heir's place", func() bool { return heirOf(t, rc.reader, rc.cl) == id })
}

// heirPuts follows the heir's place from now and returns a function that
// lists the puts seen so far.
func (rc *rankedCluster) heirPuts(t *testing.T) func() []*mvccpb.KeyValue {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := rc.reader.Get(ctx, heirKey(rc.cl))
	if err != nil {
		t.Fatal(err)
	}
	ch := rc.reader.Watch(ctx, heirKey(rc.cl), clientv3.WithRev(resp.Header.Revision+1))
	return func() []*mvccpb.KeyValue {
		var puts []*mvccpb.KeyValue
		for {
			select {
			case wr := <-ch:
				for _, ev := range wr.Events {
					if ev.Type == mvccpb.PUT {
						puts = append(puts, ev.Kv)
					}
				}
			case <-time.After(100 * time.Millisecond): // the watch has delivered what etcd sent by then
				return puts
			}
		}
	}
}

// The crash of the master: three members at positions 1000 (the master),
// 900 and 500, the 500 one in the heir's place. The master's session
// expires without a resignation; the 900 one must lead, handed the place
// by the 500 one (a pass: a put over its claim), which goes on waiting.
// The ids, and the order in which the members open, are shuffled.
func TestRankedCrash(t *testing.T) {
	e := etcdtest.Start(t)
	reader := e.Client(t)
	rounds := 3
	if !testing.Short() {
		rounds = 20
	}
	for i := range rounds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { rankedCrash(t, e, reader) })
	}
}

func rankedCrash(t *testing.T, e *etcdtest.Cluster, reader *clientv3.Client) {
	rc := newRankedCluster(t, e, reader)
	ids := []string{"a", "b", "c"}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	master, at900, at500 := ids[0], ids[1], ids[2]
	positions := map[string]int64{master: 1000, at900: 900, at500: 500}
	order := append([]string(nil), ids...)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	cs := map[string]*etcd.Coordinator{}
	for _, id := range order {
		cs[id] = rc.open(t, id, coordinator.Ranking{}, pos(positions[id]))
	}
	lm := lead(t, cs[master])
	register(t, cs[master], pos(1000)) // as the master: its position outlives it
	if last, err := cs[at500].LastPosition(context.Background()); err != nil || last == nil || *last != 1000 {
		t.Fatalf("LastPosition() = %v, %v; want 1000", last, err)
	}
	ch500 := campaign(t, context.Background(), cs[at500])
	rc.waitHeir(t, at500)
	ch900 := campaign(t, context.Background(), cs[at900])
	rc.waitCandidate(t, at900)
	puts := rc.heirPuts(t)

	gone := rc.expire(t, cs[master])
	r := waitWon(t, ch900, at900, waitTimeout)
	t.Logf("order %v: the 900 one (%s) leads %v after the master's lease expired", order, at900, r.at.Sub(gone).Round(time.Millisecond))
	if r.l.Token() <= lm.Token() {
		t.Errorf("token %d; want > the master's %d", r.l.Token(), lm.Token())
	}
	stillWaiting(t, ch500, at500, "after the crash")
	var passed bool
	for _, kv := range puts() {
		passed = passed || (string(kv.Value) == at900 && kv.Version > 1)
	}
	if !passed {
		t.Errorf("no pass of the heir's place to %s seen", at900)
	}
	// The history keeps how the candidates stood as the term began.
	testutil.Eventually(t, waitTimeout, "the term's record with the candidates' positions", func() bool {
		ts, err := cs[at500].History(context.Background(), 1)
		if err != nil || len(ts) != 1 || ts[0].Token != r.l.Token() {
			return false
		}
		p := ts[0].Positions
		return p[at900] == 900 && p[at500] == 500
	})
}

// The best candidate cannot take over: its campaign does not run (it
// ranks as stopped, and the next one leads at once), or it is cut off
// while its lease lives (the holder of the place passes it the place,
// then tries itself after the failover wait). Either way another eligible
// member leads within failover_wait + TTL of the vacancy.
func TestRankedBestStopped(t *testing.T) {
	e := etcdtest.Start(t)
	reader := e.Client(t)
	wait := coordinator.Ranking{}.Wait(testTTL)
	t.Run("not campaigning", func(t *testing.T) {
		rc := newRankedCluster(t, e, reader)
		m := rc.open(t, "m", coordinator.Ranking{}, pos(1000))
		rc.open(t, "best", coordinator.Ranking{}, pos(990)) // registered, not campaigning
		c := rc.open(t, "c", coordinator.Ranking{}, pos(900))
		lead(t, m)
		chC := campaign(t, context.Background(), c)
		rc.waitHeir(t, "c")
		gone := rc.expire(t, m)
		r := waitWon(t, chC, "c", waitTimeout)
		took := r.at.Sub(gone)
		t.Logf("c leads %v after the vacancy", took.Round(time.Millisecond))
		if took > wait+testTTL {
			t.Errorf("c led %v after the vacancy; want within failover_wait + TTL = %v", took, wait+testTTL)
		}
	})
	t.Run("cut off", func(t *testing.T) {
		rc := newRankedCluster(t, e, reader)
		m := rc.open(t, "m", coordinator.Ranking{}, pos(1000))
		// The best's lease outlives the master's by far: it is cut off
		// with it, but still a candidate at the vacancy.
		best := rc.openTTL(t, "best", coordinator.Ranking{}, pos(990), 5*testTTL)
		c := rc.open(t, "c", coordinator.Ranking{}, pos(900))
		lead(t, m)
		chC := campaign(t, context.Background(), c)
		rc.waitHeir(t, "c")
		chBest := campaign(t, context.Background(), best)
		rc.waitCandidate(t, "best")
		puts := rc.heirPuts(t)
		rc.px["best"].Cut()
		gone := rc.expire(t, m)
		r := waitWon(t, chC, "c", waitTimeout)
		took := r.at.Sub(gone)
		t.Logf("c leads %v after the vacancy", took.Round(time.Millisecond))
		if took > wait+testTTL {
			t.Errorf("c led %v after the vacancy; want within failover_wait + TTL = %v", took, wait+testTTL)
		}
		if took < wait {
			t.Errorf("c led %v after the vacancy; want after the failover wait %v (best was passed the place)", took, wait)
		}
		var passed bool
		for _, kv := range puts() {
			passed = passed || (string(kv.Value) == "best" && kv.Version > 1)
		}
		if !passed {
			t.Errorf("no pass of the heir's place to best seen")
		}
		stillWaiting(t, chBest, "best", "cut off")
		rc.px["best"].Heal() // so that its cleanup need not wait for etcd
	})
}

// A member of priority 0 never leads, however far ahead: not at a crash,
// not handed over to by a resigning leader, not chosen by a switchover
// without a target, refused as a switchover's target, and it never holds
// the heir's place.
func TestRankedPriorityZero(t *testing.T) {
	e := etcdtest.Start(t)
	rc := newRankedCluster(t, e, e.Client(t))
	m := rc.open(t, "m", coordinator.Ranking{}, pos(1000))
	z := rc.open(t, "z", coordinator.Ranking{Priority: coordinator.NeverLead}, pos(5000))
	b := rc.open(t, "b", coordinator.Ranking{}, pos(900))
	c := rc.open(t, "c", coordinator.Ranking{}, pos(800))
	ms, err := z.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, mm := range ms {
		want := coordinator.DefaultPriority
		if mm.ID == "z" {
			want = 0
		}
		if mm.Priority != want {
			t.Errorf("record of %s: priority %d; want %d (the configured one, whatever Register is given)", mm.ID, mm.Priority, want)
		}
	}
	lead(t, m)
	chZ := campaign(t, context.Background(), z)
	chB := campaign(t, context.Background(), b)
	rc.waitHeir(t, "b")
	chC := campaign(t, context.Background(), c)
	rc.waitCandidate(t, "c")

	// A crash: b (900) leads, not z (5000).
	rc.expire(t, m)
	rb := waitWon(t, chB, "b", waitTimeout)
	rc.waitHeir(t, "c")

	// Switchover without a target: c, not z.
	if to, err := b.Switchover(context.Background(), ""); err != nil || to != "c" {
		t.Errorf("Switchover(\"\") = %q, %v; want c", to, err)
	}
	// Switchover to z: refused, naming the way to force it.
	_, err = b.Switchover(context.Background(), "z")
	if !errors.Is(err, coordinator.ErrIneligible) || !strings.Contains(err.Error(), "ccctl failover --to z --force") {
		t.Errorf("Switchover(z) = %v; want ErrIneligible, naming ccctl failover --to z --force", err)
	}
	// The resignation: handed over to c, not z.
	if err := rb.l.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	rcC := waitWon(t, chC, "c", waitTimeout)
	wantLeader(t, z, "c", rcC.l.Token())
	stillWaiting(t, chZ, "z", "after the crash, the switchover and the resignation")
	if h := heirOf(t, rc.reader, rc.cl); h == "z" {
		t.Errorf("z holds the heir's place")
	}
}

// Every candidate is too far behind the last master's position: nobody
// takes over; Failover then leads the member it names, and Watch reports
// the request as forced.
func TestRankedMaximumLag(t *testing.T) {
	e := etcdtest.Start(t)
	rc := newRankedCluster(t, e, e.Client(t))
	r := coordinator.Ranking{MaxLag: 100}
	m := rc.open(t, "m", r, pos(900))
	b := rc.open(t, "b", r, pos(800))
	c := rc.open(t, "c", r, pos(700))
	lead(t, m)
	register(t, m, pos(1000)) // the master moves on
	chB := campaign(t, context.Background(), b)
	rc.waitHeir(t, "b")
	chC := campaign(t, context.Background(), c)
	rc.waitCandidate(t, "c")
	events, err := c.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rc.expire(t, m)
	// Nobody leads for three failover waits (each ranks again after
	// one).
	quiet := time.NewTimer(3 * r.Wait(testTTL))
	defer quiet.Stop()
quietly:
	for {
		select {
		case ev := <-events:
			if ev.Type == coordinator.EventLeaderChanged && ev.Leader.ID != "m" {
				t.Fatalf("%s leads, 200 or more behind the last master's 1000 with maximum_lag 100", ev.Leader.ID)
			}
		case <-quiet.C:
			break quietly
		}
	}
	if err := b.Failover(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	ev := untilEvent(t, events, coordinator.EventSwitchover)
	if ev.SwitchoverTo != "c" || !ev.Forced {
		t.Errorf("switchover event %+v; want to c, forced", ev)
	}
	lc := waitWon(t, chC, "c", waitTimeout)
	wantLeader(t, b, "c", lc.l.Token())
	stillWaiting(t, chB, "b", "after the forced failover to c")
	if err := b.Failover(context.Background(), "nobody"); !errors.Is(err, coordinator.ErrUnknownMember) {
		t.Errorf("Failover(nobody) = %v; want ErrUnknownMember", err)
	}
}

// A resigning leader hands over to the best candidate, not to the member
// in the heir's place: the best takes up the term from its watch, with
// no transaction to lead.
func TestRankedResignToTheBest(t *testing.T) {
	e := etcdtest.Start(t)
	rc := newRankedCluster(t, e, e.Client(t))
	m := rc.open(t, "m", coordinator.Ranking{}, pos(1000))
	b := rc.open(t, "b", coordinator.Ranking{}, pos(990))
	c := rc.open(t, "c", coordinator.Ranking{}, pos(500))
	lm := lead(t, m)
	chC := campaign(t, context.Background(), c)
	rc.waitHeir(t, "c")
	chB := campaign(t, context.Background(), b)
	rc.waitCandidate(t, "b")
	if err := lm.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	wantLeader(t, c, "b", lb.l.Token())
	stillWaiting(t, chC, "c", "after the handover to b")
	if lb.l.Token() <= lm.Token() {
		t.Errorf("token %d; want > %d", lb.l.Token(), lm.Token())
	}
	// b leaves the place the handover put it in; c takes it again.
	rc.waitHeir(t, "c")
	// The term was handed over: b's history says so.
	waitHistory(t, b, "m resigned, b handed over", func(h []coordinator.Term) bool {
		return len(h) == 2 && h[1].Member == "b" && h[1].Reason == coordinator.BeganHandover
	})
}

// The last master's position: put by the master's Register only, ignored
// when it is not a non-negative integer.
func TestLastPosition(t *testing.T) {
	e := etcdtest.Start(t)
	reader := e.Client(t)
	rc := newRankedCluster(t, e, reader)
	m := rc.open(t, "m", coordinator.Ranking{}, pos(7))
	f := rc.open(t, "f", coordinator.Ranking{}, pos(8))
	last := func() *int64 {
		t.Helper()
		p, err := f.LastPosition(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := last(); p != nil {
		t.Fatalf("LastPosition() = %d before any master; want nil", *p)
	}
	lead(t, m)
	register(t, m, pos(42))
	register(t, f, pos(99)) // not the master: not the last master's
	register(t, m, nil)     // no position: the last one stays
	if p := last(); p == nil || *p != 42 {
		t.Fatalf("LastPosition() = %v; want 42", p)
	}
	layout, err := etcd.NewLayout("", rc.cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"-1", "x", "1e3", " 5", "007", ""} {
		put(t, reader, layout.LastPosition(), v)
		if p := last(); p != nil {
			t.Errorf("LastPosition() with %q = %d; want nil (unknown)", v, *p)
		}
	}
}
