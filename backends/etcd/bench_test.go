package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// The benchmarks measure latencies that a loop of b.N cannot average
// meaningfully (seconds-long failovers, a ten-thousand-member setup), so
// each runs a fixed number of rounds per b.N and reports medians as custom
// metrics. Run them with -benchtime=1x:
//
//	go test -run '^$' -bench . -benchtime=1x ./backends/etcd/

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// afterFraction returns the fraction of ds that are positive: loss
// reports after the lease could have expired.
func afterFraction(ds []time.Duration) float64 {
	n := 0
	for _, d := range ds {
		if d > 0 {
			n++
		}
	}
	return float64(n) / float64(max(len(ds), 1))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// settle gives a campaign that was just started time to reach its wait, so
// that a round measures a handover to a waiting member. It is longer than
// etcd's watch sync period (100 ms): etcd serves a watch that starts at a
// past revision, as concurrency.Election's does, from a loop of that period
// until the watch catches up, so a shorter settle would measure that loop
// rather than a handover to a member that has been waiting.
func settle() {
	t := time.NewTimer(300 * time.Millisecond)
	<-t.C
}

// handoverWin is a campaign of member i that won at a time.
type handoverWin struct {
	i  int
	at time.Time
}

// handoverRounds measures rounds handovers among n members of which member
// 0 leads and the others wait (wait(i) starts member i's campaign, which
// sends to won when it wins): each round resigns the leader (resign(i)),
// takes the first win, and starts the resigned member's campaign again.
func handoverRounds(b *testing.B, n, rounds int, resign func(i int) error, wait func(i int), won <-chan handoverWin) []time.Duration {
	b.Helper()
	for i := 1; i < n; i++ {
		wait(i)
	}
	var lat []time.Duration
	at := 0
	b.ResetTimer()
	for range rounds {
		settle()
		t0 := time.Now()
		if err := resign(at); err != nil {
			b.Fatal(err)
		}
		select {
		case w := <-won:
			lat = append(lat, w.at.Sub(t0))
			wait(at)
			at = w.i
		case <-time.After(waitTimeout):
			b.Fatal("no handover")
		}
	}
	return lat
}

// BenchmarkHandover: a leader resigns, and the campaign of one of the
// others waiting returns; with 2 members and with 16 (above the size from
// which ccctl's waiters spread their attempts). ccctl and plain
// concurrency.Election on the same etcd, each member with a client of its
// own (clients=own: one process per member, as both run in production)
// and all members on one client (clients=shared).
func BenchmarkHandover(b *testing.B) {
	e := etcdtest.Start(b)
	const rounds = 20
	for _, n := range []int{2, 16} {
		for _, shared := range []bool{false, true} {
			mode := "own"
			if shared {
				mode = "shared"
			}
			// client returns the client of member i.
			client := func(b *testing.B) func(i int) *clientv3.Client {
				one := etcdtest.NewClient(b, e.Endpoint(0))
				return func(int) *clientv3.Client {
					if shared {
						return one
					}
					return etcdtest.NewClient(b, e.Endpoint(0))
				}
			}
			b.Run(fmt.Sprintf("N=%d/clients=%s/ccctl", n, mode), func(b *testing.B) {
				handoverCcctl(b, n, rounds*b.N, client(b))
			})
			b.Run(fmt.Sprintf("N=%d/clients=%s/concurrency.Election", n, mode), func(b *testing.B) {
				handoverElection(b, n, rounds*b.N, client(b))
			})
		}
	}
}

// handoverCcctl measures handovers among n ccctl members, member i on
// client(i).
func handoverCcctl(b *testing.B, n, rounds int, client func(i int) *clientv3.Client) {
	cl := newCluster()
	cs := make([]*etcd.Coordinator, n)
	for i := range cs {
		cs[i] = openOn(b, client(i), etcd.Config{Cluster: cl, ID: fmt.Sprintf("m%02d", i), TTL: testTTL, Logger: quietLogger()})
	}
	ls := make([]coordinator.Leadership, n) // written before the win is sent
	ls[0] = lead(b, cs[0])
	won := make(chan handoverWin, n)
	wait := func(i int) {
		ch := campaign(b, context.Background(), cs[i])
		go func() {
			r := <-ch
			if r.err != nil {
				if !errors.Is(r.err, context.Canceled) { // not the benchmark's end
					b.Errorf("Campaign(%s): %v", cs[i].ID(), r.err)
				}
				return
			}
			ls[i] = r.l
			won <- handoverWin{i, r.at}
		}()
	}
	resign := func(i int) error { return ls[i].Resign(context.Background()) }
	lat := handoverRounds(b, n, rounds, resign, wait, won)
	b.ReportMetric(ms(median(lat)), "ms-median/handover")
}

// handoverElection measures handovers among n members of a plain
// concurrency.Election, member i's session on client(i).
func handoverElection(b *testing.B, n, rounds int, client func(i int) *clientv3.Client) {
	pfx := "/bench/" + newCluster().Service + "/election"
	els := make([]*concurrency.Election, n)
	for i := range els {
		s, err := concurrency.NewSession(client(i), concurrency.WithTTL(int(testTTL/time.Second)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		els[i] = concurrency.NewElection(s, pfx)
	}
	// The campaigns still waiting at the end are cancelled before the
	// sessions close (cleanups run last first).
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	won := make(chan handoverWin, n)
	wait := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := els[i].Campaign(ctx, "x"); err != nil {
				if ctx.Err() == nil {
					b.Error(err)
				}
				return
			}
			won <- handoverWin{i, time.Now()}
		}()
	}
	if err := els[0].Campaign(ctx, "a"); err != nil {
		b.Fatal(err)
	}
	resign := func(i int) error { return els[i].Resign(ctx) }
	lat := handoverRounds(b, n, rounds, resign, wait, won)
	b.ReportMetric(ms(median(lat)), "ms-median/handover")
}

// BenchmarkFailover: the leader is cut off behind a silent, open
// connection (a crash as the network sees it); the waiting member takes
// over when etcd expires the lease. Reported: the median failover time
// (cut to the next campaign's return); when the cut-off leader reported
// its loss relative to the takeover (loss-lead: positive means before),
// with the fraction of rounds where it did so before; and relative to the
// latest time etcd may expire the lease (loss-vs-expiry: the last byte
// through the leader's proxy + TTL; negative means before). etcd revokes
// expired leases lazily (every 500 ms), so reporting before the takeover
// does not prove reporting before the expiry; a positive loss-vs-expiry
// proves a report after the lease could have expired.
func BenchmarkFailover(b *testing.B) {
	e := etcdtest.Start(b)
	for _, ttl := range []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second} {
		rounds := 3
		if ttl == 2*time.Second {
			rounds = 9
		}
		b.Run(fmt.Sprintf("TTL=%v/ccctl", ttl), func(b *testing.B) {
			if testing.Short() && ttl > 2*time.Second {
				b.Skip("long TTL in -short")
			}
			var fo, lead, vsExpiry []time.Duration
			before := 0
			for i := 0; i < rounds*b.N; i++ {
				cl := newCluster()
				p := etcdtest.NewProxy(b, e.Endpoint(0))
				cfg := func(id, ep string) etcd.Config {
					return etcd.Config{Endpoints: []string{ep}, Cluster: cl, ID: id, TTL: ttl, Logger: quietLogger()}
				}
				a := openWith(b, cfg("a", p.Endpoint()))
				f := openWith(b, cfg("b", e.Endpoint(0)))
				la := leadOne(b, a)
				ch := campaign(b, context.Background(), f)
				settle()
				t0 := time.Now()
				p.Cut()
				var lost time.Time
				select {
				case <-la.Done():
					lost = time.Now()
				case <-time.After(ttl + waitTimeout):
					b.Fatal("cut-off leader never reported its loss")
				}
				vsExpiry = append(vsExpiry, lost.Sub(p.LastActivity().Add(ttl)))
				r := waitWon(b, ch, "b", ttl+waitTimeout)
				fo = append(fo, r.at.Sub(t0))
				lead = append(lead, r.at.Sub(lost))
				if lost.Before(r.at) {
					before++
				}
				p.Close()
				a.Close()
				f.Close()
			}
			b.ReportMetric(ms(median(fo)), "ms-median/failover")
			b.ReportMetric(ms(median(lead)), "ms-median-loss-lead")
			b.ReportMetric(float64(before)/float64(len(fo)), "loss-first-fraction")
			b.ReportMetric(ms(median(vsExpiry)), "ms-median-loss-vs-expiry")
			b.ReportMetric(afterFraction(vsExpiry), "loss-after-expiry-fraction")
		})
		b.Run(fmt.Sprintf("TTL=%v/concurrency.Election", ttl), func(b *testing.B) {
			if testing.Short() && ttl > 2*time.Second {
				b.Skip("long TTL in -short")
			}
			var fo, lead, vsExpiry []time.Duration
			before, never := 0, 0
			for i := 0; i < rounds*b.N; i++ {
				pfx := "/bench/" + newCluster().Service + "/election"
				p := etcdtest.NewProxy(b, e.Endpoint(0))
				cliA := etcdtest.NewClient(b, p.Endpoint())
				cliB := etcdtest.NewClient(b, e.Endpoint(0))
				sa, err := concurrency.NewSession(cliA, concurrency.WithTTL(int(ttl/time.Second)))
				if err != nil {
					b.Fatal(err)
				}
				sb, err := concurrency.NewSession(cliB, concurrency.WithTTL(int(ttl/time.Second)))
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if err := concurrency.NewElection(sa, pfx).Campaign(ctx, "a"); err != nil {
					b.Fatal(err)
				}
				won := make(chan time.Time, 1)
				go func() {
					if err := concurrency.NewElection(sb, pfx).Campaign(ctx, "b"); err != nil {
						b.Error(err)
					}
					won <- time.Now()
				}()
				settle()
				t0 := time.Now()
				p.Cut()
				// Record when (if ever) the cut-off leader's session notices.
				lostc := make(chan time.Time, 1)
				stop := make(chan struct{})
				go func() {
					select {
					case <-sa.Done():
						lostc <- time.Now()
					case <-stop:
					}
				}()
				var at time.Time
				select {
				case at = <-won:
				case <-time.After(ttl + waitTimeout):
					b.Fatal("no failover")
				}
				fo = append(fo, at.Sub(t0))
				// Give it as long again as the failover took.
				select {
				case lost := <-lostc:
					lead = append(lead, at.Sub(lost))
					vsExpiry = append(vsExpiry, lost.Sub(p.LastActivity().Add(ttl)))
					if lost.Before(at) {
						before++
					}
				case <-time.After(at.Sub(t0)):
					never++
					lead = append(lead, -at.Sub(t0))
					vsExpiry = append(vsExpiry, at.Sub(t0)) // at least: positive
				}
				close(stop)
				sb.Close()
				p.Close()
				cliA.Close()
			}
			b.ReportMetric(ms(median(fo)), "ms-median/failover")
			b.ReportMetric(ms(median(lead)), "ms-median-loss-lead")
			b.ReportMetric(float64(before)/float64(len(fo)), "loss-first-fraction")
			b.ReportMetric(float64(never)/float64(len(fo)), "loss-unnoticed-fraction")
			b.ReportMetric(ms(median(vsExpiry)), "ms-median-loss-vs-expiry")
			b.ReportMetric(afterFraction(vsExpiry), "loss-after-expiry-fraction")
		})
	}
}

