package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBackupRunListAndFailure(t *testing.T) {
	dest := t.TempDir()
	env := []string{"BACKUP_DESTINATION_FOLDER=" + dest}
	r := ccctl(t, 30*time.Second, env, "backup", "run", "db", "--ext", ".sql", "--", "sh", "-c", "echo data")
	if r.code != 0 {
		t.Fatalf("backup run: got %d %q; want 0", r.code, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dest, "db", "db-*Z.sql"))
	if len(files) != 1 {
		t.Fatalf("backups: got %v; want one db-<time>Z.sql", files)
	}
	if b, _ := os.ReadFile(files[0]); string(b) != "data\n" {
		t.Errorf("backup content: got %q; want %q", b, "data\n")
	}
	if !strings.Contains(r.stdout, files[0]) {
		t.Errorf("stdout: got %q; want the backup's path", r.stdout)
	}

	r = ccctl(t, 30*time.Second, env, "backup", "run", "db", "--ext", ".sql", "--", "sh", "-c", "echo partial; exit 1")
	if r.code != 1 {
		t.Errorf("failed backup: got exit %d; want 1 (stderr %q)", r.code, r.stderr)
	}
	r = ccctl(t, 30*time.Second, env, "backup", "list", "db")
	if r.code != 0 || r.stdout != filepath.Base(files[0])+"\n" {
		t.Errorf("list after a failed run: got %d %q; want only %s", r.code, r.stdout, filepath.Base(files[0]))
	}
	r = ccctl(t, 30*time.Second, env, "backup", "run", "db")
	if r.code != 2 {
		t.Errorf("backup run without a command: got %d; want 2", r.code)
	}
}

func TestBackupPruneDryRunJSON(t *testing.T) {
	dest := t.TempDir()
	dir := filepath.Join(dest, "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Four backups on one day, hourly apart, and one the next day.
	for _, stamp := range []string{"20240101T100000Z", "20240101T110000Z", "20240101T120000Z", "20240101T130000Z", "20240102T090000Z"} {
		if err := os.WriteFile(filepath.Join(dir, "db-"+stamp+".sql"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"BACKUP_DESTINATION_FOLDER=" + dest, "BACKUP_HOURS_TO_KEEP=0", "BACKUP_DAYS_TO_KEEP=2", "BACKUP_WEEKS_TO_KEEP=0", "BACKUP_MONTHS_TO_KEEP=0"}
	r := ccctl(t, 30*time.Second, env, "backup", "prune", "db", "--dry-run", "-o", "json")
	var plan struct {
		Keep []struct {
			File    string   `json:"file"`
			Reasons []string `json:"reasons"`
		} `json:"keep"`
		Remove []struct {
			File string `json:"file"`
		} `json:"remove"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("prune -o json: %v in %q (stderr %q)", err, r.stdout, r.stderr)
	}
	if len(plan.Keep) != 2 || plan.Keep[0].File != "db-20240102T090000Z.sql" || plan.Keep[1].File != "db-20240101T130000Z.sql" {
		t.Errorf("keep: got %+v; want the newest of each of the two days", plan.Keep)
	}
	if len(plan.Remove) != 3 {
		t.Errorf("remove: got %+v; want 3", plan.Remove)
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "db-*")); len(n) != 5 {
		t.Errorf("after --dry-run: got %d files; want all 5", len(n))
	}

	r = ccctl(t, 30*time.Second, env, "backup", "prune", "db", "--dry-run", "--now", "2024-01-01T23:00:00Z", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("prune --now: %v in %q", err, r.stdout)
	}
	// Only Jan 1 exists then: its newest is kept, and the daily bucket,
	// with a count left, keeps the oldest too (restic's semantics).
	if len(plan.Keep) != 2 || plan.Keep[0].File != "db-20240101T130000Z.sql" || plan.Keep[1].File != "db-20240101T100000Z.sql" {
		t.Errorf("--now 2024-01-01T23:00:00Z keep: got %+v; want the newest and the oldest of Jan 1", plan.Keep)
	}

	r = ccctl(t, 30*time.Second, env, "backup", "prune", "db")
	if r.code != 0 || strings.Count(r.stdout, "remove") != 3 {
		t.Errorf("prune: got %d %q; want 0 and 3 removals", r.code, r.stdout)
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "db-*")); len(n) != 2 {
		t.Errorf("after prune: got %v; want 2 files", n)
	}
	if r := ccctl(t, 30*time.Second, env, "backup", "prune", "db", "--now", "yesterday", "--dry-run"); r.code != 2 {
		t.Errorf("--now yesterday: got %d; want 2", r.code)
	}
}

// TestBackupRunFullDisk is issue 22's case through the CLI: on a 1 MiB
// tmpfs, a command that writes 2 MB and exits 0 must fail (exit 1) with one
// line naming the cause, and keep every earlier backup although the policy
// would keep only the newest. It needs the right to mount (root).
func TestBackupRunFullDisk(t *testing.T) {
	dest := t.TempDir()
	if err := syscall.Mount("tmpfs", dest, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a 1m tmpfs on %s (needs root or CAP_SYS_ADMIN): %v", dest, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dest, 0); err != nil {
			t.Errorf("unmount %s: %v", dest, err)
		}
	})
	dir := filepath.Join(dest, "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	earlier := []string{"db-20240101T100000Z.sql", "db-20240102T100000Z.sql"}
	for _, f := range earlier {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("good dump\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"BACKUP_DESTINATION_FOLDER=" + dest, "CCCTL_BACKUP_LAST_TO_KEEP=1", "BACKUP_HOURS_TO_KEEP=0",
		"BACKUP_DAYS_TO_KEEP=0", "BACKUP_WEEKS_TO_KEEP=0", "BACKUP_MONTHS_TO_KEEP=0", "CCCTL_LOG_FORMAT=json"}
	r := ccctl(t, 30*time.Second, env, "backup", "run", "db", "--ext", ".sql", "--", "sh", "-c", "head -c 2000000 /dev/zero; exit 0")
	if r.code != 1 {
		t.Fatalf("backup run on a full disk: got exit %d, stdout %q, stderr %q; want 1", r.code, r.stdout, r.stderr)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if !strings.HasPrefix(l, "{") {
			if last != "" {
				t.Errorf("stderr: second error line %q; want one", l)
			}
			last = l
		}
	}
	if !strings.HasPrefix(last, "ccctl: backup db: write ") || !strings.Contains(last, "no space left on device (0 B of 1.0 MiB free on "+dir+")") {
		t.Errorf("error line %q; want \"ccctl: backup db: write ...: no space left on device (0 B of 1.0 MiB free on %s)\"", last, dir)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q; want no backup printed", r.stdout)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := append([]string{".ccctl.lock"}, earlier...); !slices.Equal(names, want) {
		t.Errorf("folder after the failure: %v; want %v (the earlier backups, nothing partial)", names, want)
	}
}
