//go:build e2e

package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// restartDelay is how long a member stays down after its process exited on
// its own (session lost, service crashed) before the harness restarts it.
const restartDelay = 200 * time.Millisecond

// buildCCCTL builds the ccctl binary with the given build tags into dir and
// returns its path with symbolic links resolved (as /proc/PID/exe shows it).
func buildCCCTL(t *testing.T, dir, tags string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "ccctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/ccctl")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ccctl (tags %q): %v\n%s", tags, err, b)
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// ports is held for reading while a seed takes free loopback ports (its etcd
// cluster and its proxies), and for writing while some of a seed's etcd
// members are stopped: the ports they freed are then not taken by another
// seed's etcd or proxy, which the stopped members' clients would reach.
var ports sync.RWMutex

// harness runs one seed: an etcd cluster, the members and the history.
type harness struct {
	t       *testing.T
	bin     string
	dir     string
	ttl     time.Duration
	history string
	backups string // BACKUP_DESTINATION_FOLDER of every member
	leader  string // the prefix of the election's leader key (election/<id>)
	etcd    *etcdtest.Cluster
	cli     *clientv3.Client
	members []*member

	etcdRestarts atomic.Int64 // etcd members restarted and healthy again
	etcdAllDown  atomic.Int64 // the longest time every etcd member was down (ns)
	clusterID    uint64       // of the seed's etcd cluster

	histMu sync.Mutex
	ctx    context.Context // cancelled at shutdown: no more restarts
	cancel context.CancelFunc
	wg     sync.WaitGroup // the members' supervisors and async faults
}

// member is one ccctl member and its successive processes.
type member struct {
	h        *harness
	id       string
	proxies  []*etcdtest.Proxy // one per etcd member
	env      []string
	logPath  string
	pidFile  string
	hangFile string        // while it exists, the member's hooks hang
	wake     chan struct{} // a kill fault ended

	mu      sync.Mutex
	cur     *incarnation // nil while down
	hold    int          // kill faults in progress
	cuts    int
	slows   int
	hangs   int
	freezes int
	frozen  *incarnation // the process frozen by SIGSTOP, if any
}

// incarnation is one ccctl process of a member.
type incarnation struct {
	pid    int
	exited chan struct{} // closed once reaped and recorded
}