// leadOne campaigns and fails the benchmark unless c wins.
func leadOne(b *testing.B, c coordinator.Coordinator) coordinator.Leadership {
	b.Helper()
	return lead(b, c)
}

// BenchmarkKeepAliveTraffic: bytes per second through a proxy between one
// idle member and etcd, both directions, over one TTL.
func BenchmarkKeepAliveTraffic(b *testing.B) {
	e := etcdtest.Start(b)
	for _, ttl := range []time.Duration{2 * time.Second, 10 * time.Second} {
		b.Run(fmt.Sprintf("TTL=%v/ccctl", ttl), func(b *testing.B) {
			if testing.Short() && ttl > 2*time.Second {
				b.Skip("long TTL in -short")
			}
			p := etcdtest.NewProxy(b, e.Endpoint(0))
			openWith(b, etcd.Config{Endpoints: []string{p.Endpoint()}, Cluster: newCluster(), ID: "a", TTL: ttl, Logger: quietLogger()})
			b.ReportMetric(traffic(b, p, ttl), "B/s")
		})
		b.Run(fmt.Sprintf("TTL=%v/concurrency.Session", ttl), func(b *testing.B) {
			if testing.Short() && ttl > 2*time.Second {
				b.Skip("long TTL in -short")
			}
			p := etcdtest.NewProxy(b, e.Endpoint(0))
			s, err := concurrency.NewSession(etcdtest.NewClient(b, p.Endpoint()), concurrency.WithTTL(int(ttl/time.Second)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			b.ReportMetric(traffic(b, p, ttl), "B/s")
		})
	}
}

// traffic measures the bytes per second through p over b.N windows of d.
func traffic(b *testing.B, p *etcdtest.Proxy, d time.Duration) float64 {
	b.ResetTimer()
	start, t0 := p.Bytes(), time.Now()
	for range b.N {
		t := time.NewTimer(d)
		<-t.C
	}
	return float64(p.Bytes()-start) / time.Since(t0).Seconds()
}

// BenchmarkManyMembers: N members of ONE cluster, sharing a few clients,
// all campaigning; then handovers (resign to the next campaign's return).
// Reported: setup time (open, register, all campaigning) and the median
// handover latency.
func BenchmarkManyMembers(b *testing.B) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	b.Run(fmt.Sprintf("N=%d/ccctl", n), func(b *testing.B) { manyMembers(b, n) })
	// Plain concurrency.Election at a fifth of the size: each Campaign
	// reads the candidates' prefix, so the setup grows quadratically (and
	// etcd's memory with it); ten thousand is out of its reach here.
	b.Run(fmt.Sprintf("N=%d/concurrency.Election", n/5), func(b *testing.B) { manyElection(b, n/5) })
}

func manyElection(b *testing.B, n int) {
	const (
		clients = 4
		workers = 64
		rounds  = 5
		ttl     = 60
	)
	e := etcdtest.Start(b)
	var clis []*clientv3.Client
	for range clients {
		clis = append(clis, etcdtest.NewClient(b, e.Endpoint(0)))
	}
	pfx := "/bench/" + newCluster().Service + "/election"
	begin := time.Now()
	els := make([]*concurrency.Election, n)
	var wg sync.WaitGroup
	idx := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				s, err := concurrency.NewSession(clis[i%clients], concurrency.WithTTL(ttl))
				if err != nil {
					errs <- err
					return
				}
				b.Cleanup(func() { s.Close() })
				els[i] = concurrency.NewElection(s, pfx)
			}
		}()
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	type won struct {
		i  int
		at time.Time
	}
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan won, n)
	var cwg sync.WaitGroup
	for i, el := range els {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := el.Campaign(ctx, fmt.Sprintf("m%05d", i)); err == nil {
				results <- won{i, time.Now()}
			}
		}()
	}
	defer func() {
		cancel()
		cwg.Wait()
	}()
	var cur won
	select {
	case cur = <-results:
	case <-time.After(5 * time.Minute):
		b.Fatal("nobody won")
	}
	// Wait until every candidate has its key.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := clis[0].Get(context.Background(), pfx+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not every candidate campaigning within 5 minutes (%v, %v)", resp, err)
		}
		pt := time.NewTimer(50 * time.Millisecond)
		<-pt.C
	}
	campaigning := time.Since(begin)
	var lat []time.Duration
	b.ResetTimer()
	for range rounds * b.N {
		ct := time.NewTimer(time.Second)
		<-ct.C
		t0 := time.Now()
		if err := els[cur.i].Resign(context.Background()); err != nil {
			b.Fatal(err)
		}
		select {
		case cur = <-results:
		case <-time.After(time.Minute):
			b.Fatal("no handover within a minute")
		}
		lat = append(lat, cur.at.Sub(t0))
	}
	b.StopTimer()
	b.ReportMetric(campaigning.Seconds(), "s-until-all-campaigning")
	b.ReportMetric(ms(median(lat)), "ms-median/handover")
}

