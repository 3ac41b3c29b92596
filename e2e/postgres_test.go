//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/docstest"
)

// pgProject is the compose project of TestPostgresStack: a name of its own,
// so that the drill never touches another stack's containers, networks or
// volumes.
const pgProject = "ccctl-e2e-postgres"

// pgNoDataLossProject is the compose project of TestPostgresNoDataLoss.
const pgNoDataLossProject = "ccctl-e2e-pg-nodataloss"

// The lines around the section of examples/postgres/README.md that
// TestPostgresNoDataLoss runs; TestPostgresStack runs the rest.
const (
	pgDrillBegin = "<!-- BEGIN no data loss -->"
	pgDrillEnd   = "<!-- END no data loss -->"
)

// pgHeirKey is the heir's place of the example's cluster (environment
// demo, service postgres, the default prefix), as backends/etcd lays it
// out.
const pgHeirKey = "/ccctl/demo/postgres/election-heir"

// pgImages are the tags examples/postgres/README.md builds.
var pgImages = []string{"ccctl-postgres", "ccctl-postgres-etcd", "ccctl"}

// pgStack is the example's stack, started from its own files in a copy of
// the repository, and what the drill knows of it.
type pgStack struct {
	t         *testing.T
	dir       string            // the copy of the repository
	readme    string            // examples/postgres/README.md in the copy
	ran       map[string]bool   // the README blocks run so far
	container map[string]string // member -> container id
}

