package retention

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccctl/ccctl/fslock"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// Environment given to the backup command.
const (
	// EnvBackupFile names the path where the command may write its backup
	// (a file or a directory) instead of writing it to standard output.
	EnvBackupFile = "CC_BACKUP_FILE"
	// EnvBackupName is the backup's NAME.
	EnvBackupName = "CC_BACKUP_NAME"
)

// DefaultGrace is how long a command that must stop (timeout, cancelled
// context) has between SIGTERM and SIGKILL when BackupOptions.Grace is 0.
const DefaultGrace = 5 * time.Second

var (
	// ErrCommandFailed is returned when the backup command did not exit 0.
	ErrCommandFailed = errors.New("retention: backup command failed")
	// ErrEmpty is returned when the command succeeded but wrote nothing.
	ErrEmpty = errors.New("retention: backup command wrote nothing")
	// ErrExists is returned when a backup with the run's name already
	// exists (two runs in one second).
	ErrExists = errors.New("retention: backup already exists")
	// ErrPrune wraps the failure of the pruning that follows a stored
	// backup; the backup itself is stored.
	ErrPrune = errors.New("retention: prune failed")
)

// BackupOptions configures RunBackup.
type BackupOptions struct {
	// Destination is the folder holding one folder per backup name.
	Destination string
	// Name is the backup's NAME (see ValidateName).
	Name string
	// Ext is appended to the backup's name, e.g. ".sql.gz" (see
	// ValidateExt).
	Ext string
	// Command is the program and its arguments, run directly (wrap it in
	// "/bin/sh", "-c" for a shell command). Its standard output is the
	// backup (a pipe, copied by RunBackup with checked writes), unless it
	// creates the path in $CC_BACKUP_FILE, which is then the backup (a file
	// or a directory) and standard output is discarded.
	Command []string
	// Env is added to this process's environment for the command.
	Env []string
	// Stderr, when set, receives the command's standard error. The last
	// 2 KiB of it are also in the error of a failed run.
	Stderr io.Writer
	// Timeout bounds the command; 0 means no bound other than ctx.
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL when the command must
	// stop; 0 means DefaultGrace.
	Grace time.Duration
	// Policy is applied after a successful backup, unless SkipPrune.
	Policy Policy
	// SkipPrune stores the backup without pruning.
	SkipPrune bool
	// Owner identifies this run in the folder's lock file.
	Owner fslock.Owner
	// Now returns the current time; nil means time.Now. The backup's name
	// carries Now() in UTC, truncated to the second.
	Now func() time.Time
	// Logger receives one line per event; nil means slog.Default().
	Logger *slog.Logger
}

// Validate checks the options, relations included.
func (o BackupOptions) Validate() error {
	switch {
	case o.Destination == "":
		return errors.New("backup options: empty destination")
	case len(o.Command) == 0 || o.Command[0] == "":
		return errors.New("backup options: empty command")
	case o.Timeout < 0:
		return fmt.Errorf("backup options: negative timeout %v", o.Timeout)
	case o.Grace < 0:
		return fmt.Errorf("backup options: negative grace %v", o.Grace)
	case o.Timeout > 0 && o.Grace > o.Timeout:
		return fmt.Errorf("backup options: grace %v longer than timeout %v", o.Grace, o.Timeout)
	}
	if err := ValidateName(o.Name); err != nil {
		return fmt.Errorf("backup options: %w", err)
	}
	if err := ValidateExt(o.Ext); err != nil {
		return fmt.Errorf("backup options: %w", err)
	}
	if err := o.Policy.Validate(); err != nil {
		return fmt.Errorf("backup options: %w", err)
	}
	return nil
}

// Result describes a backup run.
type Result struct {
	// Backup is the new backup (zero when none was stored).
	Backup Backup
	// Size is the new backup's size in bytes (a directory's: the sum of
	// its regular files).
	Size int64
	// ExitCode is the command's exit code, 128+N when it died of signal N,
	// -1 when it did not run.
	ExitCode int
	// Duration is how long the command ran.
	Duration time.Duration
	// Leftovers lists the temporary names of crashed runs removed before
	// this run.
	Leftovers []string
	// Plan is the retention applied after the backup (empty when pruning
	// was skipped or the backup failed).
	Plan PlanResult
}

