//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	t.Setenv("COMPOSE_PROJECT_NAME", pgProject)
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

	t0 := time.Now()
	s.run("docker build -t ccctl-postgres ", 10*time.Minute)
	t.Logf("postgres: images built in %v", time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	s.run("compose.yaml up -d", 5*time.Minute)
	for _, m := range []string{"pg1", "pg2", "pg3"} {
		id, err := s.compose(time.Minute, "ps", "-q", m)
		if err != nil || id == "" {
			t.Fatalf("docker-compose ps -q %s: got %q, %v; want its container", m, id, err)
		}
		s.container[m] = id
	}
	primary := s.waitPrimary("", nil, 3*time.Minute)
	t.Logf("postgres: %s is primary, 2 replicas streaming, %v after docker-compose up", primary, time.Since(t0).Round(time.Millisecond))
	if out := s.run("compose.yaml exec -T pg1 ccctl leader", time.Minute); !strings.HasPrefix(out, primary+"\n") {
		t.Errorf("ccctl leader, then ccctl status: got %q; want %s first", out, primary)
	}
	s.run("INSERT INTO notes", 2*time.Minute)
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
	s.allRun()
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

// allRun fails the test when a sh block of the README was not run.
func (s *pgStack) allRun() {
	s.t.Helper()
	for _, b := range s.blocks() {
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
		if !slices.Contains(names, m) {
			return false
		}
		if st, err := psql(s.container[m], "SELECT pg_is_in_recovery() AND (SELECT status = 'streaming' FROM pg_stat_wal_receiver)"); err != nil || st != "t" {
			return false
		}
	}
	return true
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
		got, _ := psql(s.container[m], "SELECT note FROM notes ORDER BY note COLLATE \"C\"")
		return got == want
	})
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
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
}