// TestPostgresStack runs examples/postgres as its README says, block by
// block, exactly as written: it builds the images, starts compose.yaml with
// docker-compose, writes a row on the primary, crashes the primary (its
// container's main process killed, as the kernel would), and checks between
// the blocks that a replica is promoted with the row and takes writes, that
// the restart policy (not the test) starts the old primary's container
// again and that it follows the new primary with every row, that
// hooks/position.sh agrees; that a primary cut off the network exits 5
// before a replica is promoted, and one handing over (`ccctl switchover`)
// 75, and that each comes back and follows. In long mode (without -short)
// the crash is repeated three times.
func TestPostgresStack(t *testing.T) {
	s := newPGStack(t, pgProject)
	s.build()
	primary := s.up()
	if out := s.run("compose.yaml exec -T pg1 ccctl leader", time.Minute); !strings.HasPrefix(out, primary+"\n") {
		t.Errorf("ccctl leader, then ccctl status: got %q; want %s first", out, primary)
	}
	s.run("CREATE TABLE notes", 2*time.Minute)
	rows := []string{"written before the failover"}
	for _, m := range s.others(primary) {
		s.waitRows(m, rows, 30*time.Second)
	}
	s.checkPositions(primary)

	crashes := 3
	if testing.Short() {
		crashes = 1
	}
	for i := 1; i <= crashes; i++ {
		old := primary
		restarts := s.restartCount(old)
		t1 := time.Now()
		s.run("kill -KILL", time.Minute)
		primary = s.waitPromoted(old, 2*time.Minute)
		t.Logf("postgres: crash %d: %s killed; %s promoted and writable %v later", i, old, primary, time.Since(t1).Round(time.Millisecond))
		s.waitRows(primary, rows, 10*time.Second)
		row := fmt.Sprintf("written on %s after crash %d", primary, i)
		if _, err := psql(s.container[primary], "INSERT INTO notes VALUES ('"+row+"')"); err != nil {
			t.Fatalf("write on the promoted replica %s: %v", primary, err)
		}
		rows = append(rows, row)
		s.waitFollowers(primary, rows, 3*time.Minute)
		if got := s.restartCount(old); got != restarts+1 {
			t.Errorf("restart count of %s after the crash: got %d; want %d (started again by its restart policy)", old, got, restarts+1)
		}
		t.Logf("postgres: crash %d: %s back (restart policy) and following %s with every row, %v after the kill", i, old, primary, time.Since(t1).Round(time.Millisecond))
		s.checkPositions(primary)
	}
	s.run("exec -T pg2 ccctl status", time.Minute)

	// Cut off from etcd, the primary stops its server and exits 5
	// (leadership_lost_action: exit), and comes back once healed.
	old := primary
	t2 := time.Now()
	since := strconv.FormatInt(t2.Add(-time.Second).Unix(), 10)
	s.run("docker network disconnect", 3*time.Minute)
	primary = s.waitPromoted(old, time.Minute)
	seen := time.Now()
	t.Logf("postgres: cut off: %s promoted and writable %v after %s was cut off", primary, time.Since(t2).Round(time.Millisecond), old)
	row := "written on " + primary + " after the cut"
	if _, err := psql(s.container[primary], "INSERT INTO notes VALUES ('"+row+"')"); err != nil {
		t.Fatalf("write on %s after the cut: %v", primary, err)
	}
	rows = append(rows, row)
	s.waitFollowers(primary, rows, 3*time.Minute)
	if codes, at := s.exitCodes(old, since); len(codes) == 0 || codes[0] != "5" {
		t.Errorf("exit codes of %s after the cut: got %q; want 5 first (leadership lost)", old, codes)
	} else if !at[0].Before(seen) {
		t.Errorf("%s exited at %v, after %s was seen promoted at %v; want before", old, at[0], primary, seen)
	}
	t.Logf("postgres: cut off: %s exited 5, back and following %s %v after the cut", old, primary, time.Since(t2).Round(time.Millisecond))

	// A switchover: the demotion hook stops the primary, which exits 75
	// (not 0), and the restart policy brings it back as a replica.
	old = primary
	restarts := s.restartCount(old)
	t2 = time.Now()
	since = strconv.FormatInt(t2.Add(-time.Second).Unix(), 10)
	s.run("ccctl switchover", 2*time.Minute)
	primary = s.waitPromoted(old, time.Minute)
	t.Logf("postgres: switchover: %s promoted and writable %v after ccctl switchover", primary, time.Since(t2).Round(time.Millisecond))
	row = "written on " + primary + " after the switchover"
	if _, err := psql(s.container[primary], "INSERT INTO notes VALUES ('"+row+"')"); err != nil {
		t.Fatalf("write on %s after the switchover: %v", primary, err)
	}
	rows = append(rows, row)
	s.waitFollowers(primary, rows, 3*time.Minute)
	if got := s.restartCount(old); got != restarts+1 {
		t.Errorf("restart count of %s after the switchover: got %d; want %d (exit 75, started again by its restart policy)", old, got, restarts+1)
	}
	if codes, _ := s.exitCodes(old, since); len(codes) != 1 || codes[0] != "75" {
		t.Errorf("exit codes of %s after the switchover: got %q; want 75", old, codes)
	}
	t.Logf("postgres: switchover: %s exited 75, back and following %s %v after ccctl switchover", old, primary, time.Since(t2).Round(time.Millisecond))

	// A backup by hand, as the hourly job makes them.
	if out, err := dockerTimed(2*time.Minute, "exec", s.container[primary], "ccctl", "backup", "run", "pg_dumpall", "--ext", ".sql", "--", "pg_dumpall", "-h", "/run/postgresql"); err != nil {
		t.Errorf("ccctl backup run on the primary: %v\n%s", err, out)
	} else if list, err := docker("exec", s.container[primary], "ccctl", "backup", "list", "pg_dumpall"); err != nil || !strings.Contains(list, "pg_dumpall-") {
		t.Errorf("ccctl backup list: got %q, %v; want one pg_dumpall backup", list, err)
	}

	s.run("down -v", 5*time.Minute)
	if out, err := docker("volume", "ls", "-q", "--filter", "name="+pgProject); err != nil || out != "" {
		t.Errorf("volumes after docker-compose down -v: got %q, %v; want none", out, err)
	}
	s.allRun(s.outsideDrill())
}