// RunBackup runs the backup command, stores its output as a new backup of
// opts.Name, then prunes by opts.Policy. It holds the lock on the backups'
// folder (fslock on DESTINATION/NAME, waiting for it as long as ctx allows)
// for the whole run. When the command fails, times out, is killed or
// writes nothing, or a write of the backup fails, RunBackup returns an
// error (wrapping ErrCommandFailed, context.DeadlineExceeded or
// context.Canceled, ErrEmpty, or ErrNoSpace and the write's own error) and
// nothing matching the backup pattern is created or removed; pruning runs
// only after a backup whose every write succeeded. When the backup is
// stored but pruning fails, the error wraps ErrPrune and the Result
// describes the stored backup.
func RunBackup(ctx context.Context, opts BackupOptions) (Result, error) {
	res := Result{ExitCode: -1}
	if err := opts.Validate(); err != nil {
		return res, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("backup", opts.Name)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	fail := func(err error) (Result, error) {
		log.Error("backup failed", "err", err)
		return res, fmt.Errorf("backup %s: %w", opts.Name, err)
	}

	dir := Folder(opts.Destination, opts.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	lock, err := fslock.Acquire(ctx, dir, opts.Owner)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := lock.Unlock(); err != nil {
			log.Warn("backup unlock failed", "err", err)
		}
	}()

	res.Leftovers = cleanLeftovers(dir, opts.Name, log)

	started := now().UTC().Truncate(time.Second)
	final := filepath.Join(dir, FileName(opts.Name, started, opts.Ext))
	if _, err := os.Lstat(final); err == nil {
		return fail(fmt.Errorf("%w: %s", ErrExists, final))
	}
	tmp := filepath.Join(dir, "."+opts.Name+"-"+started.Format(TimeLayout)+".tmp-"+strconv.Itoa(os.Getpid()))
	tmpFile := tmp + ".file"
	defer os.RemoveAll(tmp)
	defer os.RemoveAll(tmpFile)

	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	stdout, err := startCopy(out)
	if err != nil {
		return fail(err)
	}
	stderr := &tailBuffer{max: 2048}
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Stdout = stdout.Writer()
	cmd.Stderr = stderr
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, opts.Stderr)
	}
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Env = append(cmd.Env, EnvBackupFile+"="+tmpFile, EnvBackupName+"="+opts.Name)

	runCtx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	log.Info("backup started", "command", opts.Command[0], "file", filepath.Base(final))
	begin := time.Now()
	st, err := proc.Run(runCtx, cmd, grace)
	res.Duration = time.Since(begin)
	if err != nil {
		stdout.abort()
		return fail(err)
	}
	written, werr, rerr := stdout.finish()
	res.ExitCode = st.ExitCode()
	if werr != nil {
		// The first cause: the command has likely died of the closed pipe.
		return fail(writeError(werr, dir))
	}
	if ctxErr := runCtx.Err(); ctxErr != nil {
		// Even a command that exits 0 on SIGTERM has been cut short.
		return fail(fmt.Errorf("command stopped after %v (%s): %w%s", res.Duration.Round(time.Millisecond), st, ctxErr, stderr.suffix()))
	}
	if !st.Success() {
		return fail(fmt.Errorf("%w: %s%s", ErrCommandFailed, st, stderr.suffix()))
	}
	if rerr != nil {
		return fail(fmt.Errorf("read the command's standard output: %w", rerr))
	}
	if err := out.Sync(); err != nil {
		return fail(writeError(err, dir))
	}
	if fi, err := out.Stat(); err != nil {
		return fail(err)
	} else if fi.Size() != written {
		return fail(fmt.Errorf("write %s: %d bytes on disk, %d written", tmp, fi.Size(), written))
	}
	if err := out.Close(); err != nil {
		return fail(writeError(err, dir))
	}

	src := tmp
	fi, err := os.Lstat(tmpFile)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return fail(fmt.Errorf("$%s is a %s, not a file or directory", EnvBackupFile, fi.Mode().Type()))
		}
		src = tmpFile
	case !errors.Is(err, fs.ErrNotExist):
		return fail(err)
	}
	size, err := syncTree(src)
	if err != nil {
		return fail(writeError(fmt.Errorf("sync %s: %w", src, err), dir))
	}
	if src == tmpFile {
		// ccctl did not write this backup and cannot see a write the
		// command ignored; it can see the likely cause, a full disk.
		if err := checkRoom(dir); err != nil {
			return fail(err)
		}
	}
	if size == 0 {
		return fail(ErrEmpty)
	}
	if err := renameNoReplace(src, final); err != nil {
		return fail(writeError(err, dir))
	}
	if err := syncDir(dir); err != nil {
		return fail(writeError(fmt.Errorf("sync %s: %w", dir, err), dir))
	}
	fi, _ = os.Lstat(final)
	res.Backup = Backup{File: filepath.Base(final), Path: final, Time: started, Ext: opts.Ext, IsDir: fi != nil && fi.IsDir()}
	res.Size = size
	log.Info("backup stored", "file", res.Backup.File, "bytes", size, "duration", res.Duration.Round(time.Millisecond))

	if opts.SkipPrune {
		return res, nil
	}
	plan, err := prune(dir, opts.Name, opts.Policy, false, res.Backup.File, log)
	res.Plan = plan
	if err != nil {
		return res, fmt.Errorf("backup %s: stored %s, but %w: %w", opts.Name, res.Backup.File, ErrPrune, err)
	}
	return res, nil
}

