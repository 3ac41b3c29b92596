package retention_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/fslock"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
	"github.com/ccctl/ccctl/retention"
)

// TestMain lets a test run RunBackup in a separate process, to kill it.
func TestMain(m *testing.M) {
	if os.Getenv("RETENTION_HELPER") == "run" {
		now, _ := time.Parse(time.RFC3339, os.Getenv("RETENTION_NOW"))
		policy := retention.DefaultPolicy()
		if os.Getenv("RETENTION_LAST") == "1" {
			policy = retention.Policy{Last: 1}
		}
		if v := os.Getenv("RETENTION_FSIZE"); v != "" {
			// A limit on the size of the files this process writes: its
			// writes past it fail with EFBIG (Go ignores SIGXFSZ).
			n, _ := strconv.ParseUint(v, 10, 64)
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
				fmt.Println("setrlimit:", err)
				os.Exit(2)
			}
		}
		_, err := retention.RunBackup(context.Background(), retention.BackupOptions{
			Destination: os.Getenv("RETENTION_DEST"),
			Name:        "db",
			Ext:         ".sql",
			Command:     []string{"/bin/sh", "-c", os.Getenv("RETENTION_SCRIPT")},
			Policy:      policy,
			Now:         func() time.Time { return now },
			Logger:      quietLogger(),
		})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var day0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// opts returns options for a backup of "db" at day0+days, by script.
func opts(dest string, days int, script string) retention.BackupOptions {
	now := day0.AddDate(0, 0, days)
	return retention.BackupOptions{
		Destination: dest,
		Name:        "db",
		Ext:         ".sql",
		Command:     []string{"/bin/sh", "-c", script},
		Policy:      retention.DefaultPolicy(),
		Timeout:     30 * time.Second,
		Grace:       time.Second,
		Now:         func() time.Time { return now },
		Logger:      quietLogger(),
	}
}

func run(t *testing.T, o retention.BackupOptions) retention.Result {
	t.Helper()
	res, err := retention.RunBackup(context.Background(), o)
	if err != nil {
		t.Fatalf("RunBackup: %v", err)
	}
	return res
}

// snapshot maps every path under dir (except the lock file) to its kind,
// permissions and, for files, the SHA-256 of its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || rel == fslock.FileName {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			snap[rel] = fmt.Sprintf("dir %v", fi.Mode().Perm())
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		snap[rel] = fmt.Sprintf("file %v %s", fi.Mode().Perm(), hex.EncodeToString(sum[:]))
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return snap
}

// earlier makes two backups of "db" (a file and a directory) and returns
// the folder and its snapshot.
func earlier(t *testing.T, dest string) (string, map[string]string) {
	t.Helper()
	run(t, opts(dest, 0, `printf 'first dump\n'; head -c 10000 /dev/urandom`))
	run(t, opts(dest, 1, `mkdir "$CC_BACKUP_FILE" && echo one > "$CC_BACKUP_FILE/a" && mkdir "$CC_BACKUP_FILE/sub" && head -c 5000 /dev/urandom > "$CC_BACKUP_FILE/sub/b"`))
	dir := retention.Folder(dest, "db")
	snap := snapshot(t, dir)
	if len(snap) != 5 {
		t.Fatalf("earlier backups: %v; want 2 backups (5 entries)", slices.Sorted(maps.Keys(snap)))
	}
	return dir, snap
}

// checkUntouched asserts that every earlier backup is byte-identical, that
// nothing else matching the backup pattern appeared, and that the folder's
// lock is free.
func checkUntouched(t *testing.T, dir string, before map[string]string, allowLeftovers bool) {
	t.Helper()
	after := snapshot(t, dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("earlier backup entry %s: got %q; want %q (unchanged)", p, after[p], v)
		}
	}
	for p := range after {
		if _, ok := before[p]; ok {
			continue
		}
		top := strings.Split(p, string(filepath.Separator))[0]
		if allowLeftovers && strings.HasPrefix(top, ".db-") && strings.Contains(top, ".tmp-") {
			continue
		}
		t.Errorf("new entry %s after a failed backup; want none", p)
	}
	bs, err := retention.List(filepath.Dir(dir), "db")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 {
		t.Errorf("List after the failure: %d backups; want the 2 earlier ones", len(bs))
	}
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "check"})
	if err != nil {
		t.Errorf("folder lock after the failure: %v; want it free", err)
		return
	}
	l.Unlock()
}

