package fslock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ccctl/ccctl/clock"
)

// DefaultRetry is how often a Manager checks the locks it holds and retries
// the directories it could not wait on (missing, unreadable) when
// ManagerOptions.Retry is 0.
const DefaultRetry = 5 * time.Second

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	// Owner is written in every lock file the manager takes. Its
	// AcquiredAt is ignored: each lock records the Clock's time when it was
	// taken.
	Owner Owner
	// Retry is the interval between the checks of the locks held and the
	// attempts on the directories Run does not wait on; 0 means
	// DefaultRetry.
	Retry time.Duration
	// Clock times the retries and stamps AcquiredAt; nil means
	// clock.Real().
	Clock clock.Clock
	// Logger receives one line per event; nil means slog.Default().
	Logger *slog.Logger
	// OnChange, when set, is called after a lock was taken (held true) or
	// found lost (held false), from the goroutine that made the attempt,
	// one call at a time, in order. It must not call Attempt or Close.
	OnChange func(dir string, held bool)
}

// Manager takes the locks of several directories: the `filesystem_locks`
// of a ccctl member. Attempt takes what is free without blocking; Run waits
// for each lock held by another (with Acquire, so it gets a released lock
// within milliseconds), and Wait blocks until it holds them all. Before its
// first lock on a directory it runs SelfTest there and logs
// FilesystemWarning; a directory whose flock does not exclude is never
// locked. Every attempt, and every Retry interval of Run, also checks the
// locks it holds (see (*Lock).Check) and drops one whose file was deleted
// or replaced. Its methods are safe for concurrent use.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger
	dirs []string

	attempt sync.Mutex // one attempt at a time, OnChange calls in order

	mu      sync.Mutex
	state   map[string]*dirState
	closed  bool
	closing chan struct{}  // closed by Close: ends the waits
	waits   sync.WaitGroup // the waits in progress, which Close waits for
}

type dirState struct {
	lock    *Lock
	tested  bool   // SelfTest passed
	unsafe  error  // SelfTest found that flock does not exclude
	lastErr string // last error logged, so a repeated failure logs once
}

// NewManager returns a manager of the locks of dirs. It takes no lock; call
// Attempt, or Run.
func NewManager(dirs []string, opts ManagerOptions) (*Manager, error) {
	if opts.Retry < 0 {
		return nil, fmt.Errorf("filesystem locks: negative retry interval %v", opts.Retry)
	}
	if opts.Retry == 0 {
		opts.Retry = DefaultRetry
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{opts: opts, log: log, state: map[string]*dirState{}, closing: make(chan struct{})}
	for _, d := range dirs {
		if d == "" {
			return nil, errors.New("filesystem locks: empty directory")
		}
		d = filepath.Clean(d)
		if _, dup := m.state[d]; dup {
			return nil, fmt.Errorf("filesystem locks: %s listed twice", d)
		}
		m.state[d] = &dirState{}
		m.dirs = append(m.dirs, d)
	}
	return m, nil
}

// Attempt tries, without blocking, to take every lock not held, after
// checking those held. It returns how many locks are held afterwards.
// After Close it does nothing.
func (m *Manager) Attempt() int {
	held, _ := m.try(nil)
	return held
}

// try is Attempt, skipping the directories in skip (those Run waits on).
// It also returns the directories that are safe to wait on and not held.
func (m *Manager) try(skip map[string]bool) (held int, wait []string) {
	m.attempt.Lock()
	defer m.attempt.Unlock()
	type change struct {
		dir  string
		held bool
	}
	var changes []change
	for _, dir := range m.dirs {
		if skip[dir] {
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return 0, nil
		}
		st := m.state[dir]
		l := st.lock
		m.mu.Unlock()

		if l != nil {
			if err := l.Check(); err == nil {
				held++
				continue
			} else {
				m.log.Error("filesystem lock lost", "dir", dir, "err", err)
				l.Unlock()
				m.mu.Lock()
				st.lock = nil
				m.mu.Unlock()
				changes = append(changes, change{dir, false})
			}
		}
		if err := m.usable(st, dir); err != nil {
			if !errors.Is(err, ErrNotExclusive) {
				m.logOnce(st, "filesystem lock not taken", dir, err)
			}
			continue
		}
		o := m.opts.Owner
		o.AcquiredAt = m.opts.Clock.Now().UTC()
		nl, err := TryLock(dir, o)
		if err != nil {
			m.logOnce(st, "filesystem lock not taken", dir, err)
			if errors.Is(err, ErrLocked) {
				wait = append(wait, dir)
			}
			continue
		}
		if !m.adopt(st, dir, nl) {
			return 0, nil
		}
		held++
		changes = append(changes, change{dir, true})
	}
	if m.opts.OnChange != nil {
		for _, c := range changes {
			m.opts.OnChange(c.dir, c.held)
		}
	}
	return held, wait
}

// usable runs SelfTest on dir the first time, and returns its error, which
// wraps ErrNotExclusive when dir is never to be locked. The caller holds
// m.attempt.
func (m *Manager) usable(st *dirState, dir string) error {
	if st.unsafe != nil {
		return st.unsafe
	}
	if st.tested {
		return nil
	}
	if err := SelfTest(dir); err != nil {
		if errors.Is(err, ErrNotExclusive) {
			st.unsafe = err
			m.log.Error("filesystem lock disabled: flock does not exclude here", "dir", dir, "err", err)
		}
		return err
	}
	st.tested = true
	if w := FilesystemWarning(dir); w != "" {
		m.log.Warn("filesystem lock on a risky filesystem", "dir", dir, "warning", w)
	}
	return nil
}

// adopt records l as the lock of dir, or releases it and reports false
// after Close. The caller holds m.attempt.
func (m *Manager) adopt(st *dirState, dir string, l *Lock) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		l.Unlock()
		return false
	}
	st.lock = l
	st.lastErr = ""
	m.mu.Unlock()
	m.log.Info("filesystem lock taken", "dir", dir, "path", l.Path())
	return true
}