func newHarness(t *testing.T, bin string, seed int64, members int, ttl time.Duration) *harness {
	t.Helper()
	dir := t.TempDir()
	ports.RLock()
	defer ports.RUnlock()
	h := &harness{
		t: t, bin: bin, dir: dir, ttl: ttl,
		history: filepath.Join(dir, "history"),
		backups: filepath.Join(dir, "backups"),
		etcd:    etcdtest.StartCluster(t, 3),
	}
	service := fmt.Sprintf("s%d", seed)
	h.leader = "/ccctl/chaos/" + service + "/election/"
	cli, err := clientv3.New(clientv3.Config{Endpoints: h.etcd.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	h.cli = cli
	if h.clusterID, err = h.etcdClusterID(0); err != nil {
		t.Fatalf("etcd cluster id: %v", err)
	}
	t.Cleanup(func() {
		// etcd members take about a second each to stop: stop them
		// together (etcdtest's own cleanup then has nothing left to do).
		var wg sync.WaitGroup
		for i := range h.etcd.Size() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.etcd.Stop(i)
			}()
		}
		wg.Wait()
	})
	conf := filepath.Join(dir, "ccctl.yaml")
	if err := os.WriteFile(conf, []byte(configYAML(os.Args[0])), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for i := range members {
		m := &member{h: h, id: fmt.Sprintf("m%d", i), wake: make(chan struct{}, 1)}
		var eps []string
		for e := range h.etcd.Size() {
			p := etcdtest.NewProxy(t, h.etcd.Endpoint(e))
			m.proxies = append(m.proxies, p)
			eps = append(eps, p.Endpoint())
		}
		m.logPath = filepath.Join(dir, m.id+".log")
		m.pidFile = filepath.Join(dir, m.id+".pid")
		m.hangFile = filepath.Join(dir, m.id+".hang")
		m.env = append(os.Environ(),
			"ETCD_ENDPOINTS="+strings.Join(eps, ","),
			"ENVIRONMENT=chaos",
			"SERVICE="+service,
			"CCCTL_INSTANCE_ID="+m.id,
			"CCCTL_TTL="+ttl.String(),
			"CCCTL_GRACE_PERIOD=1s",
			"CCCTL_ETCD_DIAL_TIMEOUT=1s",
			"CCCTL_CONFIG="+conf,
			envHistory+"="+h.history,
			envCCCTL+"="+bin,
			envPIDFile+"="+m.pidFile,
			envHang+"="+m.hangFile,
			"BACKUP_DESTINATION_FOLDER="+h.backups,
			"CCCTL_BACKUP_LAST_TO_KEEP=unlimited", // pruning runs and keeps every backup
		)
		h.members = append(h.members, m)
	}
	return h
}

// configYAML is the members' configuration: every role hook and the
// master-only jobs (tick and backup) run the test binary as a helper. With
// the membership hooks, a master is often in a hook (members_added after a
// restart) when its leadership is lost: the hook must be stopped, and the
// demotion started, at once.
func configYAML(helper string) string {
	q := strconv.Quote(helper)
	var b strings.Builder
	b.WriteString("hooks:\n  timeout: 10s\n")
	for _, h := range []string{"start", "started_as_master", "started_as_slave", "transition_slave_to_master", "transition_master_to_slave", "master_changed", "members_added", "members_removed", "stopping"} {
		fmt.Fprintf(&b, "  %s: [%s, %s]\n", h, q, helperHook)
	}
	fmt.Fprintf(&b, "jobs:\n  - name: tick\n    schedule: \"@every 1s\"\n    role: master\n    timeout: 5s\n    command: [%s, %s]\n", q, helperJob)
	fmt.Fprintf(&b, "  - name: backup\n    schedule: \"@every 1s\"\n    role: master\n    timeout: 5s\n    command: [%s, %s]\n", q, helperBackup)
	return b.String()
}

// record appends a harness line to the history, stamped now.
func (h *harness) record(member, kind, extra string) {
	h.recordAt(monotonic(), member, kind, extra)
}

func (h *harness) recordAt(t int64, member, kind, extra string) {
	h.histMu.Lock()
	defer h.histMu.Unlock()
	if member == "" {
		member = "-"
	}
	if err := appendLine(h.history, fmt.Sprintf("%d %s %s 0 %s\n", t, member, kind, extra)); err != nil {
		h.t.Errorf("history: %v", err)
	}
}

// start starts every member's supervisor and service watcher.
func (h *harness) start() {
	for _, m := range h.members {
		h.wg.Add(2)
		go func() {
			defer h.wg.Done()
			m.supervise(h.ctx)
		}()
		go func() {
			defer h.wg.Done()
			m.watchService(h.ctx)
		}()
	}
}

// serviceWatch is how often watchService looks at the member's service.
const serviceWatch = 5 * time.Millisecond

// watchService records "service_exit" when the member's service process is
// gone (looked at every serviceWatch, so the record is at most that late),
// until ctx is done. ccctl kills a master's service when its demotion
// misses its deadline, together with the demotion hook, which may have no
// time to write its own line: the service's end then ends the term.
func (m *member) watchService(ctx context.Context) {
	tick := time.NewTicker(serviceWatch)
	defer tick.Stop()
	pid := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if pid != 0 && gone(pid) {
			m.h.record(m.id, recServiceExit, fmt.Sprintf("pid=%d", pid))
			pid = 0
		}
		if p := m.servicePID(); p != 0 && p != pid && !gone(p) {
			pid = p
		}
	}
}