func TestRunBackupStdout(t *testing.T) {
	dest := t.TempDir()
	res := run(t, opts(dest, 0, `printf 'dump-1\n'; echo "name=$CC_BACKUP_NAME" >&2`))
	if got, want := res.Backup.File, "db-20240301T100000Z.sql"; got != want {
		t.Errorf("backup file = %q; want %q", got, want)
	}
	b, err := os.ReadFile(res.Backup.Path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "dump-1\n" || res.Size != 7 || res.ExitCode != 0 {
		t.Errorf("content %q, size %d, exit %d; want \"dump-1\\n\", 7, 0", b, res.Size, res.ExitCode)
	}
	fi, _ := os.Stat(res.Backup.Path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(retention.Folder(dest, "db"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{fslock.FileName, "db-20240301T100000Z.sql"}; !slices.Equal(names, want) {
		t.Errorf("folder holds %v; want %v", names, want)
	}
	if len(res.Plan.Keep) != 1 || len(res.Plan.Remove) != 0 {
		t.Errorf("plan %+v; want the one backup kept", res.Plan)
	}
}

func TestRunBackupFileAndDirectoryModes(t *testing.T) {
	dest := t.TempDir()
	res := run(t, opts(dest, 0, `echo progress on stdout; printf 'from file' > "$CC_BACKUP_FILE"`))
	if b, _ := os.ReadFile(res.Backup.Path); string(b) != "from file" || res.Backup.IsDir {
		t.Errorf("file mode: content %q, dir %v; want \"from file\", a file", b, res.Backup.IsDir)
	}
	res = run(t, opts(dest, 1, `mkdir -p "$CC_BACKUP_FILE/x" && printf abc > "$CC_BACKUP_FILE/x/y" && printf de > "$CC_BACKUP_FILE/z"`))
	if !res.Backup.IsDir || res.Size != 5 {
		t.Errorf("directory mode: dir %v, size %d; want a directory of 5 bytes", res.Backup.IsDir, res.Size)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Backup.Path, "x", "y")); string(b) != "abc" {
		t.Errorf("x/y = %q; want abc", b)
	}
	bs, err := retention.List(dest, "db")
	if err != nil || len(bs) != 2 || !bs[0].IsDir || bs[1].IsDir {
		t.Errorf("List: %+v, %v; want the directory then the file", bs, err)
	}
}

func TestRunBackupEmptyOutputIsNotABackup(t *testing.T) {
	dest := t.TempDir()
	_, err := retention.RunBackup(context.Background(), opts(dest, 0, `true`))
	if !errors.Is(err, retention.ErrEmpty) {
		t.Fatalf("got %v; want ErrEmpty", err)
	}
	if bs, _ := retention.List(dest, "db"); len(bs) != 0 {
		t.Errorf("backups after an empty run: %v; want none", bs)
	}
}

func TestRunBackupSameSecondDoesNotReplace(t *testing.T) {
	dest := t.TempDir()
	first := run(t, opts(dest, 0, `echo first`))
	_, err := retention.RunBackup(context.Background(), opts(dest, 0, `echo second`))
	if !errors.Is(err, retention.ErrExists) {
		t.Fatalf("second run in the same second: got %v; want ErrExists", err)
	}
	if b, _ := os.ReadFile(first.Backup.Path); string(b) != "first\n" {
		t.Errorf("first backup now holds %q; want \"first\\n\"", b)
	}
}

func TestRunBackupEnvAndStderr(t *testing.T) {
	dest := t.TempDir()
	o := opts(dest, 0, `echo "$EXTRA $CC_BACKUP_NAME"; echo to-stderr >&2`)
	o.Env = []string{"EXTRA=hello"}
	var stderr strings.Builder
	o.Stderr = &stderr
	res := run(t, o)
	if b, _ := os.ReadFile(res.Backup.Path); string(b) != "hello db\n" {
		t.Errorf("content %q; want \"hello db\\n\"", b)
	}
	if got := stderr.String(); got != "to-stderr\n" {
		t.Errorf("stderr %q; want \"to-stderr\\n\"", got)
	}
}

// TestRunBackupPrunesOnlyBackups runs daily backups with --keep-daily 2
// among files that do not match the pattern: only backups are removed.
func TestRunBackupPrunesOnlyBackups(t *testing.T) {
	dest := t.TempDir()
	dir := retention.Folder(dest, "db")
	if err := os.MkdirAll(filepath.Join(dir, "db-20200101T000000Z.sql.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	foreign := []string{"notes.txt", "db-latest.sql", "db-2020.sql", "other-20200101T000000Z.sql",
		".db-20200101T000000Z.sql", "db-20201301T000000Z.sql", "db-20200101T000000Z.sql~"}
	for _, f := range foreign {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var last retention.Result
	for d := 0; d < 4; d++ {
		o := opts(dest, d, fmt.Sprintf("echo day %d", d))
		o.Policy = retention.Policy{Daily: 2}
		last = run(t, o)
	}
	bs, err := retention.List(dest, "db")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, b.File)
	}
	want := []string{"db-20240304T100000Z.sql", "db-20240303T100000Z.sql"}
	if !slices.Equal(got, want) {
		t.Errorf("backups after pruning: %v; want %v", got, want)
	}
	for _, f := range foreign {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(b) != "keep me" {
			t.Errorf("foreign file %s: %q, %v; want it untouched", f, b, err)
		}
	}
	if len(last.Plan.Remove) != 1 || last.Plan.Remove[0].File != "db-20240302T100000Z.sql" {
		t.Errorf("last run removed %v; want day 1's backup", last.Plan.Remove)
	}
	// The directory matches the pattern (ext ".sql.d"): it is a backup, and
	// an old one.
	if _, err := os.Stat(filepath.Join(dir, "db-20200101T000000Z.sql.d")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old directory backup: %v; want it removed", err)
	}
}

func TestRunBackupCleansLeftovers(t *testing.T) {
	dest := t.TempDir()
	dir := retention.Folder(dest, "db")
	if err := os.MkdirAll(filepath.Join(dir, ".db-20240101T000000Z.tmp-4242.file", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".db-20240101T000000Z.tmp-4242", ".db-notes.tmp", ".other-20240101T000000Z.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := run(t, opts(dest, 0, `echo ok`))
	want := []string{".db-20240101T000000Z.tmp-4242", ".db-20240101T000000Z.tmp-4242.file"}
	if !slices.Equal(res.Leftovers, want) {
		t.Errorf("leftovers removed %v; want %v", res.Leftovers, want)
	}
	for _, f := range []string{".db-notes.tmp", ".other-20240101T000000Z.tmp-1"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v; want it left alone", f, err)
		}
	}
}

func TestRunBackupWaitsForTheFolderLock(t *testing.T) {
	dest := t.TempDir()
	dir := retention.Folder(dest, "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := fslock.TryLock(dir, fslock.Owner{ID: "other"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = retention.RunBackup(ctx, opts(dest, 0, `echo x`))
	if !errors.Is(err, fslock.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunBackup while the folder is locked: got %v; want ErrLocked and DeadlineExceeded", err)
	}
	if bs, _ := retention.List(dest, "db"); len(bs) != 0 {
		t.Errorf("backups: %v; want none", bs)
	}
}

// TestFaults makes earlier backups, then a run that fails in one way; every
// earlier backup must be byte-identical afterwards, no new name may match,
// and the next good run must succeed.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		timeout time.Duration
		want    error
		code    int
	}{
		{"command fails", `printf 'partial output'; echo 'pg_dump: connection refused' >&2; exit 3`, 0, retention.ErrCommandFailed, 3},
		{"command killed mid-write", `head -c 100000 /dev/zero; kill -KILL $$`, 0, retention.ErrCommandFailed, 128 + 9},
		{"file hits the file size limit", `ulimit -f 16; head -c 1000000 /dev/zero > "$CC_BACKUP_FILE"`, 0, retention.ErrCommandFailed, -2},
		{"timeout, exit 0 on SIGTERM", `head -c 1000 /dev/zero; trap 'exit 0' TERM; sleep 30 & wait`, 300 * time.Millisecond, context.DeadlineExceeded, 0},
		{"timeout, SIGTERM ignored", `head -c 1000 /dev/zero; trap '' TERM; sleep 30`, 300 * time.Millisecond, context.DeadlineExceeded, 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			dir, before := earlier(t, dest)
			o := opts(dest, 2, tc.script)
			o.Policy = retention.Policy{Last: 1} // would remove both earlier backups if pruning ran
			if tc.timeout > 0 {
				o.Timeout = tc.timeout
				o.Grace = 200 * time.Millisecond
			}
			res, err := retention.RunBackup(context.Background(), o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("RunBackup: got %v; want %v", err, tc.want)
			}
			switch {
			case tc.code == -2: // SIGXFSZ, or exit 1 where the signal is ignored
				if res.ExitCode != 128+int(syscall.SIGXFSZ) && res.ExitCode != 1 {
					t.Errorf("exit code %d; want SIGXFSZ (%d) or 1", res.ExitCode, 128+int(syscall.SIGXFSZ))
				}
			case res.ExitCode != tc.code:
				t.Errorf("exit code %d; want %d", res.ExitCode, tc.code)
			}
			if tc.code == 3 && !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("error %q; want the command's stderr in it", err)
			}
			checkUntouched(t, dir, before, false)

			o = opts(dest, 3, `echo good`)
			o.Policy = retention.Policy{Daily: 10}
			if _, err := retention.RunBackup(context.Background(), o); err != nil {
				t.Fatalf("next run: %v", err)
			}
			checkUntouchedExcept(t, dir, before, "db-20240304T100000Z.sql")
		})
	}
}

// checkUntouchedExcept asserts that the earlier backups are byte-identical
// and that the only other entries are the named new backups.
func checkUntouchedExcept(t *testing.T, dir string, before map[string]string, added ...string) {
	t.Helper()
	after := snapshot(t, dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("earlier backup entry %s: got %q; want %q (unchanged)", p, after[p], v)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !slices.Contains(added, p) {
			t.Errorf("unexpected entry %s; want only %v added", p, added)
		}
	}
}

func TestFaultContextCancelled(t *testing.T) {
	dest := t.TempDir()
	dir, before := earlier(t, dest)
	ctx, cancel := context.WithCancel(context.Background())
	marker := filepath.Join(t.TempDir(), "started")
	o := opts(dest, 2, `head -c 1000 /dev/zero; touch `+marker+`; sleep 30`)
	done := make(chan error, 1)
	go func() {
		_, err := retention.RunBackup(ctx, o)
		done <- err
	}()
	testutil.WaitFile(t, marker, 10*time.Second)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("RunBackup: got %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunBackup did not return within 10s of the cancellation")
	}
	checkUntouched(t, dir, before, false)
}