func manyMembers(b *testing.B, n int) {
	const (
		clients  = 4
		workers  = 64
		rounds   = 5
		ttl      = 60 * time.Second
		openTime = 5 * time.Minute
	)
	e := etcdtest.Start(b)
	var clis []*clientv3.Client
	for range clients {
		clis = append(clis, etcdtest.NewClient(b, e.Endpoint(0)))
	}
	cl := newCluster()
	ms2 := make([]*etcd.Coordinator, n)
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), openTime)
	defer cancel()
	var wg sync.WaitGroup
	idx := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				id := fmt.Sprintf("m%05d", i)
				c, err := etcd.NewWithClient(ctx, clis[i%clients], etcd.Config{Cluster: cl, ID: id, TTL: ttl, Logger: quietLogger()})
				if err == nil {
					err = c.Register(ctx, coordinator.Member{ID: id, State: coordinator.StateRunning})
				}
				if err != nil {
					errs <- fmt.Errorf("open %s: %w", id, err)
					return
				}
				ms2[i] = c
			}
		}()
	}
	go func() {
		defer close(idx)
		for i := range n {
			select {
			case idx <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.Cleanup(func() {
		var cw sync.WaitGroup
		sem := make(chan struct{}, workers)
		for _, c := range ms2 {
			sem <- struct{}{}
			cw.Add(1)
			go func() {
				defer cw.Done()
				defer func() { <-sem }()
				c.Close()
			}()
		}
		cw.Wait()
	})
	opened := time.Since(begin)

	type won struct {
		c  *etcd.Coordinator
		l  coordinator.Leadership
		at time.Time
	}
	cctx, ccancel := context.WithCancel(context.Background())
	results := make(chan won, n)
	var cwg sync.WaitGroup
	for _, c := range ms2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for cctx.Err() == nil {
				l, err := c.Campaign(cctx)
				if err != nil {
					return
				}
				results <- won{c, l, time.Now()}
				select {
				case <-l.Done():
				case <-cctx.Done():
					return
				}
			}
		}()
	}
	defer func() {
		ccancel()
		cwg.Wait()
	}()
	var cur won
	select {
	case cur = <-results:
	case <-time.After(time.Minute):
		b.Fatal("nobody won")
	}
	campaigning := time.Since(begin)
	var lat []time.Duration
	b.ResetTimer()
	for range rounds * b.N {
		// Let the herd of the previous handover settle.
		ct := time.NewTimer(time.Second)
		<-ct.C
		t0 := time.Now()
		if err := cur.l.Resign(context.Background()); err != nil {
			b.Fatal(err)
		}
		select {
		case cur = <-results:
		case <-time.After(time.Minute):
			b.Fatal("no handover within a minute")
		}
		lat = append(lat, cur.at.Sub(t0))
	}
	b.StopTimer()
	b.ReportMetric(opened.Seconds(), "s-open-all")
	b.ReportMetric(campaigning.Seconds(), "s-until-first-leader")
	b.ReportMetric(ms(median(lat)), "ms-median/handover")
}

