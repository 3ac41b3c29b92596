package fslock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ccctl/ccctl/clock"
)

// DefaultRetry is how often a Manager retries the locks it does not hold
// when ManagerOptions.Retry is 0.
const DefaultRetry = 5 * time.Second

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	// Owner is written in every lock file the manager takes. Its
	// AcquiredAt is ignored: each lock records the Clock's time when it was
	// taken.
	Owner Owner
	// Retry is the interval between attempts; 0 means DefaultRetry.
	Retry time.Duration
	// Clock times the retries; nil means clock.Real().
	Clock clock.Clock
	// Logger receives one line per event; nil means slog.Default().
	Logger *slog.Logger
	// OnChange, when set, is called after a lock was taken (held true) or
	// found lost (held false), from the goroutine that made the attempt,
	// one call at a time, in order. It must not call Attempt or Close.
	OnChange func(dir string, held bool)
}

// Manager takes the locks of several directories without blocking and
// keeps trying for those it does not hold: the `filesystem_locks` of a
// ccctl member. Before its first lock on a directory it runs SelfTest there
// and logs FilesystemWarning; a directory whose flock does not exclude is
// never locked. On every attempt it also checks the locks it holds (see
// (*Lock).Check) and drops one whose file was deleted or replaced. Its
// methods are safe for concurrent use.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger
	dirs []string

	attempt sync.Mutex // one attempt at a time, OnChange calls in order

	mu     sync.Mutex
	state  map[string]*dirState
	closed bool
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
	m := &Manager{opts: opts, log: log, state: map[string]*dirState{}}
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
	m.attempt.Lock()
	defer m.attempt.Unlock()
	type change struct {
		dir  string
		held bool
	}
	var changes []change
	held := 0
	for _, dir := range m.dirs {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return 0
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
		if st.unsafe != nil {
			continue
		}
		if !st.tested {
			if err := SelfTest(dir); err != nil {
				if errors.Is(err, ErrNotExclusive) {
					st.unsafe = err
					m.log.Error("filesystem lock disabled: flock does not exclude here", "dir", dir, "err", err)
				} else {
					m.logOnce(st, "filesystem lock not taken", dir, err)
				}
				continue
			}
			st.tested = true
			if w := FilesystemWarning(dir); w != "" {
				m.log.Warn("filesystem lock on a risky filesystem", "dir", dir, "warning", w)
			}
		}
		o := m.opts.Owner
		o.AcquiredAt = m.opts.Clock.Now().UTC()
		nl, err := TryLock(dir, o)
		if err != nil {
			m.logOnce(st, "filesystem lock not taken", dir, err)
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			nl.Unlock()
			return 0
		}
		st.lock = nl
		st.lastErr = ""
		m.mu.Unlock()
		m.log.Info("filesystem lock taken", "dir", dir, "path", nl.Path())
		held++
		changes = append(changes, change{dir, true})
	}
	if m.opts.OnChange != nil {
		for _, c := range changes {
			m.opts.OnChange(c.dir, c.held)
		}
	}
	return held
}

// logOnce logs err unless it is the same as the last one logged for dir.
func (m *Manager) logOnce(st *dirState, msg, dir string, err error) {
	if s := err.Error(); s != st.lastErr {
		st.lastErr = s
		m.log.Warn(msg, "dir", dir, "err", err)
	}
}

// Run makes an attempt at once and then every Retry interval until ctx is
// done; it returns nil then. It keeps the locks it holds when it returns:
// release them with Close once the service that needed them has stopped.
func (m *Manager) Run(ctx context.Context) error {
	m.Attempt()
	t := m.opts.Clock.NewTimer(m.opts.Retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			m.Attempt()
			t.Reset(m.opts.Retry)
		}
	}
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

// Close releases every lock held and stops later attempts. It waits for an
// attempt in progress, and does not call OnChange.
func (m *Manager) Close() error {
	m.attempt.Lock()
	defer m.attempt.Unlock()
	m.mu.Lock()
	m.closed = true
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