// mountTmpfs mounts a tmpfs of the given size (e.g. "1m") on a new
// folder and returns it. It needs the right to mount (root); elsewhere the
// test is skipped.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a %s tmpfs on %s (needs root or CAP_SYS_ADMIN): %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestFaultFullDisk runs commands that fill a 256 KiB tmpfs and notice it
// (they exit 1): nothing is stored and nothing is pruned. It needs the right
// to mount (root); elsewhere it is skipped, and TestWriteFailsOverFileSizeLimit
// stands for a failed write.
func TestFaultFullDisk(t *testing.T) {
	dest := mountTmpfs(t, "256k")
	dir, before := earlier(t, dest)
	for _, tc := range []struct {
		script string
		want   error
	}{
		{`head -c 1000000 /dev/zero`, retention.ErrNoSpace},
		{`head -c 1000000 /dev/zero > "$CC_BACKUP_FILE"`, retention.ErrCommandFailed},
		{`mkdir "$CC_BACKUP_FILE" && head -c 1000000 /dev/zero > "$CC_BACKUP_FILE/big"`, retention.ErrCommandFailed},
	} {
		o := opts(dest, 2, tc.script)
		o.Policy = retention.Policy{Last: 1}
		_, err := retention.RunBackup(context.Background(), o)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s on a full disk: got %v; want %v", tc.script, err, tc.want)
		}
		checkUntouched(t, dir, before, false)
	}
	o := opts(dest, 3, `echo fits`)
	o.Policy = retention.Policy{Daily: 10}
	if _, err := retention.RunBackup(context.Background(), o); err != nil {
		t.Fatalf("next run after the full disk: %v", err)
	}
	checkUntouchedExcept(t, dir, before, "db-20240304T100000Z.sql")
}