// BenchmarkSurvivableOutage: the longest outage of etcd (every connection
// broken, nothing answering: a proxy's Reset and Cut) that a session
// survives, at TTL 3, 5 and 10 s with the default renew interval and
// margin. "best" cuts just after a renewal was acknowledged, "worst" just
// before the next one is due. From the deadline left at the cut, outages
// 100 ms shorter each time are tried until one is survived; reported:
// that outage, and the time from the end of the outage to the renewal.
func BenchmarkSurvivableOutage(b *testing.B) {
	e := etcdtest.Start(b)
	for _, ttl := range []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second} {
		for _, phase := range []string{"best", "worst"} {
			b.Run(fmt.Sprintf("TTL=%v/%s", ttl, phase), func(b *testing.B) {
				interval := ttl / 5
				for range b.N {
					var survived, renewal time.Duration
					for try := 0; try < 8 && survived == 0; try++ {
						p := etcdtest.NewProxy(b, e.Endpoint(0))
						c := openWith(b, etcd.Config{Endpoints: []string{p.Endpoint()}, Cluster: newCluster(), ID: "a", TTL: ttl, Logger: quietLogger()})
						waitRenewal(b, c, 2*interval)
						if phase == "worst" {
							time.Sleep(interval - 50*time.Millisecond) // the next renewal is due in 50 ms
						}
						left := c.LeaseRemaining()
						outage := left - time.Duration(try+1)*100*time.Millisecond
						p.Cut()
						p.Reset()
						time.Sleep(outage)
						p.Heal()
						healed := time.Now()
						for c.Err() == nil && c.LeaseRemaining() < left {
							time.Sleep(2 * time.Millisecond) // polling interval of a bounded poll: the session ends at its deadline
						}
						if c.Err() == nil {
							survived, renewal = outage, time.Since(healed)
						}
						c.Close()
						p.Close()
					}
					if survived == 0 {
						b.Fatalf("no outage survived")
					}
					b.ReportMetric(survived.Seconds(), "outage-s")
					b.ReportMetric(float64(renewal.Milliseconds()), "renewal-ms")
				}
			})
		}
	}
}