// PruneOptions configures Prune.
type PruneOptions struct {
	// Destination is the folder holding one folder per backup name.
	Destination string
	// Name is the backup's NAME.
	Name string
	// Policy says what to keep.
	Policy Policy
	// DryRun computes the plan without removing anything, and without
	// taking the lock.
	DryRun bool
	// Owner identifies this process in the folder's lock file.
	Owner fslock.Owner
	// Logger receives one line per removal; nil means slog.Default().
	Logger *slog.Logger
}

// Prune applies opts.Policy to the backups of opts.Name: it lists them,
// plans with Plan and, unless DryRun, removes what the plan removes while
// holding the folder's lock (waiting for it as long as ctx allows). It
// returns the plan. Names that do not match the backup pattern are never
// removed, and the plan always keeps the newest backup.
func Prune(ctx context.Context, opts PruneOptions) (PlanResult, error) {
	if err := ValidateName(opts.Name); err != nil {
		return PlanResult{}, fmt.Errorf("prune: %w", err)
	}
	if err := opts.Policy.Validate(); err != nil {
		return PlanResult{}, fmt.Errorf("prune %s: %w", opts.Name, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("backup", opts.Name)
	dir := Folder(opts.Destination, opts.Name)
	if opts.DryRun {
		return prune(dir, opts.Name, opts.Policy, true, "", log)
	}
	lock, err := fslock.Acquire(ctx, dir, opts.Owner)
	if err != nil {
		return PlanResult{}, fmt.Errorf("prune %s: %w", opts.Name, err)
	}
	defer lock.Unlock()
	return prune(dir, opts.Name, opts.Policy, false, "", log)
}

// prune plans and, unless dryRun, removes. protect names a backup that is
// never removed (the one just made), even if the plan would.
func prune(dir, name string, p Policy, dryRun bool, protect string, log *slog.Logger) (PlanResult, error) {
	backups, err := List(filepath.Dir(dir), name)
	if err != nil {
		return PlanResult{}, fmt.Errorf("prune %s: %w", name, err)
	}
	plan := Plan(backups, p)
	if protect != "" {
		for i, b := range plan.Remove {
			if b.File == protect {
				// Only when clocks went backwards: the new backup is older
				// than an existing one and no bucket keeps it.
				plan.Remove = append(plan.Remove[:i:i], plan.Remove[i+1:]...)
				plan.Keep = append(plan.Keep, Kept{Backup: b, Reasons: []string{"new backup"}})
				break
			}
		}
	}
	if dryRun {
		return plan, nil
	}
	var errs []error
	for _, b := range plan.Remove {
		if err := remove(dir, name, b); err != nil {
			log.Error("backup remove failed", "file", b.File, "err", err)
			errs = append(errs, err)
			continue
		}
		log.Info("backup removed", "file", b.File)
	}
	if len(errs) > 0 {
		return plan, fmt.Errorf("prune %s: %w", name, errors.Join(errs...))
	}
	if len(plan.Remove) > 0 {
		if err := syncDir(dir); err != nil {
			return plan, fmt.Errorf("prune %s: sync %s: %w", name, dir, err)
		}
	}
	return plan, nil
}

// cleanLeftovers removes the temporary names of crashed runs. It runs under
// the folder's lock, so no live run owns them.
func cleanLeftovers(dir, name string, log *slog.Logger) []string {
	re := regexp.MustCompile(`^\.` + regexp.QuoteMeta(name) + `-[0-9]{8}T[0-9]{6}Z\.tmp-[0-9]+(\.file)?$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("backup leftovers not examined", "err", err)
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !re.MatchString(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			log.Warn("backup leftover not removed", "file", e.Name(), "err", err)
			continue
		}
		log.Info("backup leftover removed", "file", e.Name())
		removed = append(removed, e.Name())
	}
	return removed
}

// syncTree fsyncs path (a file, or a directory and everything in it) and
// returns the total size of its regular files.
func syncTree(path string) (int64, error) {
	var size int64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil // symlinks and the like: nothing to sync
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if d.Type().IsRegular() {
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return f.Sync()
	})
	return size, err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// renameNoReplace renames src to dst, failing with ErrExists when dst
// exists. Where renameat2(RENAME_NOREPLACE) is not supported it checks
// first and renames (the caller holds the folder's lock).
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EEXIST):
		return fmt.Errorf("rename %s: %w: %s", src, ErrExists, dst)
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.ENOTSUP):
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("rename %s: %w: %s", src, ErrExists, dst)
		}
		return os.Rename(src, dst)
	default:
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// suffix returns ": stderr: <tail>" or "".
func (t *tailBuffer) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return ""
	}
	return ": stderr: " + s
}