// gone reports whether process pid has exited (a zombie included).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// supervise keeps the member running: it starts a process, waits for it to
// exit, and starts the next one after restartDelay once no kill fault holds
// the member down, until ctx is done.
func (m *member) supervise(ctx context.Context) {
	for {
		inc := m.spawn()
		if inc == nil {
			select {
			case <-m.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-inc.exited:
		case <-ctx.Done():
			return
		}
		t := time.NewTimer(restartDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// spawn starts a process unless a kill fault holds the member down (nil).
func (m *member) spawn() *incarnation {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold > 0 || m.h.ctx.Err() != nil {
		return nil
	}
	os.Remove(m.pidFile)
	logf, err := os.OpenFile(m.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		m.h.t.Errorf("%s: log: %v", m.id, err)
		return nil
	}
	cmd := exec.Command(m.h.bin, "run", "--", os.Args[0], helperService)
	cmd.Env = m.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	m.h.record(m.id, recSpawn, "")
	if err := cmd.Start(); err != nil {
		logf.Close()
		m.h.record(m.id, recExit, "start-failed")
		m.h.t.Errorf("%s: start ccctl: %v", m.id, err)
		return nil
	}
	inc := &incarnation{pid: cmd.Process.Pid, exited: make(chan struct{})}
	m.cur = inc
	m.h.wg.Add(1)
	go func() {
		defer m.h.wg.Done()
		err := cmd.Wait()
		logf.Close()
		// Dead and reaped: from now on its hooks' helpers write nothing.
		m.h.record(m.id, recExit, exitText(err))
		m.signalService(syscall.SIGKILL) // the container's other processes die with it
		m.mu.Lock()
		if m.cur == inc {
			m.cur = nil
		}
		m.mu.Unlock()
		close(inc.exited)
	}()
	return inc
}

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// servicePID returns the pid of the member's service (0 when not known).
func (m *member) servicePID() int {
	b, err := os.ReadFile(m.pidFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// signalService sends sig to the service's process group, if it runs.
func (m *member) signalService(sig syscall.Signal) {
	if pid := m.servicePID(); pid > 0 {
		_ = syscall.Kill(-pid, sig)
	}
}

// kill is the start of a kill fault: SIGKILL to ccctl and its service, and
// no restart until unhold.
func (m *member) kill() {
	m.mu.Lock()
	m.hold++
	inc := m.cur
	m.mu.Unlock()
	if inc == nil {
		return
	}
	_ = syscall.Kill(-inc.pid, syscall.SIGKILL)
	m.signalService(syscall.SIGKILL)
	select {
	case <-inc.exited:
	case <-time.After(10 * time.Second):
		m.h.t.Errorf("%s: pid %d not reaped 10s after SIGKILL", m.id, inc.pid)
	}
}

// unhold ends a kill fault.
func (m *member) unhold() {
	m.mu.Lock()
	m.hold--
	release := m.hold == 0
	m.mu.Unlock()
	if release {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// freeze stops ccctl and its service with SIGSTOP and records the time once
// ccctl is stopped.
func (m *member) freeze() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.freezes++
	if m.freezes > 1 || m.cur == nil {
		return
	}
	inc := m.cur
	_ = syscall.Kill(-inc.pid, syscall.SIGSTOP)
	m.signalService(syscall.SIGSTOP)
	deadline := time.Now().Add(time.Second)
	for !stopped(inc.pid) && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	m.frozen = inc
	m.h.record(m.id, recFreeze, "")
}

// thaw ends a freeze: the time is recorded before SIGCONT.
func (m *member) thaw() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.freezes--
	if m.freezes > 0 || m.frozen == nil {
		return
	}
	inc := m.frozen
	m.frozen = nil
	if m.cur != inc {
		return // died while frozen: its exit ended the freeze
	}
	m.h.record(m.id, recThaw, "")
	m.signalService(syscall.SIGCONT)
	_ = syscall.Kill(-inc.pid, syscall.SIGCONT)
}

// stopped reports whether process pid is in the stopped state.
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'T' || s[i+2] == 't')
}

func (m *member) cut(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.cuts++
	} else {
		m.cuts--
	}
	for _, p := range m.proxies {
		if m.cuts > 0 {
			p.Cut()
		} else {
			p.Heal()
		}
	}
}

// hang makes the hooks that start from now on hang (on), or releases
// them once no hang fault is left (off).
func (m *member) hang(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.hangs++
	} else {
		m.hangs--
	}
	switch {
	case on && m.hangs == 1:
		if err := os.WriteFile(m.hangFile, nil, 0o600); err != nil {
			m.h.t.Errorf("%s: hang: %v", m.id, err)
		}
	case !on && m.hangs == 0:
		if err := os.Remove(m.hangFile); err != nil {
			m.h.t.Errorf("%s: release the hooks: %v", m.id, err)
		}
	}
}

func (m *member) slow(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d > 0 {
		m.slows++
	} else {
		m.slows--
	}
	for _, p := range m.proxies {
		if d > 0 || m.slows == 0 {
			p.SetDelay(d)
		}
	}
}

// currentMaster returns the index of the member named by the leader key,
// or -1 when there is none or its process is dead.
func (h *harness) currentMaster() int {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	resp, err := h.cli.Get(ctx, h.leader, clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) == 0 {
		return -1
	}
	for i, m := range h.members {
		if m.id == string(resp.Kvs[0].Value) {
			m.mu.Lock()
			down := m.cur == nil
			m.mu.Unlock()
			if down {
				return -1 // its lease outlives it: not the master any more
			}
			return i
		}
	}
	return -1
}

// etcdLeader returns the index of etcd's raft leader among the running
// members, or -1.
func (h *harness) etcdLeader(ctx context.Context) (int, uint64) {
	for i := range h.etcd.Size() {
		ep := h.etcd.Endpoint(i)
		if !contains(h.etcd.Endpoints(), ep) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st, err := h.cli.Status(cctx, ep)
		cancel()
		if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i, st.Header.MemberId
		}
	}
	return -1, 0
}

// moveEtcdLeader asks etcd's leader to hand its role to another running
// member.
func (h *harness) moveEtcdLeader() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	li, _ := h.etcdLeader(ctx)
	if li < 0 {
		return errors.New("no etcd leader")
	}
	ml, err := h.cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("member list: %w", err)
	}
	var to uint64
	for _, mm := range ml.Members {
		if len(mm.ClientURLs) > 0 && mm.ClientURLs[0] != h.etcd.Endpoint(li) && contains(h.etcd.Endpoints(), mm.ClientURLs[0]) {
			to = mm.ID
			break
		}
	}
	if to == 0 {
		return errors.New("no other running etcd member")
	}
	lc, err := clientv3.New(clientv3.Config{Endpoints: []string{h.etcd.Endpoint(li)}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer lc.Close()
	if _, err := lc.MoveLeader(ctx, to); err != nil {
		return fmt.Errorf("move leader: %w", err)
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// waitEtcdLeader waits up to 15 s for etcd to have a raft leader.
func (h *harness) waitEtcdLeader() error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if i, _ := h.etcdLeader(context.Background()); i >= 0 {
			return nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-h.ctx.Done():
			return h.ctx.Err()
		}
	}
	return errors.New("etcd has no leader 15s after the faults stopped")
}

// waitHistory polls the history until ok holds for it, up to d.
func (h *harness) waitHistory(d time.Duration, what string, ok func([]record) bool) error {
	deadline := time.Now().Add(d)
	for {
		recs, err := readHistory(h.history)
		if err == nil && ok(recs) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, d)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-h.ctx.Done():
			return h.ctx.Err()
		}
	}
}