// TestFullDiskCommandExitsZero is the case of a command that ignores its
// failed writes: on a 1 MiB tmpfs it writes 2 MB and exits 0. The backup
// must fail with ENOSPC named, every earlier backup must stay (the policy
// would keep only the newest), and nothing partial may be left.
func TestFullDiskCommandExitsZero(t *testing.T) {
	dest := mountTmpfs(t, "1m")
	dir, before := earlier(t, dest)
	for _, tc := range []struct {
		name, script string
		enospc       bool // ccctl's own write failed
	}{
		{"stdout", `head -c 2000000 /dev/zero; exit 0`, true},
		{"stdout, SIGPIPE ignored", `trap '' PIPE; head -c 2000000 /dev/zero; head -c 1000 /dev/zero; exit 0`, true},
		{"stdout in small writes", `i=0; while [ $i -lt 600 ]; do head -c 4000 /dev/zero || true; i=$((i+1)); done; exit 0`, true},
		{"$CC_BACKUP_FILE", `head -c 2000000 /dev/zero > "$CC_BACKUP_FILE"; exit 0`, false},
		{"$CC_BACKUP_FILE directory", `mkdir "$CC_BACKUP_FILE"; head -c 2000000 /dev/zero > "$CC_BACKUP_FILE/big"; echo small > "$CC_BACKUP_FILE/small"; exit 0`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(dest, 2, tc.script)
			o.Policy = retention.Policy{Last: 1} // would remove both earlier backups if pruning ran
			res, err := retention.RunBackup(context.Background(), o)
			if !errors.Is(err, retention.ErrNoSpace) {
				t.Fatalf("RunBackup: got %v; want ErrNoSpace", err)
			}
			if tc.enospc && !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("error %q; want it to wrap ENOSPC", err)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "backup db: ") || !strings.Contains(msg, "free on "+dir) {
				t.Errorf("error %q; want one line \"backup db: ...\" naming the free space on %s", msg, dir)
			}
			if tc.enospc && !strings.Contains(msg, "no space left on device") {
				t.Errorf("error %q; want \"no space left on device\" in it", msg)
			}
			if res.Backup.File != "" || len(res.Plan.Remove) != 0 {
				t.Errorf("result %+v; want no backup and no removal", res)
			}
			checkUntouched(t, dir, before, false)
		})
	}
	o := opts(dest, 3, `echo fits`)
	o.Policy = retention.Policy{Daily: 10}
	if _, err := retention.RunBackup(context.Background(), o); err != nil {
		t.Fatalf("next run after the full disk: %v", err)
	}
	o = opts(dest, 4, `head -c 100000 /dev/zero > "$CC_BACKUP_FILE"`)
	o.Policy = retention.Policy{Daily: 10}
	if _, err := retention.RunBackup(context.Background(), o); err != nil {
		t.Fatalf("a $CC_BACKUP_FILE run that fits: %v", err)
	}
	checkUntouchedExcept(t, dir, before, "db-20240304T100000Z.sql", "db-20240305T100000Z.sql")
}