// await waits for the lock of dir with Acquire and adopts it. It returns
// nil when it holds the lock.
func (m *Manager) await(ctx context.Context, dir string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("filesystem lock %s: %w", dir, os.ErrClosed)
	}
	m.waits.Add(1)
	m.mu.Unlock()
	defer m.waits.Done()
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-m.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	o := m.opts.Owner
	o.AcquiredAt = time.Time{}
	w := newWatcher(dir)
	defer w.close() // slow (see close): after the lock is recorded
	l, err := acquire(ctx, dir, o, m.opts.Clock.Now, w)
	if err != nil {
		return err
	}
	m.attempt.Lock()
	defer m.attempt.Unlock()
	m.mu.Lock()
	st := m.state[dir]
	m.mu.Unlock()
	if !m.adopt(st, dir, l) {
		return fmt.Errorf("filesystem lock %s: %w", dir, os.ErrClosed)
	}
	if m.opts.OnChange != nil {
		m.opts.OnChange(dir, true)
	}
	return nil
}

// logOnce logs err unless it is the same as the last one logged for dir.
func (m *Manager) logOnce(st *dirState, msg, dir string, err error) {
	if s := err.Error(); s != st.lastErr {
		st.lastErr = s
		m.log.Warn(msg, "dir", dir, "err", err)
	}
}

// Run makes an attempt at once, then waits for each lock another holder
// has (taking it as soon as it is released, see Acquire), and every Retry
// interval checks the locks it holds and retries the directories it could
// not wait on, until ctx is done; it returns nil then, once its waits have
// ended. It keeps the locks it holds when it returns: release them with
// Close once the service that needed them has stopped.
func (m *Manager) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	waiting := map[string]bool{}
	ended := make(chan string)
	wait := func(dirs []string) {
		for _, dir := range dirs {
			waiting[dir] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.await(ctx, dir); err != nil && ctx.Err() == nil {
					m.log.Warn("filesystem lock not taken", "dir", dir, "err", err)
				}
				select {
				case ended <- dir:
				case <-ctx.Done():
				}
			}()
		}
	}
	_, dirs := m.try(nil)
	wait(dirs)
	t := m.opts.Clock.NewTimer(m.opts.Retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case dir := <-ended:
			delete(waiting, dir)
		case <-t.C():
			_, dirs := m.try(waiting)
			wait(dirs)
			t.Reset(m.opts.Retry)
		}
	}
}

// Wait takes the lock of every directory, one after the other in the
// order given to NewManager, waiting for each (see Acquire) until it holds
// them all (nil) or ctx is done (an error wrapping ctx.Err() and naming the
// holder). Unlike Attempt it takes no lock out of order, so members that
// list the same directories in the same order cannot deadlock. A directory
// that cannot be locked (missing, or its flock does not exclude) is an
// error at once.
func (m *Manager) Wait(ctx context.Context) error {
	for _, dir := range m.dirs {
		if m.Held(dir) {
			continue
		}
		m.attempt.Lock()
		m.mu.Lock()
		st := m.state[dir]
		m.mu.Unlock()
		err := m.usable(st, dir)
		m.attempt.Unlock()
		if err != nil {
			return fmt.Errorf("filesystem locks: %w", err)
		}
		m.log.Info("waiting for filesystem lock", "dir", dir)
		if err := m.await(ctx, dir); err != nil {
			return fmt.Errorf("filesystem locks: %w", err)
		}
	}
	return nil
}

// Held reports whether the manager holds the lock on dir (the Go API's
// GetFilesystemLock). It is false for a directory it does not manage.
func (m *Manager) Held(dir string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.state[filepath.Clean(dir)]
	return ok && st.lock != nil
}

// Status returns, for every managed directory, whether its lock is held
// (the `locks` of /status).
func (m *Manager) Status() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := make(map[string]bool, len(m.state))
	for d, st := range m.state {
		s[d] = st.lock != nil
	}
	return s
}

// Dirs returns the managed directories, in the order given to NewManager.
func (m *Manager) Dirs() []string { return slices.Clone(m.dirs) }

// Close releases every lock held and stops later attempts. It ends the
// waits of Run and Wait and waits for them, and for an attempt in
// progress; it does not call OnChange.
func (m *Manager) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.closing)
	}
	m.mu.Unlock()
	m.waits.Wait()
	m.attempt.Lock()
	defer m.attempt.Unlock()
	m.mu.Lock()
	var locks []*Lock
	for _, st := range m.state {
		if st.lock != nil {
			locks = append(locks, st.lock)
			st.lock = nil
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, l := range locks {
		errs = append(errs, l.Unlock())
		m.log.Info("filesystem lock released", "dir", l.Dir())
	}
	return errors.Join(errs...)
}