// percentile returns the p-th percentile (0 < p <= 1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// BenchmarkRankedFailover: the master (position 1000) is cut off behind a
// silent connection; of the two members waiting, the one at 500 holds the
// heir's place. Reported: the time from the deletion of the master's key
// (etcd expiring its lease) to the creation of the next leader's key, as
// one watcher sees both. plain: no ranking, the heir (500) leads at once;
// ranked: the heir ranks, passes the place to the 900 one, which leads.
func BenchmarkRankedFailover(b *testing.B) {
	e := etcdtest.Start(b)
	watcher := etcdtest.NewClient(b, e.Endpoint(0))
	for _, ttl := range []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second} {
		rounds := 3
		if ttl == 2*time.Second {
			rounds = 9
		}
		for _, mode := range []string{"plain", "ranked"} {
			b.Run(fmt.Sprintf("TTL=%v/%s", ttl, mode), func(b *testing.B) {
				if testing.Short() && ttl > 2*time.Second {
					b.Skip("long TTL in -short")
				}
				var fo []time.Duration
				wantWinner := "p900"
				if mode == "plain" {
					wantWinner = "p500"
				}
				for range rounds * b.N {
					cl := newCluster()
					p := etcdtest.NewProxy(b, e.Endpoint(0))
					cfg := func(id, ep string) etcd.Config {
						return etcd.Config{Endpoints: []string{ep}, Cluster: cl, ID: id, TTL: ttl, Logger: quietLogger()}
					}
					m := openWith(b, cfg("m", p.Endpoint()))
					c500 := openWith(b, cfg("p500", e.Endpoint(0)))
					c900 := openWith(b, cfg("p900", e.Endpoint(0)))
					if mode == "plain" {
						for _, c := range []*etcd.Coordinator{m, c500, c900} {
							etcd.SetPlainRule(c)
						}
					}
					ctx := context.Background()
					for c, n := range map[*etcd.Coordinator]int64{m: 1000, c500: 500, c900: 900} {
						if err := c.Register(ctx, coordinator.Member{State: coordinator.StateRunning, Position: &n}); err != nil {
							b.Fatal(err)
						}
					}
					leadOne(b, m)
					ch500 := campaign(b, ctx, c500)
					for heirOf(b, watcher, cl) != "p500" {
						settle()
					}
					ch900 := campaign(b, ctx, c900)
					settle()
					wctx, cancel := context.WithCancel(ctx)
					wch := watcher.Watch(wctx, clusterKey(cl, "election/"), clientv3.WithPrefix())
					settle()
					p.Cut()
					var deleted, created time.Time
					for created.IsZero() {
						select {
						case wr := <-wch:
							for _, ev := range wr.Events {
								switch {
								case ev.Type == clientv3.EventTypeDelete && string(ev.Kv.Key) == clusterKey(cl, "election/m"):
									deleted = time.Now()
								case ev.Type == clientv3.EventTypePut && !deleted.IsZero():
									if got := string(ev.Kv.Value); got != wantWinner {
										b.Fatalf("%s leads; want %s", got, wantWinner)
									}
									created = time.Now()
								}
							}
						case <-time.After(ttl + waitTimeout):
							b.Fatal("no failover")
						}
					}
					cancel()
					fo = append(fo, created.Sub(deleted))
					winner := ch900
					if mode == "plain" {
						winner = ch500
					}
					waitWon(b, winner, wantWinner, waitTimeout)
					p.Close()
					for _, c := range []*etcd.Coordinator{m, c500, c900} {
						c.Close()
					}
				}
				b.ReportMetric(ms(median(fo)), "ms-median/expiry-to-term")
				b.ReportMetric(ms(slices.Max(fo)), "ms-max/expiry-to-term")
			})
		}
	}
}