// TestWriteFailsOverFileSizeLimit makes ccctl's own write of the backup
// fail without root: RunBackup runs in a process whose file size limit is
// 64 KiB (the command's writes go to a pipe, which the limit does not
// bound). The command exits 0; the backup must fail with EFBIG and prune
// nothing.
func TestWriteFailsOverFileSizeLimit(t *testing.T) {
	dest := t.TempDir()
	dir, before := earlier(t, dest)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RETENTION_HELPER=run", "RETENTION_DEST="+dest, "RETENTION_LAST=1",
		"RETENTION_FSIZE=65536", "RETENTION_NOW="+day0.AddDate(0, 0, 2).Format(time.RFC3339),
		"RETENTION_SCRIPT=head -c 1000000 /dev/zero; exit 0")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("RunBackup over the file size limit: %v, %q; want exit 1", err, out)
	}
	if !strings.Contains(string(out), "file too large") {
		t.Errorf("output %q; want the write's EFBIG (file too large)", out)
	}
	checkUntouched(t, dir, before, false)
}

// TestStdoutHeldOpenAfterExit: a process outside the command's group keeps
// its standard output open after the command exited 0. RunBackup must not
// wait for it beyond a bound, and must not store what it cannot know is
// complete.
func TestStdoutHeldOpenAfterExit(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	dest := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	o := opts(dest, 0, `echo start; setsid sh -c 'echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 30' 2>/dev/null & while [ ! -e `+pidFile+` ]; do sleep 0.01; done; exit 0`)
	start := time.Now()
	_, err := retention.RunBackup(context.Background(), o)
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "still open") {
		t.Fatalf("RunBackup: got %v; want the output still open", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("RunBackup returned after %v; want within the drain bound", d)
	}
	if bs, _ := retention.List(dest, "db"); len(bs) != 0 {
		t.Errorf("backups: %v; want none", bs)
	}
}

