package fslock

import (
	"context"
	"encoding/binary"
	"os"
	"syscall"
	"time"
)

// watcher reports, through inotify(7), that the lock file of a directory
// may have been released: it was closed by a process that had it open for
// writing (every holder does), or it was created, moved in or deleted.
//
// Why inotify rather than a blocking flock: a thread blocked in
// flock(LOCK_EX) cannot be cancelled cleanly. Go installs its signal
// handlers with SA_RESTART, so a signal restarts the call; closing the
// descriptor does not wake it (the call holds its own reference to the
// file); abandoning the thread would leave it to take the lock later, out
// of turn, from a waiter that is gone. An inotify descriptor is read through
// Go's poller, so a wait ends at once on a deadline, and the lock itself is
// only ever taken by a non-blocking flock in the waiting goroutine.
type watcher struct {
	f   *os.File
	buf []byte
}

// watchMask are the events on dir's entries that may mean a release.
const watchMask = syscall.IN_CLOSE_WRITE | syscall.IN_CREATE | syscall.IN_MOVED_TO |
	syscall.IN_DELETE | syscall.IN_ONLYDIR

// newWatcher watches dir, or returns nil when inotify is not available or
// its descriptor cannot be polled; the caller then polls.
func newWatcher(dir string) *watcher {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, watchMask); err != nil {
		syscall.Close(fd)
		return nil
	}
	f := os.NewFile(uintptr(fd), "inotify "+dir)
	if err := f.SetReadDeadline(time.Time{}); err != nil { // not in the poller
		f.Close()
		return nil
	}
	return &watcher{f: f, buf: make([]byte, 4096)}
}

// wait returns nil when an event names the lock file (or events were lost),
// or d has passed; it returns ctx.Err() when ctx is done first.
func (w *watcher) wait(ctx context.Context, d time.Duration) error {
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	w.f.SetReadDeadline(time.Now().Add(d))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := w.f.Read(w.buf)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err != nil || namesLockFile(w.buf[:n]) {
			return nil // the deadline passed, or a look is due
		}
	}
}

// namesLockFile reports whether the inotify events in b name FileName, or
// report an overflow of the event queue.
func namesLockFile(b []byte) bool {
	for len(b) >= syscall.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:8])
		n := int(binary.NativeEndian.Uint32(b[12:16]))
		b = b[syscall.SizeofInotifyEvent:]
		if n > len(b) {
			return true // a torn read: look rather than miss a release
		}
		name := string(b[:n])
		for i := 0; i < len(name); i++ {
			if name[i] == 0 {
				name = name[:i]
				break
			}
		}
		b = b[n:]
		if mask&syscall.IN_Q_OVERFLOW != 0 || name == FileName {
			return true
		}
	}
	return false
}

// close closes the inotify descriptor. It takes the kernel an RCU grace
// period, some milliseconds: close after the lock is recorded, not before.
func (w *watcher) close() {
	if w != nil {
		w.f.Close()
	}
}