// shutdown stops restarting, then stops every member with SIGTERM (SIGKILL
// after 15 s) and waits for every goroutine of the harness.
func (h *harness) shutdown() {
	h.cancel()
	for _, m := range h.members {
		m.mu.Lock()
		inc := m.cur
		m.mu.Unlock()
		if inc == nil {
			continue
		}
		_ = syscall.Kill(-inc.pid, syscall.SIGCONT)
		m.signalService(syscall.SIGCONT)
		_ = syscall.Kill(-inc.pid, syscall.SIGTERM)
	}
	for _, m := range h.members {
		m.mu.Lock()
		inc := m.cur
		m.mu.Unlock()
		if inc == nil {
			continue
		}
		select {
		case <-inc.exited:
		case <-time.After(15 * time.Second):
			h.t.Errorf("%s: still running 15s after SIGTERM; killing it", m.id)
			_ = syscall.Kill(-inc.pid, syscall.SIGKILL)
			select {
			case <-inc.exited:
			case <-time.After(10 * time.Second):
				h.t.Fatalf("%s: pid %d not reaped 10s after SIGKILL", m.id, inc.pid)
			}
		}
	}
	h.wg.Wait()
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// etcdClusterID returns the cluster id etcd member i answers with.
func (h *harness) etcdClusterID(i int) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.cli.Status(ctx, h.etcd.Endpoint(i))
	if err != nil {
		return 0, err
	}
	return st.Header.ClusterId, nil
}

// checkEtcdMember returns an error unless etcd member i, restarted, is a
// member of the seed's own cluster.
func (h *harness) checkEtcdMember(i int) error {
	id, err := h.etcdClusterID(i)
	if err != nil {
		return fmt.Errorf("etcd member %d after its restart: %w", i, err)
	}
	if id != h.clusterID {
		return fmt.Errorf("etcd member %d after its restart: got cluster id %x; want %x (its port was taken by another cluster)", i, id, h.clusterID)
	}
	return nil
}