// TestStdoutCopiedExactly stores 8 MB of random data written in odd-sized
// pieces and compares it with what the command wrote.
func TestStdoutCopiedExactly(t *testing.T) {
	dest := t.TempDir()
	ref := filepath.Join(t.TempDir(), "ref")
	res := run(t, opts(dest, 0, `head -c 8000000 /dev/urandom | tee `+ref+` | dd bs=12345 status=none`))
	got, err := os.ReadFile(res.Backup.Path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 8000000 || sha256.Sum256(got) != sha256.Sum256(want) || res.Size != int64(len(want)) {
		t.Errorf("backup of %d bytes (size %d); want the %d bytes written, identical", len(got), res.Size, len(want))
	}
}

// TestFaultRunnerKilled runs RunBackup in another process and SIGKILLs it
// while its command is writing. Earlier backups stay byte-identical, only
// a temporary name is left, the lock is free, and the next run removes the
// leftover and succeeds.
func TestFaultRunnerKilled(t *testing.T) {
	dest := t.TempDir()
	dir, before := earlier(t, dest)
	pidFile := filepath.Join(t.TempDir(), "cmd.pid")
	script := fmt.Sprintf(`head -c 50000 /dev/zero; echo $$ > %[1]s.tmp; mv %[1]s.tmp %[1]s; exec sleep 60`, pidFile)
	runner := exec.Command(os.Args[0], "-test.run=^$")
	runner.Env = append(os.Environ(), "RETENTION_HELPER=run", "RETENTION_DEST="+dest,
		"RETENTION_NOW="+day0.AddDate(0, 0, 2).Format(time.RFC3339), "RETENTION_SCRIPT="+script)
	runner.Stdout, runner.Stderr = os.Stderr, os.Stderr
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		runner.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		runner.Process.Kill()
		<-exited
	})

	testutil.WaitFile(t, pidFile, 10*time.Second)
	var cmdPid int
	if b, err := os.ReadFile(pidFile); err != nil {
		t.Fatal(err)
	} else if _, err := fmt.Sscan(string(b), &cmdPid); err != nil {
		t.Fatalf("command pid %q: %v", b, err)
	}
	if err := runner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("runner did not exit within 10s of SIGKILL")
	}
	// The command, in its own process group, outlives its runner.
	syscall.Kill(-cmdPid, syscall.SIGKILL)

	leftover := ".db-20240303T100000Z.tmp-" + fmt.Sprint(runner.Process.Pid)
	if fi, err := os.Stat(filepath.Join(dir, leftover)); err != nil || fi.Size() != 50000 {
		t.Errorf("leftover %s: %v; want the partial 50000 bytes there", leftover, err)
	}
	checkUntouched(t, dir, before, true)

	o := opts(dest, 3, `echo next`)
	o.Policy = retention.Policy{Daily: 10}
	res := run(t, o)
	if !slices.Contains(res.Leftovers, leftover) {
		t.Errorf("next run removed leftovers %v; want %s among them", res.Leftovers, leftover)
	}
	checkUntouchedExcept(t, dir, before, "db-20240304T100000Z.sql")
}

