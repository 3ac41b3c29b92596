//go:build bench

package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

var (
	quick    = flag.Bool("quick", false, "fewer rounds, smaller scale, shorter windows: the whole report in about a minute")
	out      = flag.String("out", "", "also write the table to this file")
	only     = flag.String("only", "", "run only these parts, comma-separated: idle, startup, handover, timed, scale, image")
	profDir  = flag.String("profile", "", "write CPU profiles of etcd during the scale windows, and of the driver, to this directory")
	etcdDir  = flag.String("etcd-dir", "", "put etcd's data directories under this directory (such as /dev/shm, to tell disk stalls from CPU) instead of the test's temporary directory")
	scaleTTL = flag.String("scale-ttl", "60s,10s", "session TTLs of the in-process members of the scale rows, comma-separated, in the order run (etcd is not compacted, so later rounds start with more memory)")
)

// plan holds the sizes of one run.
type plan struct {
	startups, handovers   int
	failoverTTLs          []time.Duration
	failoverRounds        int
	idle                  time.Duration
	oneCluster            int
	manyMembers, clusters int
	scaleWindow           time.Duration
	scaleHandovers        int
}

func fullPlan() plan {
	return plan{
		startups: 30, handovers: 60,
		failoverTTLs: []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second}, failoverRounds: 3,
		idle:       60 * time.Second,
		oneCluster: 10000, manyMembers: 20000, clusters: 2000,
		scaleWindow: 20 * time.Second, scaleHandovers: 20,
	}
}

func quickPlan() plan {
	return plan{
		startups: 5, handovers: 5,
		failoverTTLs: []time.Duration{2 * time.Second}, failoverRounds: 1,
		idle:       10 * time.Second,
		oneCluster: 500, manyMembers: 1000, clusters: 100,
		scaleWindow: 5 * time.Second, scaleHandovers: 3,
	}
}

