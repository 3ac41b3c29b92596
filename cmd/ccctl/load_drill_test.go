package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// The load drill's figures: nothing from outside may kill, wedge or fool
// a member.
const (
	loadScrapers = 200 // clients hammering /metrics and resetting
	loadIdleRate = 500 // idle connections (re)opened per second at most
	loadP99      = 50 * time.Millisecond
)

// loadIdle is how many idle keep-alive connections are kept open: 10 000
// with CCCTL_LOAD_LONG=1, else 2 000 (still four times the default bound,
// so the shedding is exercised, and quick to open on a loaded machine).
func loadIdle() int {
	if os.Getenv("CCCTL_LOAD_LONG") != "" {
		return 10000
	}
	return 2000
}

// loadDuration is how long the drill runs: a few seconds, 60s with
// CCCTL_LOAD_LONG=1.
func loadDuration() time.Duration {
	if os.Getenv("CCCTL_LOAD_LONG") != "" {
		return 60 * time.Second
	}
	return 6 * time.Second
}

// TestRunLoadDrill runs ccctl with a service under 200 clients that ask for
// /metrics and reset the connection in the middle of the answer, and 10 000
// idle keep-alive connections that are opened again when the server sheds
// them: the service stays the same process, the role stays master, and
// /health, asked on a new connection every 10ms, answers 200 with a p99
// under 50ms. CCCTL_LOAD_LONG=1 runs it for 60s instead of 6s, against a
// build without the race detector, and only then holds the p99 to 50ms.
func TestRunLoadDrill(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	bin := binary
	if os.Getenv("CCCTL_LOAD_LONG") != "" {
		// The figure is the product's: a build without the race detector,
		// which multiplies the CPU cost of every request.
		bin = filepath.Join(t.TempDir(), "ccctl")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build ccctl: %v\n%s", err, out)
		}
	}
	r := backgroundAt(t, bin, []string{"CCCTL_HTTP_ADDR=" + addr, "CCCTL_INSTANCE_ID=drill"}, append([]string{"run", "--"}, loopService(dir)...)...)
	pid := readPid(t, filepath.Join(dir, "svc.pid"))
	waitHealthy(t, addr)
	gen := startLoad(t, addr)

	// The health checker: a new connection for every request, as docker's
	// HEALTHCHECK and most load balancers do.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lat []time.Duration
	failed := 0
	tick := time.NewTicker(10 * time.Millisecond)
	end := time.After(loadDuration())
probe:
	for {
		select {
		case <-end:
			break probe
		case <-tick.C:
		}
		t0 := time.Now()
		if code := healthCode(client, addr); code != http.StatusOK {
			failed++
			continue
		}
		lat = append(lat, time.Since(t0))
	}
	tick.Stop()
	load := gen.stop(t)

	select {
	case <-r.done:
		t.Fatalf("ccctl exited with %d under load; stderr %q", r.cmd.ProcessState.ExitCode(), r.stderr.String())
	default:
	}
	if !testutil.Alive(pid) {
		t.Errorf("service %d gone under load; want the same process running", pid)
	}
	if now := readPid(t, filepath.Join(dir, "svc.pid")); now != pid {
		t.Errorf("service pid: got %d after the load; want %d (not restarted)", now, pid)
	}
	if role := statusRole(t, addr); role != "master" {
		t.Errorf("role after the load: got %q; want master", role)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatalf("no /health answer in %s (%d failed)", loadDuration(), failed)
	}
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	t.Logf("%s: /health %d answered, %d failed, p50 %v p99 %v max %v; /metrics %d asked, %d reset mid-answer; idle connections %d opened, %d closed by the server",
		loadDuration(), len(lat), failed, p(0.50), p(0.99), lat[len(lat)-1], load.Scrapes, load.Resets, load.IdleOpened, load.IdleClosed)
	if failed > 0 {
		t.Errorf("/health: %d of %d probes failed; want none", failed, failed+len(lat))
	}
	// The p99 is a figure of the machine as much as of ccctl: it is held
	// to loadP99 in the long run by hand; the short run in CI, on a shared
	// machine and a race-detector build, only logs it.
	if os.Getenv("CCCTL_LOAD_LONG") != "" && p(0.99) >= loadP99 {
		t.Errorf("/health p99: got %v; want under %v", p(0.99), loadP99)
	}
	if code := r.stop(t, syscall.SIGTERM, 20*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code after SIGTERM: got %d; want %d", code, 128+int(syscall.SIGTERM))
	}
}

// loadCounts is what the load generator did.
type loadCounts struct {
	Scrapes, Resets, IdleOpened, IdleClosed int64
}