// TestPostgresNoDataLoss runs the README's no-data-loss drill, block by
// block, exactly as written: with one replica caught up and the one in the
// heir's place lagging (its WAL receiver stopped, a row committed after),
// the primary is crashed with docker kill. The caught-up replica must be
// the one promoted, with every row, although the lagging one would try
// first without the ranking; the lagging one must then follow it and catch
// up, and the old primary, started again, too. Then the whole cluster is
// stopped and started again: one member must take over, ranked by the
// positions of the data folders. Between the blocks it checks that
// hooks/position.sh shows the lag, below CCCTL_MAXIMUM_LAG (so that the
// drill tests the order of the candidates, not the limit), and that the
// members publish those positions in their records.
func TestPostgresNoDataLoss(t *testing.T) {
	s := newPGStack(t, pgNoDataLossProject)
	maxLag := s.maximumLag()
	s.build()
	primary := s.up()
	s.run("CREATE TABLE notes", 2*time.Minute)
	rows := []string{"written before the failover"}
	for _, m := range s.others(primary) {
		s.waitRows(m, rows, 30*time.Second)
	}

	// The replica in the heir's place tries first on a vacancy: it is the
	// one made to lag.
	var heir string
	waitUntil(t, "a replica in the heir's place", time.Minute, func() bool {
		heir = s.heir()
		return heir != "" && heir != primary
	})
	caught := s.others(primary)[0]
	if caught == heir {
		caught = s.others(primary)[1]
	}
	s.run("primary_conninfo = ''", time.Minute)
	waitUntil(t, "the WAL receiver of "+heir+" stopped", 30*time.Second, func() bool {
		n, err := psql(s.container[heir], "SELECT count(*) FROM pg_stat_wal_receiver")
		return err == nil && n == "0"
	})
	s.run("written while the heir lags", time.Minute)
	all := append(slices.Clone(rows), "written while the heir lags")
	s.waitRows(caught, all, 30*time.Second)
	if got, err := s.notes(heir); err != nil || got != strings.Join(rows, "\n") {
		t.Fatalf("rows on %s, its WAL receiver stopped: got %q, %v; want only %q", heir, got, err, rows)
	}

	// The lag, as position.sh prints it and as the records publish it.
	pp := s.position(primary)
	var pc uint64
	waitUntil(t, fmt.Sprintf("position of %s reaching the primary's %d", caught, pp), 30*time.Second, func() bool {
		pc = s.position(caught)
		return pc >= pp
	})
	ph := s.position(heir)
	s.checkPositionFails(heir)
	if ph >= pp {
		t.Fatalf("position of %s, its WAL receiver stopped: got %d; want below the primary's %d", heir, ph, pp)
	}
	if pp-ph > maxLag {
		t.Fatalf("lag of %s: %d bytes; want at most CCCTL_MAXIMUM_LAG, %d, so that it may take over and only the ranking puts it second", heir, pp-ph, maxLag)
	}
	t.Logf("postgres: no data loss: positions: %s (primary) %d, %s %d, %s (heir, receiver stopped) %d: %d bytes behind", primary, pp, caught, pc, heir, ph, pp-ph)
	if !poll(15*time.Second, func() bool {
		pub := s.published(primary)
		return pub[primary] >= int64(pp) && pub[caught] >= int64(pp) && pub[heir] == int64(ph)
	}) {
		t.Errorf("positions in the records (ccctl status -o json): got %v; want %s and %s at %d or more, %s at %d (CCCTL_POSITION_COMMAND)", s.published(primary), primary, caught, pp, heir, ph)
	}
	if h := s.heir(); h != heir {
		t.Fatalf("heir's place before the crash: got %q; want %s still, the lagging one, or the drill does not put the ranking before it", h, heir)
	}

	t1 := time.Now()
	s.run("docker kill", time.Minute)
	promoted := s.waitPromoted(primary, 2*time.Minute)
	if promoted != caught {
		got, _ := s.notes(promoted)
		t.Fatalf("promoted after the crash of %s: got %s, in the heir's place and %d bytes behind, with the rows %q; want %s, which had every row", primary, promoted, pp-ph, got, caught)
	}
	t.Logf("postgres: no data loss: %s killed; %s (caught up) promoted and writable %v later, before %s (heir)", primary, caught, time.Since(t1).Round(time.Millisecond), heir)
	if out, err := dockerTimed(30*time.Second, "exec", s.container[caught], "ccctl", "leader"); err != nil || out != caught {
		t.Errorf("ccctl leader after the crash: got %q, %v; want %s", out, err, caught)
	}
	s.waitRows(caught, all, 10*time.Second)
	row := "written on " + caught + " after the crash"
	if _, err := psql(s.container[caught], "INSERT INTO notes VALUES ('"+row+"')"); err != nil {
		t.Fatalf("write on the promoted replica %s: %v", caught, err)
	}
	all = append(all, row)

	// The lagging one follows the new primary (master_changed.sh sets its
	// primary_conninfo) and catches up.
	waitUntil(t, heir+" streaming from "+caught, 2*time.Minute, func() bool {
		return s.streams(heir) && s.sender(caught, heir)
	})
	s.waitRows(heir, all, 30*time.Second)
	t.Logf("postgres: no data loss: %s follows %s with every row, %v after the kill", heir, caught, time.Since(t1).Round(time.Millisecond))
	out := s.run("is down", time.Minute)
	if first, _, _ := strings.Cut(out, "\n"); first != caught {
		t.Errorf("the README's leader line after the crash: got %q; want %s", first, caught)
	}
	for _, want := range []string{caught + "|f|written while the heir lags", heir + "|t|written while the heir lags", primary + " is down"} {
		if !strings.Contains(out, want) {
			t.Errorf("the README's rows after the crash: no %q in\n%s", want, out)
		}
	}

	// docker kill left the old primary down; started again, it clones the
	// new primary and follows it.
	s.run("compose.yaml start", 2*time.Minute)
	s.waitFollowers(caught, all, 3*time.Minute)
	t.Logf("postgres: no data loss: %s started again and following %s with every row, %v after the kill", primary, caught, time.Since(t1).Round(time.Millisecond))

	// The whole cluster stopped: each data folder, shut down cleanly, has
	// a position, the primary's the furthest; started again, one member
	// takes over (none would, with the last primary's position known and
	// theirs not) and the others follow it.
	running := map[string]uint64{}
	for _, m := range []string{"pg1", "pg2", "pg3"} {
		running[m] = s.position(m)
	}
	out = s.run("--entrypoint position.sh", 2*time.Minute)
	stopped := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && slices.Contains([]string{"pg1", "pg2", "pg3"}, f[0]) {
			if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				stopped[f[0]] = n
			}
		}
	}
	if len(stopped) != 3 {
		t.Fatalf("position.sh on the stopped members: got %v from\n%s; want a position for each", stopped, out)
	}
	for _, m := range s.others(caught) {
		if stopped[m] > stopped[caught] {
			t.Errorf("positions of the stopped members: %v; want none above the primary's, %s", stopped, caught)
		}
	}
	for m, p := range running {
		if stopped[m] < p {
			t.Errorf("position of %s stopped: got %d; want at least %d, its position while it ran", m, stopped[m], p)
		}
	}
	if stopped[caught] <= running[caught] {
		t.Errorf("position of the primary %s stopped: got %d; want above %d, its position while it ran (its shutdown checkpoint)", caught, stopped[caught], running[caught])
	}
	t.Logf("postgres: no data loss: positions while running %v, stopped %v", running, stopped)
	t3 := time.Now()
	s.run("compose.yaml start", 2*time.Minute)
	next := s.waitPrimary("", nil, 3*time.Minute)
	s.waitFollowers(next, all, 30*time.Second)
	t.Logf("postgres: no data loss: the cluster stopped and started again: %s (stopped at %d) leads, the others follow with every row, %v after docker-compose start", next, stopped[next], time.Since(t3).Round(time.Millisecond))

	s.run("down -v", 5*time.Minute)
	s.allRun(s.drillBlocks())
}