// BenchmarkRankedHandover: of three members, the leader resigns and hands
// over to the best of the other two by position (the one not in the
// heir's place, after the first round or two), ranked; or to the heir,
// plain (no ranking: no read of the records before the handover).
// Reported: the median and p99 from the call to Resign to the new
// leader's Campaign returning.
func BenchmarkRankedHandover(b *testing.B) {
	e := etcdtest.Start(b)
	const rounds = 100
	for _, mode := range []string{"plain", "ranked"} {
		b.Run("N=3/"+mode, func(b *testing.B) {
			cl := newCluster()
			n := 3
			cs := make([]*etcd.Coordinator, n)
			for i := range cs {
				cs[i] = openOn(b, etcdtest.NewClient(b, e.Endpoint(0)), etcd.Config{Cluster: cl, ID: fmt.Sprintf("m%d", i), TTL: testTTL, Logger: quietLogger()})
				if mode == "plain" {
					etcd.SetPlainRule(cs[i])
				}
				p := int64(1000 - 100*i)
				if err := cs[i].Register(context.Background(), coordinator.Member{State: coordinator.StateRunning, Position: &p}); err != nil {
					b.Fatal(err)
				}
			}
			ls := make([]coordinator.Leadership, n)
			ls[0] = lead(b, cs[0])
			won := make(chan handoverWin, n)
			wait := func(i int) {
				ch := campaign(b, context.Background(), cs[i])
				go func() {
					r := <-ch
					if r.err != nil {
						if !errors.Is(r.err, context.Canceled) {
							b.Errorf("Campaign(%s): %v", cs[i].ID(), r.err)
						}
						return
					}
					ls[i] = r.l
					won <- handoverWin{i, r.at}
				}()
			}
			resign := func(i int) error { return ls[i].Resign(context.Background()) }
			lat := handoverRounds(b, n, rounds*b.N, resign, wait, won)
			b.ReportMetric(ms(median(lat)), "ms-median/handover")
			b.ReportMetric(ms(percentile(lat, 0.99)), "ms-p99/handover")
		})
	}
}
