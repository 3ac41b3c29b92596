//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// etcdBinaryEnv names the environment variable that points the driver at an
// etcd executable; when it is empty, etcd is looked up on PATH.
const etcdBinaryEnv = "CCCTL_ETCD_BINARY"

// etcdProcs is an etcd cluster whose members are separate processes.
type etcdProcs struct {
	endpoints []string
	cmds      []*exec.Cmd
}

// startEtcdProcs starts an n-member etcd cluster from the etcd executable
// and returns it once every member answers a read. It is stopped in
// t.Cleanup.
func startEtcdProcs(t *testing.T, n int) *etcdProcs {
	t.Helper()
	bin := os.Getenv(etcdBinaryEnv)
	if bin == "" {
		p, err := exec.LookPath("etcd")
		if err != nil {
			t.Skipf("no etcd executable: set %s or put etcd on PATH", etcdBinaryEnv)
		}
		bin = p
	}
	dir := t.TempDir()
	if *etcdDir != "" {
		d, err := os.MkdirTemp(*etcdDir, "ccctl-bench-etcd-")
		if err != nil {
			t.Fatalf("-etcd-dir: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	peers := make([]string, n)
	clients := make([]string, n)
	var initial []string
	for i := range n {
		peers[i] = "http://" + freeAddr(t)
		clients[i] = "http://" + freeAddr(t)
		initial = append(initial, fmt.Sprintf("e%d=%s", i, peers[i]))
	}
	e := &etcdProcs{endpoints: clients}
	for i := range n {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("e%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin,
			"--name", fmt.Sprintf("e%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("e%d", i)),
			"--listen-peer-urls", peers[i],
			"--initial-advertise-peer-urls", peers[i],
			"--listen-client-urls", clients[i],
			"--advertise-client-urls", clients[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", "bench",
			"--log-level", "warn",
			"--enable-pprof",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("start etcd: %v", err)
		}
		e.cmds = append(e.cmds, cmd)
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			logf.Close()
		})
	}
	cli := e.client(t)
	deadline := time.Now().Add(30 * time.Second)
	for _, ep := range clients {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cli.Status(ctx, ep)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd member %s not serving within 30s: %v", ep, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return e
}

// client returns a client of every member, closed in t.Cleanup.
func (e *etcdProcs) client(t *testing.T, opts ...grpc.DialOption) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), DialOptions: opts})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// disk is the count of etcd's WAL fsyncs and backend commits, summed
// over the members, by the histogram bucket they fell in.
type disk struct {
	fsync, commit map[string]float64 // upper bound ("0.128", "+Inf") -> count
}

// disk reads the WAL fsync and backend commit histograms of every member
// from its /metrics.
func (e *etcdProcs) disk(t *testing.T) disk {
	t.Helper()
	d := disk{fsync: map[string]float64{}, commit: map[string]float64{}}
	for _, ep := range e.endpoints {
		resp, err := http.Get(ep + "/metrics")
		if err != nil {
			t.Fatalf("etcd metrics: %v", err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]float64
			switch {
			case strings.HasPrefix(line, "etcd_disk_wal_fsync_duration_seconds_bucket{"):
				m = d.fsync
			case strings.HasPrefix(line, "etcd_disk_backend_commit_duration_seconds_bucket{"):
				m = d.commit
			default:
				continue
			}
			// name{...,le="0.064"} 42
			_, rest, ok1 := strings.Cut(line, `le="`)
			le, _, ok2 := strings.Cut(rest, `"`)
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if !ok1 || !ok2 || err != nil {
				continue
			}
			m[le] += v
		}
		resp.Body.Close()
	}
	return d
}

// slow describes the fsyncs and commits between a and b that took over
// 64 ms, out of all between them.
func slow(a, b disk) string {
	over := func(x, y map[string]float64) float64 {
		return (y["+Inf"] - y["0.064"]) - (x["+Inf"] - x["0.064"])
	}
	return fmt.Sprintf("etcd WAL fsyncs > 64 ms: %.0f of %.0f, backend commits > 64 ms: %.0f of %.0f",
		over(a.fsync, b.fsync), b.fsync["+Inf"]-a.fsync["+Inf"], over(a.commit, b.commit), b.commit["+Inf"]-a.commit["+Inf"])
}

// usage is the CPU time and memory of the cluster's processes at one
// moment.
type usage struct {
	at  time.Time
	cpu []time.Duration // user + system, per member
	rss []int64         // resident bytes, per member
}

// usage reads every member's CPU time and resident memory from /proc.
func (e *etcdProcs) usage(t *testing.T) usage {
	t.Helper()
	u := usage{at: time.Now()}
	for _, c := range e.cmds {
		cpu, err := procCPU(c.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		rss, err := procRSS(c.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		u.cpu = append(u.cpu, cpu)
		u.rss = append(u.rss, rss)
	}
	return u
}

// cores returns the CPU used between a and b, in cores (all members
// together).
func cores(a, b usage) float64 {
	var d time.Duration
	for i := range a.cpu {
		d += b.cpu[i] - a.cpu[i]
	}
	return d.Seconds() / b.at.Sub(a.at).Seconds()
}

// maxRSS returns the largest member's resident memory.
func (u usage) maxRSS() int64 {
	var m int64
	for _, r := range u.rss {
		m = max(m, r)
	}
	return m
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU returns the user + system CPU time of a process.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times %q %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procRSS returns the resident memory of a process (VmRSS).
func procRSS(pid int) (int64, error) {
	return procStatus(pid, "VmRSS:")
}

// procStatus returns a kB field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// grpcCounts returns the number of gRPC calls started and messages received
// by every member together, from their /metrics.
func (e *etcdProcs) grpcCounts(t *testing.T) (calls, msgs float64) {
	t.Helper()
	for _, ep := range e.endpoints {
		resp, err := http.Get(ep + "/metrics")
		if err != nil {
			t.Fatalf("etcd metrics: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("etcd metrics: %v", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			var sum *float64
			switch {
			case strings.HasPrefix(l, "grpc_server_started_total{"):
				sum = &calls
			case strings.HasPrefix(l, "grpc_server_msg_received_total{"):
				sum = &msgs
			default:
				continue
			}
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			if err == nil {
				*sum += v
			}
		}
	}
	return calls, msgs
}

// profile fetches a CPU profile of every member over d, in parallel, into
// dir/etcd-<what>-e<i>.pprof.
func (e *etcdProcs) profile(t *testing.T, dir, what string, d time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for i, ep := range e.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", ep, int(d.Seconds())))
			if err != nil {
				t.Errorf("profile e%d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("etcd-%s-e%d.pprof", what, i)), b, 0o644)
			}
			if err != nil {
				t.Errorf("profile e%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