func TestPrune(t *testing.T) {
	dest := t.TempDir()
	dir := retention.Folder(dest, "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := 0; d < 5; d++ {
		f := retention.FileName("db", day0.AddDate(0, 0, d), ".sql")
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	po := retention.PruneOptions{Destination: dest, Name: "db", Policy: retention.Policy{Last: 2}, DryRun: true, Logger: quietLogger()}
	plan, err := retention.Prune(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Keep) != 2 || len(plan.Remove) != 3 {
		t.Fatalf("dry-run plan keeps %d, removes %d; want 2, 3", len(plan.Keep), len(plan.Remove))
	}
	if after := snapshot(t, dir); !maps.Equal(after, before) {
		t.Errorf("dry run changed the folder: %v; want %v", after, before)
	}
	// A real prune needs the folder's lock; a dry run does not.
	held, err := fslock.TryLock(dir, fslock.Owner{ID: "backup-in-progress"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	po.DryRun = false
	_, err = retention.Prune(ctx, po)
	cancel()
	if !errors.Is(err, fslock.ErrLocked) {
		t.Errorf("Prune while the folder is locked: got %v; want ErrLocked", err)
	}
	po.DryRun = true
	if _, err := retention.Prune(context.Background(), po); err != nil {
		t.Errorf("dry-run Prune while the folder is locked: %v; want the plan", err)
	}
	held.Unlock()
	if after := snapshot(t, dir); !maps.Equal(after, before) {
		t.Errorf("folder changed while locked: %v; want %v", after, before)
	}

	po.DryRun = false
	real, err := retention.Prune(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(real) != fmt.Sprint(plan) {
		t.Errorf("prune did %v; want what the dry run showed, %v", real, plan)
	}
	bs, _ := retention.List(dest, "db")
	if len(bs) != 2 || bs[0].File != "db-20240305T100000Z.sql" {
		t.Errorf("backups after prune: %v; want the 2 newest", bs)
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("README: %v; want it kept", err)
	}
	again, err := retention.Prune(context.Background(), po)
	if err != nil || len(again.Remove) != 0 {
		t.Errorf("second prune: %v, %v; want nothing removed", again.Remove, err)
	}
	if _, err := retention.Prune(context.Background(), retention.PruneOptions{Destination: dest, Name: "../etc", Policy: po.Policy}); !errors.Is(err, retention.ErrInvalidName) {
		t.Errorf("prune of ../etc: got %v; want ErrInvalidName", err)
	}
}

func TestListAndNames(t *testing.T) {
	dest := t.TempDir()
	if _, err := retention.List(dest, "db"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing folder: got %v; want fs.ErrNotExist", err)
	}
	dir := retention.Folder(dest, "db")
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{"db-20240301T100000Z.sql", "db-20240302T100000Z", "db-20240301T100000Z.tar.gz",
		"db-20240230T100000Z.sql", "db-20240301T100000Z.sql.tmp-1", ".db-20240301T100000Z.tmp-1", "dbx-20240301T100000Z"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "db-20240303T100000Z"))
	bs, err := retention.List(dest, "db")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, b.File+"|"+b.Ext)
	}
	// db-20240301T100000Z.sql.tmp-1 matches with ext ".sql.tmp-1": a
	// run's own temporary names start with a dot and never do.
	want := []string{"db-20240302T100000Z|", "db-20240301T100000Z.tar.gz|.tar.gz", "db-20240301T100000Z.sql.tmp-1|.sql.tmp-1", "db-20240301T100000Z.sql|.sql"}
	if !slices.Equal(got, want) {
		t.Errorf("List = %v; want %v", got, want)
	}

	for _, tc := range []struct {
		name string
		ok   bool
	}{{"db", true}, {"my_db-2.main", true}, {"", false}, {".db", false}, {"../x", false}, {"a/b", false}, {"-x", false}} {
		if err := retention.ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		ext string
		ok  bool
	}{{"", true}, {".sql", true}, {".sql.gz", true}, {".tar.zst", true}, {"sql", false}, {".", false}, {"./x", false}, {"..", false}, {".a..b", false}} {
		if err := retention.ValidateExt(tc.ext); (err == nil) != tc.ok {
			t.Errorf("ValidateExt(%q) = %v; want ok=%v", tc.ext, err, tc.ok)
		}
	}
}

func TestBackupOptionsValidate(t *testing.T) {
	good := opts("/backups", 0, "true")
	for _, tc := range []struct {
		name string
		mod  func(*retention.BackupOptions)
		ok   bool
	}{
		{"good", func(*retention.BackupOptions) {}, true},
		{"no destination", func(o *retention.BackupOptions) { o.Destination = "" }, false},
		{"bad name", func(o *retention.BackupOptions) { o.Name = "../db" }, false},
		{"bad ext", func(o *retention.BackupOptions) { o.Ext = "sql" }, false},
		{"no command", func(o *retention.BackupOptions) { o.Command = nil }, false},
		{"negative timeout", func(o *retention.BackupOptions) { o.Timeout = -1 }, false},
		{"grace longer than timeout", func(o *retention.BackupOptions) { o.Timeout, o.Grace = time.Second, 2*time.Second }, false},
		{"no timeout, any grace", func(o *retention.BackupOptions) { o.Timeout, o.Grace = 0, time.Hour }, true},
		{"bad policy", func(o *retention.BackupOptions) { o.Policy.Daily = -3 }, false},
	} {
		o := good
		tc.mod(&o)
		if err := o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// BenchmarkBackupCopy compares a backup written to standard output (copied
// by RunBackup through a pipe, with checked writes and fsync) with the same
// bytes written by the command itself to $CC_BACKUP_FILE (what the command's
// own redirection costs). The size is CCCTL_BENCH_BACKUP_MB (default 200),
// the folder CCCTL_BENCH_BACKUP_DIR (default a temporary folder). Run by
// hand:
//
//	go test -run '^$' -bench BackupCopy -benchtime 5x ./retention/
func BenchmarkBackupCopy(b *testing.B) {
	mb := 200
	if v := os.Getenv("CCCTL_BENCH_BACKUP_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("CCCTL_BENCH_BACKUP_MB=%q: want a positive number of MB", v)
		}
		mb = n
	}
	size := int64(mb) * 1000 * 1000
	for _, mode := range []struct{ name, script string }{
		{"stdout", fmt.Sprintf(`head -c %d /dev/zero`, size)},
		{"direct", fmt.Sprintf(`head -c %d /dev/zero > "$CC_BACKUP_FILE"`, size)},
	} {
		b.Run(mode.name, func(b *testing.B) {
			dest := b.TempDir()
			if d := os.Getenv("CCCTL_BENCH_BACKUP_DIR"); d != "" {
				dest = filepath.Join(d, "bench-"+mode.name)
				b.Cleanup(func() { os.RemoveAll(dest) })
			}
			b.SetBytes(size)
			i := 0
			for b.Loop() {
				o := opts(dest, i, mode.script)
				o.SkipPrune = true
				o.Timeout = 10 * time.Minute
				res, err := retention.RunBackup(context.Background(), o)
				if err != nil {
					b.Fatal(err)
				}
				if res.Size != size {
					b.Fatalf("backup of %d bytes; want %d", res.Size, size)
				}
				b.StopTimer()
				os.Remove(res.Backup.Path)
				b.StartTimer()
				i++
			}
		})
	}
}