// TestReport measures everything on one 3-member etcd and prints the table.
func TestReport(t *testing.T) {
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	begin := time.Now()
	load0 := loadAvg()
	e := startEtcdProcs(t, 3)
	b := buildBins(t)
	r := &report{e: e, b: b, p: p, cli: e.client(t)}

	run := func(part string) bool {
		return *only == "" || strings.Contains(","+*only+",", ","+part+",")
	}
	var rows []Row
	var sessionTraffic func() Row
	if run("idle") {
		rows = append(rows, r.idle(t)...)
		sessionTraffic = r.sessionTraffic(t)
	}
	if run("startup") {
		rows = append(rows, r.startup(t)...)
	}
	if run("handover") {
		rows = append(rows, r.handover(t)...)
		rows = append(rows, r.electionHandover(t)...)
	}
	if sessionTraffic != nil {
		rows = append(rows, sessionTraffic())
	}
	if run("timed") {
		rows = append(rows, r.timed(t)...)
	}
	if run("scale") {
		t.Logf("so far:\n%s", Table(rows))
		rows = append(rows, r.scale(t)...)
	}
	if run("image") {
		rows = append(rows, imageSize(t, b)...)
	}
	rows = append(rows, references()...)

	var hdr strings.Builder
	fmt.Fprintf(&hdr, "ccctl bench report (%s mode), %s, %d CPUs, %s\n", map[bool]string{true: "quick", false: "full"}[*quick],
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), etcdVersion())
	fmt.Fprintf(&hdr, "load average before: %s; after: %s; run took %v\n\n", load0, loadAvg(), time.Since(begin).Round(time.Second))
	table := hdr.String() + Table(rows)
	fmt.Println(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// report carries what every measurement shares.
type report struct {
	e   *etcdProcs
	b   bins
	p   plan
	cli *clientv3.Client
	n   int // services created so far
}

// service returns a fresh service name, so that each measurement has a
// cluster of its own.
func (r *report) service(what string) string {
	r.n++
	return fmt.Sprintf("%s-%d", what, r.n)
}

func (r *report) spec(id, service string, ttl time.Duration) memberSpec {
	return memberSpec{id: id, service: service, endpoints: r.e.endpoints, ttl: ttl, hooks: true, waiting: true}
}

// idle measures one master alone, connected through a byte-counting proxy,
// at TTL 10 s, over the idle window; nothing else talks to etcd meanwhile,
// so etcd's gRPC counters are its requests.
func (r *report) idle(t *testing.T) []Row {
	px := etcdtest.NewProxy(t, r.e.endpoints[0])
	s := r.spec("idle", r.service("idle"), 10*time.Second)
	s.endpoints = []string{px.Endpoint()}
	m := startMember(t, r.b, s)
	waitStamp(t, []*member{m}, "service", 0, 30*time.Second)
	sleep(5 * time.Second) // past start-up
	pid := m.cmd.Process.Pid
	cpu0, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	calls0, msgs0 := r.e.grpcCounts(t)
	bytes0, t0 := px.Bytes(), time.Now()
	sleep(r.p.idle)
	cpu1, _ := procCPU(pid)
	calls1, msgs1 := r.e.grpcCounts(t)
	bytes1, el := px.Bytes(), time.Since(t0)
	rss, _ := procRSS(pid)
	hwm, _ := procStatus(pid, "VmHWM:")
	m.stop(t)

	cpuPct := 100 * (cpu1 - cpu0).Seconds() / el.Seconds()
	bps := float64(bytes1-bytes0) / el.Seconds()
	win := fmt.Sprintf("%.0f s", el.Seconds())
	return []Row{
		{What: "idle master, TTL 10 s: RSS (peak)", System: "ccctl", N: win, Measured: fmt.Sprintf("%.1f MB (%.1f MB)", mb(rss), mb(hwm)), Target: "<= 20 MB", Met: Verdict(mb(rss) <= 20)},
		{What: "idle master, TTL 10 s: CPU", System: "ccctl", N: win, Measured: fmt.Sprintf("%.3f %% (%v in %s)", cpuPct, cpu1-cpu0, win), Target: "<= 0.1 %", Met: Verdict(cpuPct <= 0.1)},
		{What: "idle master, TTL 10 s: traffic to etcd", System: "ccctl", N: win, Measured: fmt.Sprintf("%.1f B/s", bps), Target: "<= 60 B/s", Met: Verdict(bps <= 60)},
		{What: "idle master, TTL 10 s: etcd gRPC calls / messages", System: "ccctl", N: win, Measured: fmt.Sprintf("%.2f calls/s, %.2f msgs/s", (calls1-calls0)/el.Seconds(), (msgs1-msgs0)/el.Seconds())},
	}
}

// sessionTraffic opens a plain concurrency.Session of TTL 10 s through a
// proxy and returns a function that reports its traffic since then (waiting
// until the idle window has passed). Only its own bytes go through its
// proxy, so it can run while other measurements do.
func (r *report) sessionTraffic(t *testing.T) func() Row {
	px := etcdtest.NewProxy(t, r.e.endpoints[0])
	s, err := concurrency.NewSession(etcdtest.NewClient(t, px.Endpoint()), concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sleep(2 * time.Second) // past the first exchange
	bytes0, t0 := px.Bytes(), time.Now()
	return func() Row {
		if left := r.p.idle - time.Since(t0); left > 0 {
			sleep(left)
		}
		el := time.Since(t0)
		bps := float64(px.Bytes()-bytes0) / el.Seconds()
		return Row{What: "idle session, TTL 10 s: traffic to etcd", System: "concurrency.Session", N: fmt.Sprintf("%.0f s", el.Seconds()), Measured: fmt.Sprintf("%.1f B/s", bps)}
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// startup: ccctl started -> the service's first instruction, etcd
// reachable, no hooks, a fresh cluster each time (the member becomes
// master).
func (r *report) startup(t *testing.T) []Row {
	var ds []time.Duration
	for i := range r.p.startups {
		s := r.spec(fmt.Sprintf("s%d", i), r.service("startup"), 10*time.Second)
		s.hooks, s.waiting = false, false
		t0 := mono()
		m := startMember(t, r.b, s)
		_, ns := waitStamp(t, []*member{m}, "service", t0, 30*time.Second)
		ds = append(ds, time.Duration(ns-t0))
		m.wait(t, 30*time.Second)
	}
	// The part of it that is the binary's exec and initialisation alone.
	var vs []time.Duration
	for range r.p.startups {
		t0 := mono()
		if err := exec.Command(r.b.ccctl, "version").Run(); err != nil {
			t.Fatalf("ccctl version: %v", err)
		}
		vs = append(vs, time.Duration(mono()-t0))
	}
	sm, vm := Summarize(ds), Summarize(vs)
	return []Row{
		{What: "start-up: ccctl started -> service exec", System: "ccctl", N: strconv.Itoa(sm.N),
			Measured: fmt.Sprintf("median %s, p99 %s", Ms(sm.Median), Ms(sm.P99)), Target: "median <= 50 ms", Met: Verdict(sm.Median <= 50*time.Millisecond)},
		{What: "start-up share: `ccctl version` started -> exited", System: "ccctl", N: strconv.Itoa(vm.N),
			Measured: fmt.Sprintf("median %s, p99 %s", Ms(vm.Median), Ms(vm.P99))},
	}
}

// handover: three members; SIGTERM to the master -> the next master's
// transition_slave_to_master starts; the stopped member is replaced by a
// new one each round.
func (r *report) handover(t *testing.T) []Row {
	svc := r.service("handover")
	n := 0
	next := func() *member {
		n++
		return startMember(t, r.b, r.spec(fmt.Sprintf("h%d", n), svc, 10*time.Second))
	}
	master := next()
	waitStamp(t, []*member{master}, "started_as_master", 0, 30*time.Second)
	slaves := []*member{next(), next()}
	for _, s := range slaves {
		waitStamp(t, []*member{s}, "service", 0, 30*time.Second)
	}
	// The steps of a handover, on the same clock: the old service gets
	// SIGTERM, the leader key is deleted (resign) and created again
	// (election), both as seen by a watch of the driver.
	key := "/ccctl/bench/" + svc + "/election/"
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type keyEvent struct {
		put bool
		at  int64
	}
	keyEvents := make(chan keyEvent, 16)
	wch := r.cli.Watch(wctx, key, clientv3.WithPrefix())
	go func() {
		for resp := range wch {
			now := mono()
			for _, ev := range resp.Events {
				keyEvents <- keyEvent{ev.Type == clientv3.EventTypePut, now}
			}
		}
	}()
	var ds, exits, serviceTerm, deleted, created []time.Duration
	for range r.p.handovers {
		sleep(100 * time.Millisecond) // the slaves are back to waiting
		for len(keyEvents) > 0 {
			<-keyEvents
		}
		t0 := master.signal(t, syscall.SIGTERM)
		won, ns := waitStamp(t, slaves, "transition_slave_to_master", t0, 30*time.Second)
		ds = append(ds, time.Duration(ns-t0))
		master.wait(t, 30*time.Second)
		exits = append(exits, time.Duration(mono()-t0))
		if st, ok := master.stamp("service-signalled", t0); ok {
			serviceTerm = append(serviceTerm, time.Duration(st-t0))
		}
		for got := 0; got < 2; {
			select {
			case ev := <-keyEvents:
				if ev.put {
					created = append(created, time.Duration(ev.at-t0))
				} else {
					deleted = append(deleted, time.Duration(ev.at-t0))
				}
				got++
			case <-time.After(10 * time.Second):
				t.Fatal("handover: the watch did not see the leader key deleted and created")
			}
		}
		var rest []*member
		for _, s := range slaves {
			if s != won {
				rest = append(rest, s)
			}
		}
		nm := next()
		waitStamp(t, []*member{nm}, "service", 0, 30*time.Second)
		master, slaves = won, append(rest, nm)
	}
	for _, m := range append(slaves, master) {
		m.stop(t)
	}
	sm := Summarize(ds)
	steps := func(ds []time.Duration) string {
		s := Summarize(ds)
		return fmt.Sprintf("%s / %s", Ms(s.Median), Ms(s.P99))
	}
	return []Row{
		{What: "graceful handover: SIGTERM -> next transition_slave_to_master", System: "ccctl (processes)", N: strconv.Itoa(sm.N),
			Measured: fmt.Sprintf("median %s, p99 %s", Ms(sm.Median), Ms(sm.P99)),
			Target:   "p99 <= 100 ms", Met: Verdict(sm.P99 <= 100*time.Millisecond)},
		{What: "handover steps from SIGTERM, median / p99: old service signalled; key deleted; key created; old ccctl exited", System: "ccctl (processes)", N: strconv.Itoa(sm.N),
			Measured: strings.Join([]string{steps(serviceTerm), steps(deleted), steps(created), steps(exits)}, "; ")},
	}
}

// electionHandover: plain concurrency.Election, in-process: Resign -> the
// waiting Campaign returns.
func (r *report) electionHandover(t *testing.T) []Row {
	ctx := context.Background()
	pfx := "/bench/" + r.service("election") + "/election"
	var els []*concurrency.Election
	for range 2 {
		s, err := concurrency.NewSession(r.e.client(t), concurrency.WithTTL(10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		els = append(els, concurrency.NewElection(s, pfx))
	}
	if err := els[0].Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	var ds []time.Duration
	for i := range r.p.handovers {
		cur, next := els[i%2], els[(i+1)%2]
		won := make(chan int64, 1)
		go func() {
			err := next.Campaign(ctx, "x")
			if err != nil {
				t.Error(err)
			}
			won <- mono()
		}()
		sleep(100 * time.Millisecond)
		t0 := mono()
		if err := cur.Resign(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case ns := <-won:
			ds = append(ds, time.Duration(ns-t0))
		case <-time.After(30 * time.Second):
			t.Fatal("concurrency.Election: no handover within 30s")
		}
	}
	sm := Summarize(ds)
	return []Row{{What: "graceful handover: Resign -> next Campaign returns", System: "concurrency.Election (in-process)", N: strconv.Itoa(sm.N),
		Measured: fmt.Sprintf("median %s, p99 %s", Ms(sm.Median), Ms(sm.P99))}}
}

// timed runs the measurements bounded by a TTL (crash failover of ccctl and
// of concurrency.Election, the partition margin) as parallel subtests: they
// wait most of the time.
func (r *report) timed(t *testing.T) []Row {
	var (
		mu  sync.Mutex
		got = map[int][]Row{}
	)
	kinds := []string{"crash", "election", "partition"}
	t.Run("timed", func(t *testing.T) {
		for i, ttl := range r.p.failoverTTLs {
			for j, what := range kinds {
				svc := r.service(what)
				order := j*len(r.p.failoverTTLs) + i
				t.Run(fmt.Sprintf("%s-%v", what, ttl), func(t *testing.T) {
					t.Parallel()
					var rows []Row
					switch what {
					case "crash":
						rows = r.crash(t, ttl, svc)
					case "election":
						rows = r.electionCrash(t, ttl, svc)
					case "partition":
						rows = r.partition(t, ttl, svc)
					}
					mu.Lock()
					got[order] = rows
					mu.Unlock()
				})
			}
		}
	})
	var rows []Row
	for o := range len(kinds) * len(r.p.failoverTTLs) {
		if rs, ok := got[o]; ok {
			rows = append(rows, rs...)
		} else {
			rows = append(rows, Row{What: fmt.Sprintf("%s, TTL %v", kinds[o/len(r.p.failoverTTLs)], r.p.failoverTTLs[o%len(r.p.failoverTTLs)]), Measured: "FAILED (see the log above)"})
		}
	}
	return rows
}

// crash: two members; SIGKILL to the master -> the slave's
// transition_slave_to_master starts.
func (r *report) crash(t *testing.T, ttl time.Duration, svc string) []Row {
	var ds []time.Duration
	for i := range r.p.failoverRounds {
		a := startMember(t, r.b, r.spec(fmt.Sprintf("a%d", i), svc, ttl))
		waitStamp(t, []*member{a}, "started_as_master", 0, 30*time.Second)
		b := startMember(t, r.b, r.spec(fmt.Sprintf("b%d", i), svc, ttl))
		waitStamp(t, []*member{b}, "service", 0, 30*time.Second)
		// A kill at a different point of the renewal cycle each round.
		sleep(time.Second + time.Duration(i)*ttl/4/time.Duration(r.p.failoverRounds))
		t0 := a.signal(t, syscall.SIGKILL)
		_, ns := waitStamp(t, []*member{b}, "transition_slave_to_master", t0, ttl+30*time.Second)
		ds = append(ds, time.Duration(ns-t0))
		a.wait(t, 10*time.Second)
		b.stop(t)
	}
	sm := Summarize(ds)
	target := ttl + 500*time.Millisecond
	return []Row{{What: fmt.Sprintf("crash failover, TTL %v: SIGKILL -> next transition_slave_to_master", ttl), System: "ccctl (processes)", N: strconv.Itoa(sm.N),
		Measured: fmt.Sprintf("median %s, max %s", Ms(sm.Median), Ms(sm.Max)), Target: "<= " + Ms(target), Met: Verdict(sm.Max <= target)}}
}

// electionCrash: plain concurrency.Election, in-process; the leader's
// client is closed without revoking its lease (as a crash leaves it) ->
// the waiting Campaign returns.
func (r *report) electionCrash(t *testing.T, ttl time.Duration, svc string) []Row {
	ctx := context.Background()
	var ds []time.Duration
	for i := range r.p.failoverRounds {
		pfx := "/bench/" + svc + "/election"
		cliA := r.e.client(t)
		sa, err := concurrency.NewSession(cliA, concurrency.WithTTL(int(ttl/time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		sb, err := concurrency.NewSession(r.e.client(t), concurrency.WithTTL(int(ttl/time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		if err := concurrency.NewElection(sa, pfx).Campaign(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		won := make(chan int64, 1)
		go func() {
			if err := concurrency.NewElection(sb, pfx).Campaign(ctx, "b"); err != nil {
				t.Error(err)
			}
			won <- mono()
		}()
		sleep(time.Second + time.Duration(i)*ttl/4/time.Duration(r.p.failoverRounds))
		t0 := mono()
		cliA.Close()
		select {
		case ns := <-won:
			ds = append(ds, time.Duration(ns-t0))
		case <-time.After(ttl + 30*time.Second):
			t.Fatal("concurrency.Election: no failover")
		}
		sb.Close()
	}
	sm := Summarize(ds)
	return []Row{{What: fmt.Sprintf("crash failover, TTL %v: client gone -> next Campaign returns", ttl), System: "concurrency.Election (in-process)", N: strconv.Itoa(sm.N),
		Measured: fmt.Sprintf("median %s, max %s", Ms(sm.Median), Ms(sm.Max))}}
}

// partition: the master reaches etcd through a proxy that is cut (both
// directions silent, connections open). Measured on one clock: the old
// master's demotion (the first of its transition_master_to_slave or
// stopping hook starting, or its service getting SIGTERM: a lease deadline
// ends the session, and ccctl then stops), the deletion of its
// leader key by etcd (lease expiry) and the creation of the next one
// (election), both as seen by a watch of the driver, and the new master's
// transition_slave_to_master start.
func (r *report) partition(t *testing.T, ttl time.Duration, svc string) []Row {
	var margins, expiries, failovers []time.Duration
	for i := range r.p.failoverRounds {
		px := etcdtest.NewProxy(t, r.e.endpoints[i%len(r.e.endpoints)])
		sa := r.spec(fmt.Sprintf("a%d", i), svc, ttl)
		sa.endpoints = []string{px.Endpoint()}
		sa.stopHook = true
		a := startMember(t, r.b, sa)
		waitStamp(t, []*member{a}, "started_as_master", 0, 30*time.Second)
		b := startMember(t, r.b, r.spec(fmt.Sprintf("b%d", i), svc, ttl))
		waitStamp(t, []*member{b}, "service", 0, 30*time.Second)

		key := "/ccctl/bench/" + svc + "/election/"
		wctx, cancel := context.WithCancel(context.Background())
		var deleted, created int64
		watched := make(chan struct{})
		wch := r.cli.Watch(wctx, key, clientv3.WithPrefix())
		go func() {
			defer close(watched)
			for resp := range wch {
				now := mono()
				for _, ev := range resp.Events {
					if ev.Type == clientv3.EventTypeDelete && deleted == 0 {
						deleted = now
					}
					if ev.Type == clientv3.EventTypePut && string(ev.Kv.Value) != sa.id && created == 0 {
						created = now
						return
					}
				}
			}
		}()
		sleep(time.Second + time.Duration(i)*ttl/4/time.Duration(r.p.failoverRounds))
		t0 := mono()
		px.Cut()
		demoted := waitDemoted(t, a, t0, ttl+30*time.Second)
		_, promoted := waitStamp(t, []*member{b}, "transition_slave_to_master", t0, ttl+30*time.Second)
		select {
		case <-watched:
		case <-time.After(10 * time.Second):
			t.Fatalf("partition TTL %v: the watch did not see the new leader key", ttl)
		}
		cancel()
		if deleted == 0 {
			deleted = created
		}
		margins = append(margins, time.Duration(created-demoted))
		expiries = append(expiries, time.Duration(deleted-demoted))
		failovers = append(failovers, time.Duration(promoted-t0))
		px.Heal()
		_ = a.cmd.Process.Kill() // it may have stopped on its own
		a.wait(t, 10*time.Second)
		b.stop(t)
		px.Close()
	}
	ms, ex, fo := Summarize(margins), Summarize(expiries), Summarize(failovers)
	return []Row{{What: fmt.Sprintf("partition, TTL %v: old master demoted -> new master elected", ttl), System: "ccctl (processes)", N: strconv.Itoa(ms.N),
		Measured: fmt.Sprintf("min %s, median %s (-> lease expired: min %s; cut -> new master's hook: median %s)", Ms(ms.Min), Ms(ms.Median), Ms(ex.Min), Ms(fo.Median)),
		Target:   ">= 300 ms every time", Met: Verdict(ms.Min >= 300*time.Millisecond)}}
}

// waitDemoted waits for the first sign that m stopped acting as master
// after since, and returns its time.
func waitDemoted(t *testing.T, m *member, since int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		first := int64(0)
		for _, ev := range []string{"transition_master_to_slave", "stopping", "service-signalled"} {
			if ns, ok := m.stamp(ev, since); ok && (first == 0 || ns < first) {
				first = ns
			}
		}
		if first != 0 {
			return first
		}
		time.Sleep(pollEvery)
	}
	t.Fatalf("%s not demoted within %v\n%s", m.spec.id, timeout, m.log())
	return 0
}

// imageSize builds the image of the repository's Dockerfile from a freshly
// built static binary and reports its size.
func imageSize(t *testing.T, b bins) []Row {
	row := Row{What: "image size (Dockerfile: static ccctl on scratch)", System: "ccctl", N: "1", Target: "<= 25 MB"}
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	dockerfile := filepath.Join(strings.TrimSpace(string(root)), "Dockerfile")
	fi, err := os.Stat(b.ccctl)
	if err != nil {
		t.Fatal(err)
	}
	binSize := fmt.Sprintf("binary %.1f MB", float64(fi.Size())/1e6)
	if _, err := os.Stat(dockerfile); err != nil {
		row.Measured = "no Dockerfile; " + binSize
		return []Row{row}
	}
	if _, err := exec.LookPath("docker"); err != nil {
		row.Measured = "no docker; " + binSize
		return []Row{row}
	}
	ctxDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctxDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(b.ccctl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "bin", "ccctl"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("ccctl-bench-size:%d", os.Getpid())
	if o, err := exec.Command("docker", "build", "-q", "-t", tag, "-f", dockerfile, ctxDir).CombinedOutput(); err != nil {
		row.Measured = fmt.Sprintf("docker build failed (%v: %s); %s", err, strings.TrimSpace(string(o)), binSize)
		return []Row{row}
	}
	defer exec.Command("docker", "rmi", "-f", tag).Run()
	o, err := exec.Command("docker", "image", "inspect", "--format", "{{.Size}}", tag).Output()
	if err != nil {
		t.Fatalf("docker image inspect: %v", err)
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(o)), 10, 64)
	if err != nil {
		t.Fatalf("docker image size %q: %v", o, err)
	}
	row.Measured = fmt.Sprintf("%.1f MB (%s)", float64(size)/1e6, binSize)
	row.Met = Verdict(float64(size)/1e6 <= 25)
	return []Row{row}
}

// references are documented defaults, not measured here.
func references() []Row {
	return []Row{
		{What: "crash failover, documented defaults (not measured)", System: "Kubernetes leader election (lease 15 s, renew 10 s, retry 2 s)", N: "-", Measured: "15-24 s"},
		{What: "crash failover, documented defaults (not measured)", System: "Patroni (ttl 30 s, loop_wait 10 s)", N: "-", Measured: "about 30 s"},
		{What: "crash failover, documented defaults (not measured)", System: "etcdctl elect (session TTL 60 s)", N: "-", Measured: "up to 60 s"},
	}
}

func sleep(d time.Duration) {
	tm := time.NewTimer(d)
	<-tm.C
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func etcdVersion() string {
	bin := os.Getenv(etcdBinaryEnv)
	if bin == "" {
		bin = "etcd"
	}
	o, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "etcd unknown"
	}
	first, _, _ := strings.Cut(string(o), "\n")
	return strings.TrimSpace(first) + " (3 processes)"
}
