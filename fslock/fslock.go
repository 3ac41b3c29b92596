// Package fslock provides filesystem locks that no dead process can hold.
//
// A lock on a directory DIR is flock(2) with LOCK_EX on DIR/.ccctl.lock. The
// file is created when missing and never deleted. While a holder has the
// lock, the file's content is the holder's Owner as JSON (id, host, pid,
// acquired_at), written through the locked descriptor; on Unlock the content
// is cleared.
//
// TryLock takes a lock without blocking, Acquire waits for it (woken by
// inotify when the holder releases it or dies), and Manager keeps the locks
// of several directories (a member's filesystem_locks): taken at start
// without blocking or, with Wait, before the service starts; awaited in the
// background, checked, and reported for /status.
//
// What is guaranteed, on a local Linux filesystem whose flock is real:
//
//   - At most one Lock on DIR exists at a time, across processes and within
//     one process (each TryLock opens its own file description).
//   - The kernel releases the lock when the holder's process dies, however it
//     dies: there is no staleness timeout, and the JSON left by a dead holder
//     (or any garbage in the file) never blocks a new holder.
//   - The descriptor is close-on-exec: children started by the holder do not
//     inherit it, so a service cannot keep its controller's lock alive.
//   - After locking, TryLock checks that DIR/.ccctl.lock still names the file
//     it locked (the inode check), so a lock taken on a file that was deleted
//     or replaced meanwhile is never reported as held.
//
// What is not guaranteed:
//
//   - Owner is informational. ReadOwner may return the JSON of a holder that
//     has died, or an error while a holder is writing; only TryLock tells
//     whether the lock is held.
//   - Someone deleting or replacing DIR/.ccctl.lock while it is held breaks
//     mutual exclusion: a new holder locks the new file. (*Lock).Check
//     detects this for the current holder; nothing prevents it.
//   - On network and user-space filesystems (nfs, cifs, fuse, 9p) flock may
//     be emulated, local to one machine, or not exclusive at all. SelfTest
//     catches a filesystem whose flock does not exclude two opens, and
//     FilesystemWarning names the risky filesystem types; neither can prove
//     that holders on two machines exclude each other.
//   - There is no fencing: a holder that is paused or partitioned is not
//     stopped from writing by this package.
package fslock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// FileName is the name of the lock file inside a locked directory.
const FileName = ".ccctl.lock"

// ErrLocked is returned (wrapped in a *LockedError) by TryLock when another
// holder has the lock.
var ErrLocked = errors.New("fslock: locked by another holder")

// ErrLost is returned by (*Lock).Check when the lock file was deleted or
// replaced while held, so that another process may lock the new file.
var ErrLost = errors.New("fslock: lock file deleted or replaced while held")

// ErrNotExclusive is returned by SelfTest when flock on the directory's
// filesystem does not make two opens exclude each other.
var ErrNotExclusive = errors.New("fslock: flock does not exclude a second open on this filesystem")

// ErrNoOwner is returned by ReadOwner when the lock file holds no owner: it
// is missing, empty (never locked, or released cleanly) or not valid JSON.
var ErrNoOwner = errors.New("fslock: no owner recorded")

// Owner identifies a holder. Its JSON form is the content of the lock file.
type Owner struct {
	// ID is the holder's identity, for ccctl the member id.
	ID string `json:"id"`
	// Host is the holder's host name.
	Host string `json:"host"`
	// PID is the holder's process id (in its own pid namespace).
	PID int `json:"pid"`
	// AcquiredAt is when the holder took the lock.
	AcquiredAt time.Time `json:"acquired_at"`
}

// LockedError reports a lock held by another holder. It wraps ErrLocked.
type LockedError struct {
	// Dir is the locked directory.
	Dir string
	// Owner is the holder as recorded in the lock file, valid when OwnerErr
	// is nil. It may describe a holder that has died since.
	Owner Owner
	// OwnerErr is why Owner could not be read, or nil.
	OwnerErr error
}

// Error describes the holder: "lock DIR: locked by id=... host=... pid=...
// since ...", or that the holder is unknown.
func (e *LockedError) Error() string {
	if e.OwnerErr != nil {
		return fmt.Sprintf("lock %s: locked by another holder (owner unknown: %v)", e.Dir, e.OwnerErr)
	}
	return fmt.Sprintf("lock %s: locked by id=%q host=%q pid=%d since %s",
		e.Dir, e.Owner.ID, e.Owner.Host, e.Owner.PID, e.Owner.AcquiredAt.Format(time.RFC3339))
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is a held filesystem lock. Its methods are safe for concurrent use.
type Lock struct {
	dir   string
	path  string
	owner Owner

	mu sync.Mutex
	f  *os.File // nil once unlocked
}

// maxInodeRetries bounds how often TryLock reopens a lock file that was
// replaced between its open and its flock.
const maxInodeRetries = 10

// TryLock takes the lock on dir without blocking. dir must exist. Missing
// fields of owner are filled in: PID with this process's id, Host with the
// host name, AcquiredAt with the current time. When another holder has the
// lock, TryLock returns a *LockedError, which wraps ErrLocked.
func TryLock(dir string, owner Owner) (*Lock, error) {
	path := filepath.Join(dir, FileName)
	owner = fillOwner(owner)
	for attempt := 0; ; attempt++ {
		f, err := openLockFile(dir, path)
		if err != nil {
			return nil, err
		}
		if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, lockedError(dir)
			}
			return nil, fmt.Errorf("lock %s: flock: %w", dir, err)
		}
		l, err := locked(f, dir, path, owner, time.Now)
		if errors.Is(err, ErrLost) && attempt < maxInodeRetries {
			continue // replaced between open and flock: lock the new file
		}
		return l, err
	}
}

