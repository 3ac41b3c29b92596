//go:build e2e

package e2e

import (
	"context"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const imagePostgres = "ccctl-e2e/postgres:test"

// buildPostgresImage builds examples/postgres's image the way its README
// says, on top of the ccctl image; it skips when this machine has no
// PostgreSQL server to take the files from.
func buildPostgresImage(t *testing.T, e *env) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/postgres"); err != nil {
		t.Skip("no PostgreSQL 15 server on this machine (Debian's postgresql-15) to build the example's image from")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bb, err := staticBusybox(e.tmp)
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := filepath.Join(t.TempDir(), "context")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "examples", "postgres", "build-context.sh"), ctxDir)
	cmd.Env = append(os.Environ(), "BUSYBOX="+bb)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build-context.sh: %v\n%s", err, out)
	}
	if err := dockerBuild(imagePostgres, filepath.Join(root, "examples", "postgres", "Dockerfile"), ctxDir, "--build-arg", "CCCTL_IMAGE="+imageCcctl); err != nil {
		t.Fatal(err)
	}
}

// psql runs one query in a member's container and returns its unaligned
// output.
func psql(container, query string) (string, error) {
	return dockerTimed(30*time.Second, "exec", container, "psql", "-h", "/run/postgresql", "-U", "postgres", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", query)
}

// TestPostgresExample runs examples/postgres: three members, one primary
// and two streaming replicas; a row written on the primary reaches the
// replicas; the primary is killed; a replica is promoted and has the row and
// accepts writes, and the other replica follows it.
func TestPostgresExample(t *testing.T) {
	d := newDrill(t, "postgres", "pg1", "pg2", "pg3")
	buildPostgresImage(t, d.env)
	for _, m := range d.members {
		args := []string{"create", "--name", d.container(m), "--hostname", m,
			"--label", label + "=1", "--network", d.env.network}
		for _, kv := range d.envVars(m, ttl) {
			if !strings.HasPrefix(kv, "PORTS_WHEN_ACTIVE=") {
				args = append(args, "-e", kv)
			}
		}
		mustDocker(t, append(args, imagePostgres)...)
	}
	t0 := time.Now()
	d.start()

	// One primary, two replicas streaming from it.
	primary := ""
	waitUntil(t, "one primary and two streaming replicas", 120*time.Second, func() bool {
		primary = ""
		streaming := 0
		for _, m := range d.members {
			rec, err := psql(d.container(m), "SELECT pg_is_in_recovery()")
			switch {
			case err != nil:
				return false
			case rec == "f":
				primary = m
			case rec == "t":
				if st, _ := psql(d.container(m), "SELECT status FROM pg_stat_wal_receiver"); st == "streaming" {
					streaming++
				}
			}
		}
		return primary != "" && streaming == 2
	})
	t.Logf("postgres: %s is primary, 2 replicas streaming, %v after docker start", primary, time.Since(t0).Round(time.Millisecond))

	if _, err := psql(d.container(primary), "CREATE TABLE drill (v text); INSERT INTO drill VALUES ('written on the first primary')"); err != nil {
		t.Fatal(err)
	}
	var replicas []string
	for _, m := range d.members {
		if m != primary {
			replicas = append(replicas, m)
		}
	}
	waitUntil(t, "the row on both replicas", 30*time.Second, func() bool {
		for _, m := range replicas {
			if v, _ := psql(d.container(m), "SELECT v FROM drill"); v != "written on the first primary" {
				return false
			}
		}
		return true
	})

	// A backup by hand, as the hourly job makes them.
	if out, err := dockerTimed(60*time.Second, "exec", d.container(primary), "ccctl", "backup", "run", "pg_dumpall", "--ext", ".sql", "--", "pg_dumpall", "-h", "/run/postgresql"); err != nil {
		t.Errorf("ccctl backup run on the primary: %v\n%s", err, out)
	} else if list, err := docker("exec", d.container(primary), "ccctl", "backup", "list", "pg_dumpall"); err != nil || !strings.Contains(list, "pg_dumpall-") {
		t.Errorf("ccctl backup list: got %q, %v; want one pg_dumpall backup", list, err)
	}

	t1 := time.Now()
	mustDocker(t, "kill", d.container(primary))
	promoted := ""
	waitUntil(t, "a replica promoted", ttl+60*time.Second, func() bool {
		for _, m := range replicas {
			if rec, err := psql(d.container(m), "SELECT pg_is_in_recovery()"); err == nil && rec == "f" {
				promoted = m
				return true
			}
		}
		return false
	})
	t.Logf("postgres: %s killed; %s promoted and writable %v later", primary, promoted, time.Since(t1).Round(time.Millisecond))
	if v, err := psql(d.container(promoted), "SELECT v FROM drill"); err != nil || v != "written on the first primary" {
		t.Fatalf("row on the promoted replica %s: got %q, %v; want %q", promoted, v, err, "written on the first primary")
	}
	if _, err := psql(d.container(promoted), "INSERT INTO drill VALUES ('written on the second primary')"); err != nil {
		t.Fatalf("write on the promoted replica: %v", err)
	}
	other := replicas[0]
	if other == promoted {
		other = replicas[1]
	}
	waitUntil(t, "the other replica following the new primary", 60*time.Second, func() bool {
		v, _ := psql(d.container(other), "SELECT count(*) FROM drill")
		return v == "2"
	})
	t.Logf("postgres: %s follows %s, %v after the kill", other, promoted, time.Since(t1).Round(time.Millisecond))
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