// loadGen is the load generator's process.
type loadGen struct {
	stdin io.Closer
	out   *bufio.Scanner
}

// startLoad starts the load against addr in a process of its own, at the
// lowest CPU priority (nice 19): the clients of a real member do not share
// its CPU, so on a small test machine the drill must not let them starve
// the member and the health checker. It returns once the idle connections
// are open.
func startLoad(t *testing.T, addr string) *loadGen {
	t.Helper()
	cmd := exec.Command("nice", "-n", "19", os.Args[0], "-test.run=^TestLoadGenerator$")
	cmd.Env = append(os.Environ(), "CCCTL_LOADGEN_ADDR="+addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the load generator: %v", err)
	}
	g := &loadGen{stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		for g.out.Scan() {
			if g.out.Text() == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("load generator: ended before it was ready")
		}
	case <-time.After(120 * time.Second):
		t.Fatalf("load generator: not ready within 120s")
	}
	return g
}

// stop ends the load and returns what it did.
func (g *loadGen) stop(t *testing.T) loadCounts {
	t.Helper()
	g.stdin.Close()
	var c loadCounts
	done := make(chan error, 1)
	go func() {
		for g.out.Scan() {
			if err := json.Unmarshal(g.out.Bytes(), &c); err == nil {
				done <- nil
				return
			}
		}
		done <- fmt.Errorf("no counts line")
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("load generator: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("load generator: no end within 60s of stop")
	}
	return c
}

// openIdle opens a connection and makes one request on it, which leaves it
// idle as a keep-alive client's is between requests. It returns nil when
// the connection failed before the answer.
func openIdle(addr string) (net.Conn, *bufio.Reader) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := c.Write([]byte("GET /health HTTP/1.1\r\nHost: ccctl\r\n\r\n")); err != nil {
		c.Close()
		return nil, nil
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, nil
	}
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return c, br
}

// holdIdle holds c open until the server closes it (it returns true) or
// stop is closed (false).
func holdIdle(c net.Conn, br *bufio.Reader, stop <-chan struct{}) bool {
	closed := make(chan struct{})
	go func() {
		br.ReadByte() // returns when either side closes
		close(closed)
	}()
	defer c.Close()
	select {
	case <-closed:
		return true
	case <-stop:
		return false
	}
}

// TestLoadGenerator is the load of TestRunLoadDrill, run in a process of
// its own (it does nothing unless CCCTL_LOADGEN_ADDR is set): it prints
// "ready" once the idle connections are open, runs until its stdin closes,
// then prints its counts as JSON.
func TestLoadGenerator(t *testing.T) {
	addr := os.Getenv("CCCTL_LOADGEN_ADDR")
	if addr == "" {
		t.Skip("the load of TestRunLoadDrill; runs in that drill's process")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var idleOpened, idleClosed, scrapes, resets atomic.Int64

	// The idle connections: loadIdle holders, each opening a new one when
	// the server closes its own. The first loadIdle are opened 64 at a
	// time; later dials share a pace of loadIdleRate a second (a client's,
	// not a SYN flood's: that is the kernel's to bound).
	dials := time.NewTicker(time.Second / loadIdleRate)
	defer dials.Stop()
	first := make(chan struct{}, 64)
	for i := 0; i < loadIdle(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if n == 0 {
					first <- struct{}{}
				} else {
					select {
					case <-stop:
						return
					case <-dials.C:
					}
				}
				c, br := openIdle(addr)
				if n == 0 {
					<-first
				}
				if c == nil {
					continue
				}
				idleOpened.Add(1)
				if !holdIdle(c, br, stop) {
					return
				}
				idleClosed.Add(1)
			}
		}()
	}
	// The scrapers.
	for i := 0; i < loadScrapers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				scrapes.Add(1)
				if resetMetrics(addr) {
					resets.Add(1)
				}
			}
		}()
	}
	testutil.Eventually(t, 100*time.Second, fmt.Sprintf("%d idle connections opened", loadIdle()), func() bool {
		return idleOpened.Load() >= int64(loadIdle())
	})
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	close(stop)
	wg.Wait()
	b, _ := json.Marshal(loadCounts{Scrapes: scrapes.Load(), Resets: resets.Load(), IdleOpened: idleOpened.Load(), IdleClosed: idleClosed.Load()})
	fmt.Println(string(b))
}

// statusRole returns the role /status reports.
func statusRole(t *testing.T, addr string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/status")
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	defer resp.Body.Close()
	var st struct {
		Role string `json:"role"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	return st.Role
}