// newPGStack checks that the machine can run the example (a Docker
// engine, docker-compose, Debian's PostgreSQL 15 to build the image from),
// copies the repository and sets the environment of the README's commands
// (the compose project, a static busybox), and removes the stack at the
// end, with the images unless CCCTL_E2E_KEEP_IMAGES=1.
func newPGStack(t *testing.T, project string) *pgStack {
	t.Helper()
	if err := engineReachable(); err != nil {
		if requireDocker() {
			t.Fatalf("CCCTL_E2E_DOCKER=1 but no Docker engine: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		if requireDocker() {
			t.Fatalf("no docker-compose to run examples/postgres/compose.yaml (apt-get install docker-compose): %v", err)
		}
		t.Skipf("no docker-compose: %v", err)
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/postgres"); err != nil {
		t.Skip("no PostgreSQL 15 server on this machine (Debian's postgresql-15) to build the example's image from")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The README's commands run in a fresh copy of the repository, as a
	// user's clone, under the drill's own project name.
	tmp := t.TempDir()
	bb, err := staticBusybox(tmp)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BUSYBOX", bb)
	t.Setenv("COMPOSE_PROJECT_NAME", project)
	dir := docstest.Copy(t, root)
	s := &pgStack{t: t, dir: dir, readme: filepath.Join(dir, "examples", "postgres", "README.md"),
		ran: map[string]bool{}, container: map[string]string{}}
	s.compose(5*time.Minute, "down", "-v", "--remove-orphans") // what a crashed run left
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.compose(time.Minute, "logs", "--no-color", "--tail", "60")
			t.Logf("--- logs of the stack:\n%s", out)
		}
		if out, err := s.compose(5*time.Minute, "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
		os.RemoveAll("/tmp/pg-context") // what the README's build block writes
		if os.Getenv("CCCTL_E2E_KEEP_IMAGES") != "1" {
			docker(append([]string{"rmi"}, pgImages...)...)
		}
	})
	return s
}

