//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
)

// Sizes of the in-process members' plumbing.
const (
	scaleClients = 8
	scaleWorkers = 64
)

// inproc is one in-process member.
type inproc struct {
	c *etcd.Coordinator
}

// wonAt is a leadership won and when (CLOCK_MONOTONIC).
type wonAt struct {
	l  coordinator.Leadership
	at int64
}

// cluster of in-process members, all campaigning.
type scaleCluster struct {
	members []*inproc
	won     chan wonAt // every win in the cluster
}

// openScale opens clusters x perCluster members sharing scaleClients
// clients; every member registers and campaigns until ctx is done. It
// returns the clusters (a member that failed to open is nil), how many
// failed, and how long opening took.
func (r *report) openScale(t *testing.T, ctx context.Context, clis []*clientv3.Client, what string, ttl time.Duration, clusters, perCluster int, wg *sync.WaitGroup) ([]*scaleCluster, int, time.Duration) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cls := make([]*scaleCluster, clusters)
	svc := make([]string, clusters)
	for i := range cls {
		cls[i] = &scaleCluster{members: make([]*inproc, perCluster), won: make(chan wonAt, perCluster)}
		svc[i] = r.service(what)
	}
	begin := time.Now()
	idx := make(chan int)
	var (
		ow       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		firstErr error
	)
	for range scaleWorkers {
		ow.Add(1)
		go func() {
			defer ow.Done()
			for i := range idx {
				ci, mi := i/perCluster, i%perCluster
				id := fmt.Sprintf("m%05d", mi)
				cfg := etcd.Config{Cluster: coordinator.Cluster{Environment: "bench", Service: svc[ci]}, ID: id, TTL: ttl, DialTimeout: 30 * time.Second, Logger: quiet}
				c, err := etcd.NewWithClient(ctx, clis[i%len(clis)], cfg)
				if err == nil {
					if err = c.Register(ctx, coordinator.Member{ID: id, State: coordinator.StateRunning}); err != nil {
						c.Close()
					}
				}
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = fmt.Errorf("open %s/%s: %w", svc[ci], id, err)
					}
					mu.Unlock()
					continue
				}
				cls[ci].members[mi] = &inproc{c: c}
				if *scaleWatch {
					// The member watch a ccctl process keeps for its hooks.
					events, err := c.Watch(ctx)
					if err == nil {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for range events {
							}
						}()
					}
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						l, err := c.Campaign(ctx)
						if err != nil {
							return
						}
						cls[ci].won <- wonAt{l, mono()}
						select {
						case <-l.Done():
						case <-ctx.Done():
							return
						}
					}
				}()
			}
		}()
	}
	for i := range clusters * perCluster {
		idx <- i
		if (i+1)%5000 == 0 {
			t.Logf("%s: %d members handed to the openers after %v", what, i+1, time.Since(begin).Round(time.Second))
		}
	}
	close(idx)
	ow.Wait()
	if failed > 0 {
		t.Logf("%s: %d members failed to open; first: %v", what, failed, firstErr)
	}
	return cls, failed, time.Since(begin)
}

// current returns the cluster's current leadership: the latest win, waiting
// up to 10 s for one when the latest has ended (a session lost under load).
// It reports false when there is none.
func current(cl *scaleCluster, cur wonAt) (wonAt, bool) {
	for {
		select {
		case w := <-cl.won:
			cur = w
			continue
		default:
		}
		select {
		case <-cur.l.Done():
		default:
			return cur, true
		}
		select {
		case cur = <-cl.won:
		case <-time.After(10 * time.Second):
			return cur, false
		}
	}
}

// alive reports whether a member of the cluster still has its session.
func (cl *scaleCluster) alive() bool {
	for _, m := range cl.members {
		if m != nil && m.c.Err() == nil {
			return true
		}
	}
	return false
}

// closeScale closes every member.
func closeScale(cls []*scaleCluster) time.Duration {
	begin := time.Now()
	sem := make(chan struct{}, scaleWorkers)
	var wg sync.WaitGroup
	for _, cl := range cls {
		for _, m := range cl.members {
			if m == nil {
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				m.c.Close()
			}()
		}
	}
	wg.Wait()
	return time.Since(begin)
}