// Acquire takes the lock on dir, waiting until it is free or ctx is done.
// Missing fields of owner are filled in as by TryLock, AcquiredAt with the
// time the lock was taken.
//
// The wait blocks on inotify(7), watching dir for the lock file being
// closed by a writer, which the kernel does when its holder releases it or
// dies; each such event is followed by one non-blocking flock on a
// descriptor opened once for the whole wait. A holder on the same machine
// is therefore followed within milliseconds. Since inotify does not see
// holders on other machines of a network filesystem, the flock is also
// retried every second; where inotify is not available (its limits
// reached), the wait polls from every 1ms to every 100ms instead. Acquire
// returns some milliseconds after the lock is taken: closing an inotify
// descriptor waits for an RCU grace period of the kernel (Manager records
// its locks before that).
//
// Errors other than ErrLocked end the wait at once; when ctx ends first,
// the error wraps ctx.Err() and a *LockedError naming the holder.
func Acquire(ctx context.Context, dir string, owner Owner) (*Lock, error) {
	w := newWatcher(dir) // before the first flock, so that no release is missed
	defer w.close()
	return acquire(ctx, dir, owner, time.Now, w)
}

// acquire is Acquire with the clock that stamps AcquiredAt, woken by w
// (polling when w is nil). w must watch dir since before the call.
func acquire(ctx context.Context, dir string, owner Owner, now func() time.Time, w *watcher) (*Lock, error) {
	path := filepath.Join(dir, FileName)
	owner = fillOwner(owner)
	poll := minPoll
	for {
		f, err := openLockFile(dir, path)
		if err != nil {
			return nil, err
		}
		for {
			err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				f.Close()
				return nil, fmt.Errorf("lock %s: flock: %w", dir, err)
			}
			if w != nil {
				err = w.wait(ctx, watchPoll)
			} else {
				err = sleep(ctx, poll/2+rand.N(poll/2+1))
				poll = min(2*poll, maxPoll)
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("lock %s: %w (%w)", dir, err, lockedError(dir))
			}
		}
		l, err := locked(f, dir, path, owner, now)
		if errors.Is(err, ErrLost) && ctx.Err() == nil {
			continue // the file was replaced while we waited: wait on the new one
		}
		return l, err
	}
}

// Polling intervals of Acquire: with inotify, and without (growing from
// minPoll to maxPoll, jittered).
const (
	watchPoll = time.Second
	minPoll   = time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// fillOwner fills in the PID and the Host of owner when missing.
func fillOwner(owner Owner) Owner {
	if owner.PID == 0 {
		owner.PID = os.Getpid()
	}
	if owner.Host == "" {
		owner.Host, _ = os.Hostname()
	}
	return owner
}

// openLockFile opens (creating it when missing) the lock file at path.
// os.OpenFile always sets O_CLOEXEC.
func openLockFile(dir, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// lockedError describes the current holder of dir's lock.
func lockedError(dir string) *LockedError {
	o, oerr := ReadOwner(dir)
	return &LockedError{Dir: dir, Owner: o, OwnerErr: oerr}
}

// locked makes the Lock of f, just flocked: it checks that path still names
// f, and records owner (AcquiredAt from now when zero). It closes f on
// error; the error wraps ErrLost when path names another file.
func locked(f *os.File, dir, path string, owner Owner, now func() time.Time) (*Lock, error) {
	if err := sameFile(f, path); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if owner.AcquiredAt.IsZero() {
		owner.AcquiredAt = now().UTC()
	}
	if err := writeOwner(f, owner); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: write owner: %w", dir, err)
	}
	return &Lock{dir: dir, path: path, owner: owner, f: f}, nil
}

// sleep waits for d or until ctx is done (then it returns ctx.Err()).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Dir returns the locked directory.
func (l *Lock) Dir() string { return l.dir }

// Path returns the path of the lock file.
func (l *Lock) Path() string { return l.path }

// Owner returns the owner recorded in the lock file when it was taken.
func (l *Lock) Owner() Owner { return l.owner }

// Held reports whether the lock has not been unlocked. It does not look at
// the filesystem; Check does.
func (l *Lock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f != nil
}

// Check verifies that the lock is still held and that its path still names
// the locked file. It returns an error wrapping ErrLost when the file was
// deleted or replaced (another process may then hold a lock on the new
// file), and os.ErrClosed after Unlock.
func (l *Lock) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("check lock %s: %w", l.dir, os.ErrClosed)
	}
	if err := sameFile(l.f, l.path); err != nil {
		return fmt.Errorf("check lock %s: %w", l.dir, err)
	}
	return nil
}