// build builds the images with the README's block.
func (s *pgStack) build() {
	s.t.Helper()
	t0 := time.Now()
	s.run("docker build -t ccctl-postgres ", 10*time.Minute)
	s.t.Logf("postgres: images built in %v", time.Since(t0).Round(time.Millisecond))
}

// up starts the stack with the README's block, learns the members'
// containers, waits for one primary and two streaming replicas, and
// returns the primary.
func (s *pgStack) up() string {
	s.t.Helper()
	t0 := time.Now()
	s.run("compose.yaml up -d", 5*time.Minute)
	for _, m := range []string{"pg1", "pg2", "pg3"} {
		id, err := s.compose(time.Minute, "ps", "-q", m)
		if err != nil || id == "" {
			s.t.Fatalf("docker-compose ps -q %s: got %q, %v; want its container", m, id, err)
		}
		s.container[m] = id
	}
	primary := s.waitPrimary("", nil, 3*time.Minute)
	s.t.Logf("postgres: %s is primary, 2 replicas streaming, %v after docker-compose up", primary, time.Since(t0).Round(time.Millisecond))
	return primary
}

// blocks returns every sh block of the README.
func (s *pgStack) blocks() []string {
	return docstest.Blocks(s.t, s.readme, "", "")
}

// run runs the one sh block of the README that contains marker, as
// written, and returns its output.
func (s *pgStack) run(marker string, timeout time.Duration) string {
	s.t.Helper()
	var found []string
	for _, b := range s.blocks() {
		if strings.Contains(b, marker) {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		s.t.Fatalf("%s: got %d sh blocks with %q; want 1", s.readme, len(found), marker)
	}
	s.ran[found[0]] = true
	return docstest.Run(s.t, s.dir, found[0], timeout)
}

// drillBlocks returns the sh blocks of the README's section that
// TestPostgresNoDataLoss runs.
func (s *pgStack) drillBlocks() []string {
	return docstest.Blocks(s.t, s.readme, pgDrillBegin, pgDrillEnd)
}

// outsideDrill returns the sh blocks of the README that TestPostgresStack
// runs: all but those of the no-data-loss section.
func (s *pgStack) outsideDrill() []string {
	var out []string
	drill := s.drillBlocks()
	for _, b := range s.blocks() {
		if i := slices.Index(drill, b); i >= 0 {
			drill = slices.Delete(drill, i, i+1)
			continue
		}
		out = append(out, b)
	}
	return out
}

// allRun fails the test when one of blocks was not run.
func (s *pgStack) allRun(blocks []string) {
	s.t.Helper()
	for _, b := range blocks {
		if !s.ran[b] {
			s.t.Errorf("%s: this sh block is not run by the drill:\n%s", s.readme, b)
		}
	}
}

// compose runs docker-compose on the copy's compose.yaml.
func (s *pgStack) compose(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-f", filepath.Join("examples", "postgres", "compose.yaml")}, args...)...)
	cmd.Dir = s.dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("docker-compose %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// others returns the members but m.
func (s *pgStack) others(m string) []string {
	var o []string
	for _, x := range []string{"pg1", "pg2", "pg3"} {
		if x != m {
			o = append(o, x)
		}
	}
	return o
}

// waitPrimary waits until exactly one member out of candidates (all when
// nil) is a primary and takes writes, and the two others stream from it
// (pg_stat_replication names them), and returns it.
func (s *pgStack) waitPrimary(not string, candidates []string, timeout time.Duration) string {
	s.t.Helper()
	primary := ""
	waitUntil(s.t, "one primary and two replicas streaming from it", timeout, func() bool {
		primary = s.primary(candidates)
		return primary != "" && primary != not && s.followers(primary)
	})
	return primary
}

// primary returns the one member among candidates (all when nil) that is
// out of recovery, or "".
func (s *pgStack) primary(candidates []string) string {
	if candidates == nil {
		candidates = []string{"pg1", "pg2", "pg3"}
	}
	found := ""
	for _, m := range candidates {
		if rec, err := psql(s.container[m], "SELECT pg_is_in_recovery()"); err == nil && rec == "f" {
			if found != "" {
				s.t.Fatalf("two primaries: %s and %s", found, m)
			}
			found = m
		}
	}
	return found
}

// followers reports whether both other members are replicas streaming from
// primary: each in recovery, its WAL receiver streaming, and named in the
// primary's pg_stat_replication (where a pg_basebackup of the same name
// shows too, hence the replica's side).
func (s *pgStack) followers(primary string) bool {
	out, err := psql(s.container[primary], "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
	if err != nil {
		return false
	}
	names := strings.Fields(out)
	for _, m := range s.others(primary) {
		if !slices.Contains(names, m) || !s.streams(m) {
			return false
		}
	}
	return true
}

// streams reports whether member m is a replica whose WAL receiver
// streams.
func (s *pgStack) streams(m string) bool {
	st, err := psql(s.container[m], "SELECT pg_is_in_recovery() AND (SELECT status = 'streaming' FROM pg_stat_wal_receiver)")
	return err == nil && st == "t"
}

// waitPromoted waits until a member other than old is a primary that
// takes writes, and returns it.
func (s *pgStack) waitPromoted(old string, timeout time.Duration) string {
	s.t.Helper()
	promoted := ""
	waitUntil(s.t, "a replica promoted", timeout, func() bool {
		promoted = s.primary(s.others(old))
		return promoted != ""
	})
	return promoted
}

// waitFollowers waits until both other members are replicas streaming
// from primary, and have every row.
func (s *pgStack) waitFollowers(primary string, rows []string, timeout time.Duration) {
	s.t.Helper()
	waitUntil(s.t, "both other members streaming from "+primary, timeout, func() bool {
		return s.followers(primary)
	})
	for _, m := range s.others(primary) {
		s.waitRows(m, rows, 30*time.Second)
	}
}

// waitRows waits until member m has exactly rows in the table notes.
func (s *pgStack) waitRows(m string, rows []string, timeout time.Duration) {
	s.t.Helper()
	sorted := append([]string(nil), rows...)
	sort.Strings(sorted)
	want := strings.Join(sorted, "\n")
	waitUntil(s.t, fmt.Sprintf("the rows %q on %s", rows, m), timeout, func() bool {
		got, _ := s.notes(m)
		return got == want
	})
}

// notes returns the rows of the table notes on member m, sorted, one a
// line.
func (s *pgStack) notes(m string) (string, error) {
	return psql(s.container[m], "SELECT note FROM notes ORDER BY note COLLATE \"C\"")
}

// checkPositions checks hooks/position.sh: one non-negative integer on
// every member, a replica's never ahead of the primary's, and each replica
// reaching the position the primary had after a write.
func (s *pgStack) checkPositions(primary string) {
	s.t.Helper()
	if _, err := psql(s.container[primary], "CREATE TABLE IF NOT EXISTS positions (at timestamptz); INSERT INTO positions VALUES (now())"); err != nil {
		s.t.Fatal(err)
	}
	p0 := s.position(primary)
	for _, m := range s.others(primary) {
		var r uint64
		waitUntil(s.t, fmt.Sprintf("position of %s reaching %d", m, p0), 30*time.Second, func() bool {
			r = s.position(m)
			return r >= p0
		})
		if p := s.position(primary); r > p {
			s.t.Errorf("position of replica %s: got %d, ahead of the primary's %d", m, r, p)
		}
	}
}

// position runs hooks/position.sh on member m.
func (s *pgStack) position(m string) uint64 {
	s.t.Helper()
	out, err := dockerTimed(30*time.Second, "exec", s.container[m], "position.sh")
	if err != nil {
		s.t.Fatalf("position.sh on %s: %v", m, err)
	}
	n, err := strconv.ParseUint(out, 10, 64)
	if err != nil {
		s.t.Fatalf("position.sh on %s: got %q; want one non-negative integer", m, out)
	}
	return n
}

// heir returns the member in the heir's place (the backend's key
// election-heir, read with etcdctl), "" when it is vacant or unreadable.
func (s *pgStack) heir() string {
	out, err := s.compose(30*time.Second, "exec", "-T", "etcd", "etcdctl", "get", "--print-value-only", pgHeirKey)
	if err != nil {
		return ""
	}
	return out
}

// sender reports whether primary streams WAL to the replica m.
func (s *pgStack) sender(primary, m string) bool {
	out, err := psql(s.container[primary], "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = '"+m+"'")
	return err == nil && out == "1"
}

// published returns the positions the members publish in their records,
// as `ccctl status -o json` on member m shows them (a member without one
// is missing).
func (s *pgStack) published(m string) map[string]int64 {
	s.t.Helper()
	out, err := dockerTimed(30*time.Second, "exec", s.container[m], "ccctl", "status", "-o", "json")
	if err != nil {
		s.t.Fatalf("ccctl status -o json on %s: %v", m, err)
	}
	var v struct {
		Members []struct {
			ID       string `json:"id"`
			Position *int64 `json:"position"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		s.t.Fatalf("ccctl status -o json on %s: %v: %q", m, err, out)
	}
	pos := map[string]int64{}
	for _, r := range v.Members {
		if r.Position != nil {
			pos[r.ID] = *r.Position
		}
	}
	return pos
}

// maximumLag returns CCCTL_MAXIMUM_LAG as compose.yaml sets it by default,
// in bytes of WAL.
func (s *pgStack) maximumLag() uint64 {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "examples", "postgres", "compose.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	m := regexp.MustCompile(`CCCTL_MAXIMUM_LAG: \$\{CCCTL_MAXIMUM_LAG:-([0-9]+)\}`).FindSubmatch(b)
	if m == nil {
		s.t.Fatal("examples/postgres/compose.yaml: no CCCTL_MAXIMUM_LAG: ${CCCTL_MAXIMUM_LAG:-N}")
	}
	n, err := strconv.ParseUint(string(m[1]), 10, 64)
	if err != nil || n == 0 {
		s.t.Fatalf("examples/postgres/compose.yaml: CCCTL_MAXIMUM_LAG %q: want a number of bytes above 0", m[1])
	}
	return n
}

// checkPositionFails checks that hooks/position.sh on member m fails,
// printing nothing on stdout, when no server answers (a port nothing
// listens on, through libpq's PGPORT).
func (s *pgStack) checkPositionFails(m string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "exec", "-e", "PGPORT=1", s.container[m], "position.sh")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil || stdout.Len() != 0 {
		s.t.Errorf("position.sh on %s with no server answering: got %q on stdout, %v; want nothing, and a failure", m, stdout.String(), err)
	}
	s.t.Logf("postgres: position.sh with no server: %v: %s", err, strings.TrimSpace(stderr.String()))
}

// exitCodes returns the exit codes of member m's container since the Unix
// time since, and when it exited, in order.
func (s *pgStack) exitCodes(m, since string) ([]string, []time.Time) {
	s.t.Helper()
	out, err := docker("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container="+s.container[m], "--filter", "event=die", "--format", "{{.Actor.Attributes.exitCode}} {{.TimeNano}}")
	if err != nil {
		s.t.Fatal(err)
	}
	var codes []string
	var at []time.Time
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			s.t.Fatalf("docker events: %q", line)
		}
		codes = append(codes, f[0])
		at = append(at, time.Unix(0, ns))
	}
	return codes, at
}

// restartCount returns how many times docker's restart policy started
// member m's container again.
func (s *pgStack) restartCount(m string) int {
	s.t.Helper()
	out, err := docker("inspect", "--format", "{{.RestartCount}}", s.container[m])
	if err != nil {
		s.t.Fatal(err)
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		s.t.Fatalf("restart count of %s: %q", m, out)
	}
	return n
}

// psql runs one query in a member's container and returns its unaligned
// output.
func psql(container, query string) (string, error) {
	return dockerTimed(30*time.Second, "exec", container, "psql", "-h", "/run/postgresql", "-U", "postgres", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", query)
}

// waitUntil polls cond until it holds, and fails the test when it does not
// within timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

// poll polls cond until it holds, and reports whether it did within
// timeout.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	return true
}