// scaleRun opens the members, lets them settle, measures etcd over the
// window, then hands over in the first clusters (round robin) and closes
// everything.
func (r *report) scaleRun(t *testing.T, what string, ttl time.Duration, clusters, perCluster int) scaleFigures {
	// Count the campaign transactions (those that put a key on success).
	// firstTry and firstWin are when the first campaign transaction after a
	// handover's start was sent and when the first that succeeded answered
	// (CLOCK_MONOTONIC; 0: not yet).
	var attempts, firstTry, firstWin atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		r, ok := req.(*pb.TxnRequest)
		if !ok || len(r.Success) == 0 || r.Success[0].GetRequestPut() == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		attempts.Add(1)
		firstTry.CompareAndSwap(0, mono())
		err := invoker(ctx, method, req, reply, cc, opts...)
		if resp, ok := reply.(*pb.TxnResponse); ok && err == nil && resp.Succeeded {
			firstWin.CompareAndSwap(0, mono())
		}
		return err
	}
	clis := make([]*clientv3.Client, scaleClients)
	for i := range clis {
		clis[i] = r.e.client(t, grpc.WithChainUnaryInterceptor(count))
	}
	var cls []*scaleCluster
	lostNow := func() int {
		n := 0
		for _, cl := range cls {
			for _, m := range cl.members {
				if m != nil && m.c.Err() != nil {
					n++
				}
			}
		}
		return n
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	before := r.e.usage(t)
	cls, failed, opened := r.openScale(t, ctx, clis, what, ttl, clusters, perCluster, &wg)
	// Every cluster with a live member has a first leader, within a bound
	// for all together.
	cur := make([]wonAt, clusters)
	leaderless := 0
	firstBy := time.Now().Add(2 * time.Minute)
	for i, cl := range cls {
		if !cl.alive() {
			leaderless++
			continue
		}
		select {
		case cur[i] = <-cl.won:
			continue
		default:
		}
		select {
		case cur[i] = <-cl.won:
		case <-time.After(max(time.Until(firstBy), 0)):
			leaderless++
		}
	}
	sleep(min(r.p.scaleWindow/3, 5*time.Second))
	u0 := r.e.usage(t)
	if *profDir != "" {
		f, err := os.Create(filepath.Join(*profDir, "driver-"+what+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		r.e.profile(t, *profDir, what, r.p.scaleWindow)
		pprof.StopCPUProfile()
		f.Close()
	} else {
		sleep(r.p.scaleWindow)
	}
	u1 := r.e.usage(t)
	idleCores := cores(u0, u1)

	var ds []time.Duration
	lostBefore := 0 // before the first handover
	for _, cl := range cls {
		for _, m := range cl.members {
			if m != nil && m.c.Err() != nil {
				lostBefore++
			}
		}
	}
	ci, resignErrs, stuck := -1, 0, 0
	for range r.p.scaleHandovers {
		// The next cluster that has a leader (with one cluster, always the
		// same).
		found := false
		for range clusters {
			ci = (ci + 1) % clusters
			if cur[ci].l == nil {
				continue
			}
			if !cls[ci].alive() {
				cur[ci].l = nil
				continue
			}
			var ok bool
			if cur[ci], ok = current(cls[ci], cur[ci]); ok {
				found = true
				break
			}
		}
		if !found {
			break
		}
		sleep(time.Second) // the previous herd settles
		if c, ok := current(cls[ci], cur[ci]); ok {
			cur[ci] = c
		} else {
			continue
		}
		// etcd may refuse the resign while it applies a backlog ("too many
		// requests"): count it and try again.
		attempts0 := attempts.Load()
		d0 := r.e.disk(t)
		firstTry.Store(0)
		firstWin.Store(0)
		t0 := mono()
		for {
			err := cur[ci].l.Resign(context.Background())
			if err == nil {
				break
			}
			resignErrs++
			if resignErrs == 1 {
				t.Logf("%s: resign: %v (retrying)", what, err)
			}
			if resignErrs > 50 {
				t.Logf("%s: resign failed 50 times: %v", what, err)
				break
			}
			sleep(time.Second)
			t0 = mono()
		}
		for {
			var w wonAt
			select {
			case w = <-cls[ci].won:
			case <-time.After(time.Minute):
				t.Logf("%s: no handover within a minute", what)
				stuck++
				cur[ci].l = nil
			}
			if cur[ci].l == nil {
				break
			}
			cur[ci] = w
			if w.at >= t0 {
				ds = append(ds, time.Duration(w.at-t0))
				break
			}
		}
		if clusters == 1 && len(ds) > 0 {
			sleep(time.Second) // late attempts land
			since := func(at int64) string {
				if at == 0 {
					return "-"
				}
				return time.Duration(at - t0).Round(time.Microsecond).String()
			}
			t.Logf("%s: handover %d: %v (first transaction sent after %s, first success answered after %s), %d campaign transactions, %d sessions lost so far; %s",
				what, len(ds), ds[len(ds)-1].Round(time.Microsecond), since(firstTry.Load()), since(firstWin.Load()), attempts.Load()-attempts0, lostNow(), slow(d0, r.e.disk(t)))
		}
	}
	u2 := r.e.usage(t)
	lost := 0
	for _, cl := range cls {
		for _, m := range cl.members {
			if m != nil && m.c.Err() != nil {
				lost++
			}
		}
	}
	cancel()
	closed := closeScale(cls)
	wg.Wait()

	return scaleFigures{
		n: clusters * perCluster, clusters: clusters, ttl: ttl,
		opened: opened, closed: closed,
		window: u1.at.Sub(u0.at), cores: idleCores,
		rssBefore: before.maxRSS(), rss: max(u1.maxRSS(), u2.maxRSS()),
		handover: Summarize(ds), resignErrs: resignErrs, stuck: stuck, lost: lost, lostBefore: lostBefore, failed: failed, leaderless: leaderless,
	}
}

// scaleFigures are the results of one scale run.
type scaleFigures struct {
	n, clusters    int
	ttl            time.Duration
	opened, closed time.Duration
	window         time.Duration
	cores          float64
	rssBefore, rss int64
	handover       Summary
	resignErrs     int // resigns refused by etcd
	stuck          int // handovers that did not happen within a minute
	lost           int // sessions lost before the close
	lostBefore     int // of which before the first handover
	failed         int // members that could not open
	leaderless     int // clusters without a first leader
}

// rows formats the figures; the targets are set by the caller.
func (f scaleFigures) rows() []Row {
	label := fmt.Sprintf("%d members in one cluster", f.n)
	if f.clusters > 1 {
		label = fmt.Sprintf("%d members in %d clusters", f.n, f.clusters)
	}
	label += fmt.Sprintf(", TTL %v", f.ttl)
	sys := "ccctl (in-process members)"
	return []Row{
		{What: label + ": open all (register, campaign) / close all", System: sys, N: strconv.Itoa(f.n),
			Measured: fmt.Sprintf("%.1f s / %.1f s; %d failed to open, %d sessions lost (%d before the handovers), %d clusters leaderless", f.opened.Seconds(), f.closed.Seconds(), f.failed, f.lost, f.lostBefore, f.leaderless)},
		{What: label + ": etcd CPU while idle (3 members together)", System: sys, N: fmt.Sprintf("%.0f s", f.window.Seconds()),
			Measured: fmt.Sprintf("%.2f cores", f.cores)},
		{What: label + ": etcd RSS, largest member", System: sys, N: "3",
			Measured: fmt.Sprintf("%.0f MB (%.0f MB before)", mb(f.rss), mb(f.rssBefore))},
		{What: label + ": handover Resign -> next Campaign returns", System: sys, N: strconv.Itoa(f.handover.N),
			Measured: fmt.Sprintf("median %s, p99 %s; %d resigns refused by etcd, %d without a new leader within 1 min", Ms(f.handover.Median), Ms(f.handover.P99), f.resignErrs, f.stuck)},
	}
}

// scale: one big cluster, then many small ones, on the same etcd, for each
// TTL of -scale-ttl.
func (r *report) scale(t *testing.T) []Row {
	var rows []Row
	for _, v := range strings.Split(*scaleTTL, ",") {
		ttl, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			t.Fatalf("-scale-ttl %q: %v", v, err)
		}
		rows = append(rows, r.scaleTTL(t, ttl)...)
	}
	return rows
}

// scaleWatch gives the scale members the member watch a ccctl process
// keeps.
var scaleWatch = flag.Bool("scale-watch", false, "scale members also keep the member watch a ccctl process keeps (Watch), as in production")

// scaleParts chooses the scale rows to run.
var scaleParts = flag.String("scale-parts", "one,many", "scale rows to run, comma-separated: one (one big cluster), many (many small ones)")

func (r *report) scaleTTL(t *testing.T, ttl time.Duration) []Row {
	var rows []Row
	for _, part := range strings.Split(*scaleParts, ",") {
		switch strings.TrimSpace(part) {
		case "one":
			rows = append(rows, r.scaleOne(t, ttl)...)
		case "many":
			rows = append(rows, r.scaleMany(t, ttl)...)
		default:
			t.Fatalf("-scale-parts: unknown part %q; want one or many", part)
		}
	}
	return rows
}

// scaleOne runs the members of one big cluster.
func (r *report) scaleOne(t *testing.T, ttl time.Duration) []Row {
	one := r.scaleRun(t, "one", ttl, 1, r.p.oneCluster)
	rows := one.rows()
	// A target is met only if the members held their sessions meanwhile.
	held := one.lost == 0 && one.failed == 0
	rows[0].Target, rows[0].Met = "every session held", Verdict(held)
	rows[2].Target, rows[2].Met = "<= 500 MB", Verdict(mb(one.rss) <= 500)
	rows[3].Target, rows[3].Met = "p99 <= 200 ms", Verdict(held && one.stuck == 0 && one.handover.N > 0 && one.handover.P99 <= 200*time.Millisecond)
	for _, row := range rows {
		t.Logf("%s: %s", row.What, row.Measured)
	}
	return rows
}

// scaleMany runs the members of many small clusters.
func (r *report) scaleMany(t *testing.T, ttl time.Duration) []Row {
	many := r.scaleRun(t, "many", ttl, r.p.clusters, r.p.manyMembers/r.p.clusters)
	mrows := many.rows()
	mrows[0].Target, mrows[0].Met = "every session held", Verdict(many.lost == 0 && many.failed == 0)
	// The CPU target counts only while every session is held: lost
	// sessions cost nothing.
	mrows[1].Target, mrows[1].Met = "<= 1 core", Verdict(many.lostBefore == 0 && many.failed == 0 && many.cores <= 1)
	for _, row := range mrows {
		t.Logf("%s: %s", row.What, row.Measured)
	}
	return mrows
}