// Unlock clears the owner from the lock file and releases the lock. The
// file itself stays. Calling Unlock again has no effect and returns nil.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Clearing is best effort: a stale owner never blocks anyone.
	terr := f.Truncate(0)
	uerr := flock(f, syscall.LOCK_UN)
	cerr := f.Close()
	if err := errors.Join(uerr, cerr); err != nil {
		return fmt.Errorf("unlock %s: %w", l.dir, err)
	}
	if terr != nil {
		return fmt.Errorf("unlock %s: clear owner: %w", l.dir, terr)
	}
	return nil
}

// ReadOwner returns the owner recorded in dir's lock file. The record may
// be stale (its holder dead) and is only informational. It returns an error
// wrapping ErrNoOwner when the file is missing, empty or not an owner.
func ReadOwner(dir string) (Owner, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Owner{}, fmt.Errorf("read owner %s: %w: %w", dir, ErrNoOwner, err)
	}
	if err != nil {
		return Owner{}, fmt.Errorf("read owner %s: %w", dir, err)
	}
	return parseOwner(dir, b)
}

func parseOwner(dir string, b []byte) (Owner, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Owner{}, fmt.Errorf("read owner %s: %w: empty lock file", dir, ErrNoOwner)
	}
	// The first JSON value is the owner; bytes after it are ignored (a
	// reader may race with a holder shortening the file).
	var o Owner
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&o); err != nil {
		return Owner{}, fmt.Errorf("read owner %s: %w: %w", dir, ErrNoOwner, err)
	}
	return o, nil
}

// writeOwner replaces the file's content by o's JSON: write first, then cut
// what is left of an older, longer content. It does not fsync: the record
// is informational, and after a machine crash no lock survives anyway (a
// torn record reads as ErrNoOwner).
func writeOwner(f *os.File, o Owner) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(b)))
}

// sameFile returns an error wrapping ErrLost unless path names the file f.
func sameFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s is gone", ErrLost, path)
	}
	if err != nil {
		return err
	}
	if !os.SameFile(fi, pi) {
		return fmt.Errorf("%w: %s names another file", ErrLost, path)
	}
	return nil
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return ferr
}

// SelfTest checks that flock really excludes on dir's filesystem: it opens
// a scratch file in dir twice, locks the first open and expects the second
// open's non-blocking lock to fail. Some filesystems (some VirtioFS bind
// mounts, some fuse and network filesystems) accept flock without
// excluding; SelfTest then returns an error wrapping ErrNotExclusive. The
// scratch file is removed afterwards; the lock file is not touched.
func SelfTest(dir string) error {
	f1, err := os.CreateTemp(dir, ".ccctl.selftest-*")
	if err != nil {
		return fmt.Errorf("self-test %s: %w", dir, err)
	}
	name := f1.Name()
	defer os.Remove(name)
	defer f1.Close()
	f2, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("self-test %s: %w", dir, err)
	}
	defer f2.Close()
	if err := flock(f1, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("self-test %s: flock: %w", dir, err)
	}
	err = flock(f2, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return fmt.Errorf("self-test %s: %w", dir, ErrNotExclusive)
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("self-test %s: second flock: %w", dir, err)
	}
	if err := flock(f1, syscall.LOCK_UN); err != nil {
		return fmt.Errorf("self-test %s: unlock: %w", dir, err)
	}
	if err := flock(f2, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("self-test %s: flock after release: %w", dir, err)
	}
	return nil
}

// Filesystem magic numbers (statfs f_type) of filesystems whose flock is
// risky for locks shared between containers or machines.
var riskyFilesystems = map[int64]string{
	0x6969:     "nfs",
	0x517b:     "smb",
	0xff534d42: "cifs",
	0xfe534d42: "smb2",
	0x65735546: "fuse",
	0x01021997: "9p",
}

// FilesystemWarning returns a one-line warning when dir is on nfs, cifs/smb,
// fuse (which includes VirtioFS) or 9p, where flock may be emulated, local
// to one machine or not exclusive; it returns "" otherwise, and also when
// the filesystem cannot be examined.
func FilesystemWarning(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ""
	}
	return warningFor(dir, int64(st.Type))
}

func warningFor(dir string, magic int64) string {
	name, ok := riskyFilesystems[magic&0xffffffff]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s is on %s: flock there may not exclude holders on other machines or containers", dir, name)
}
