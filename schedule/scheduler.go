package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// Defaults of Config.
const (
	DefaultGracePeriod  = 8 * time.Second
	DefaultMissedWindow = time.Minute
)

// Config configures a Scheduler.
type Config struct {
	// Jobs are the jobs to run; their names must be unique.
	Jobs []Job
	// Clock tells time; nil means clock.Real().
	Clock clock.Clock
	// Location is the time zone schedules are evaluated in; nil means UTC.
	Location *time.Location
	// Claimer, when set, makes master-only jobs run at most once per slot
	// across the cluster: a run first claims (job, slot) and runs only if
	// the claim is won.
	Claimer coordinator.SlotClaimer
	// MemberID is added to every log line and given to shell jobs.
	MemberID string
	// Logger receives one line per event and one per line of job output;
	// nil means slog.Default().
	Logger *slog.Logger
	// Registerer, when set, receives the metrics (see the package comment).
	Registerer prometheus.Registerer
	// GracePeriod is how long a shell job may take to exit after SIGTERM
	// before it is killed; zero means DefaultGracePeriod.
	GracePeriod time.Duration
	// MissedWindow is how late a slot may still be run: by a scheduler
	// whose timer fired late, and, with a Claimer, by a member that
	// becomes master after the slot's time if nobody claimed the slot.
	// Zero means
	// DefaultMissedWindow.
	MissedWindow time.Duration
}

// Scheduler runs jobs on their schedules, on the members whose role they
// ask for. It implements the controller's extension point: Run is its
// actor, RoleChanged tells it the member's role.
type Scheduler struct {
	clk     clock.Clock
	log     *slog.Logger
	claimer coordinator.SlotClaimer
	member  string
	grace   time.Duration
	window  time.Duration
	metrics *metrics
	jobs    []*job

	mu      sync.Mutex
	role    coordinator.Role
	token   int64
	status  map[string]Status
	started bool
}

type job struct {
	Job
	sched Schedule
	kick  chan struct{} // the role changed; capacity 1, coalesced
}

// New validates cfg and returns a Scheduler. Errors are one line, naming the
// job and field at fault.
func New(cfg Config) (*Scheduler, error) {
	s := &Scheduler{
		clk:     cfg.Clock,
		log:     cfg.Logger,
		claimer: cfg.Claimer,
		member:  cfg.MemberID,
		grace:   cfg.GracePeriod,
		window:  cfg.MissedWindow,
		status:  make(map[string]Status),
	}
	if s.clk == nil {
		s.clk = clock.Real()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.member != "" {
		s.log = s.log.With("member", s.member)
	}
	if s.grace == 0 {
		s.grace = DefaultGracePeriod
	}
	if s.window == 0 {
		s.window = DefaultMissedWindow
	}
	if s.grace < 0 {
		return nil, fmt.Errorf("new scheduler: grace period %v: negative", s.grace)
	}
	if s.window < 0 {
		return nil, fmt.Errorf("new scheduler: missed window %v: negative", s.window)
	}
	seen := make(map[string]bool)
	for _, j := range cfg.Jobs {
		sched, err := j.parse(cfg.Location)
		if err != nil {
			return nil, err
		}
		if seen[j.Name] {
			return nil, fmt.Errorf("job %s: name: used by two jobs", j.Name)
		}
		seen[j.Name] = true
		if j.Role == "" {
			j.Role = RoleMaster
		}
		if j.Overlap == "" {
			j.Overlap = OverlapSkip
		}
		j.Command = append([]string(nil), j.Command...)
		s.jobs = append(s.jobs, &job{Job: j, sched: sched, kick: make(chan struct{}, 1)})
		s.status[j.Name] = Status{}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new scheduler: %w", err)
	}
	s.metrics = m
	return s, nil
}

// RoleChanged tells the scheduler the member's role and, for a master, its
// fencing token. Jobs that no longer match the role have their runs
// cancelled (their context, or SIGTERM then SIGKILL after the grace period
// for commands); a member that becomes master runs a master-only slot whose
// time passed less than the missed window ago, if nobody claimed it. It
// never blocks and may be called before, during or after Run.
func (s *Scheduler) RoleChanged(role coordinator.Role, token int64) {
	s.mu.Lock()
	changed := s.role != role || s.token != token
	s.role, s.token = role, token
	s.mu.Unlock()
	if !changed {
		return
	}
	s.log.Info("scheduler role changed", "role", string(role), "token", token)
	for _, j := range s.jobs {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Scheduler) currentRole() (coordinator.Role, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role, s.token
}

// Status returns, for every job, its last run and next slot. The map is a
// copy.
func (s *Scheduler) Status() map[string]Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Status, len(s.status))
	for k, v := range s.status {
		out[k] = v
	}
	return out
}

func (s *Scheduler) updateStatus(name string, f func(*Status)) {
	s.mu.Lock()
	st := s.status[name]
	f(&st)
	s.status[name] = st
	s.mu.Unlock()
}

// Run schedules the jobs until ctx is done, then cancels the runs in
// progress (their context, or SIGTERM then SIGKILL after the grace period),
// waits for them to end and returns nil. It may be called once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("run scheduler: already started")
	}
	s.started = true
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runJob(ctx, j)
		}()
	}
	wg.Wait()
	return nil
}

// runJob is the one goroutine that decides when job j runs. It owns the
// job's timer, its run in progress and the slot waiting behind it.
func (s *Scheduler) runJob(ctx context.Context, j *job) {
	log := s.log.With("job", j.Name)
	base := context.WithoutCancel(ctx)
	since := s.clk.Now() // when this member started keeping the job's slots
	var (
		running  *execution
		waiting  *time.Time
		lastSlot time.Time // the latest slot handed to trigger
		role     coordinator.Role
		token    int64
		started  bool // onRole has run once
	)
	start := func(slot time.Time, catchUp bool) {
		s.updateStatus(j.Name, func(st *Status) { st.Running = true })
		running = s.start(base, j, slot, role, token, catchUp, log)
	}
	trigger := func(slot time.Time, catchUp bool) {
		if !slot.After(lastSlot) || !j.Role.matches(role) {
			return
		}
		lastSlot = slot
		if running == nil {
			start(slot, catchUp)
			return
		}
		switch j.Overlap {
		case OverlapQueue:
			if waiting != nil {
				log.Warn("job slot dropped: one run going and one waiting", "slot", slot)
				return
			}
			log.Info("job slot queued behind the run in progress", "slot", slot)
			waiting = &slot
		case OverlapReplace:
			log.Info("job run replaced by a newer slot", "slot", slot, "replaced", running.slot)
			running.cancel(ErrReplaced)
			waiting = &slot
		default:
			log.Warn("job slot skipped: previous run still going", "slot", slot, "running", running.slot)
		}
	}
	onRole := func() {
		r, tok := s.currentRole()
		if r == role && tok == token && started {
			return
		}
		started = true
		became := r == coordinator.RoleMaster && (role != coordinator.RoleMaster || tok != token)
		role, token = r, tok
		// A master-only run belongs to the term that started it: a new
		// term (a new token) ends it as surely as a demotion.
		if !j.Role.matches(role) || (j.Role == RoleMaster && became) {
			if running != nil {
				running.cancel(ErrRoleLost)
			}
		}
		if !j.Role.matches(role) {
			waiting = nil
			return
		}
		if became && j.Role == RoleMaster && s.claimer != nil {
			// Only a slot that passed while this member ran can have been
			// missed by a master it replaces; one from before it started
			// was never due for it (a brand-new cluster's first master).
			now := s.clk.Now()
			if slot := s.lastSlotWithin(j, now); !slot.IsZero() && !slot.Before(since) {
				log.Info("job catching up a slot missed before this member became master", "slot", slot)
				trigger(slot, true)
			}
		}
	}

	now := s.clk.Now()
	next := j.sched.Next(now)
	onRole()
	timer := s.clk.NewTimer(next.Sub(now))
	defer timer.Stop()
	s.updateStatus(j.Name, func(st *Status) { st.Next = next })
	for {
		var done <-chan struct{}
		if running != nil {
			done = running.done
		}
		select {
		case <-ctx.Done():
			if running != nil {
				running.cancel(ErrStopped)
				<-running.done
				s.updateStatus(j.Name, func(st *Status) { st.Running = false })
			}
			return
		case <-j.kick:
			onRole()
		case <-done:
			running = nil
			s.updateStatus(j.Name, func(st *Status) { st.Running = false })
			onRole()
			if waiting != nil {
				slot := *waiting
				waiting = nil
				if j.Role.matches(role) {
					start(slot, false)
				}
			}
		case <-timer.C():
			if next.IsZero() {
				continue
			}
			onRole() // a role change not yet seen through kick counts at the slot
			slot := next
			now := s.clk.Now()
			if late := now.Sub(slot); late > s.window {
				log.Warn("job slot missed: timer fired too late", "slot", slot, "late", late)
			} else {
				trigger(slot, false)
			}
			next = j.sched.Next(slot)
			if !next.IsZero() && now.Sub(next) > s.window {
				next = j.sched.Next(now.Add(-s.window))
			}
			s.updateStatus(j.Name, func(st *Status) { st.Next = next })
			if !next.IsZero() {
				timer.Reset(next.Sub(s.clk.Now()))
			}
		}
	}
}

// lastSlotWithin returns the latest slot of j at or before now and at most
// the missed window before now, or the zero time.
func (s *Scheduler) lastSlotWithin(j *job, now time.Time) time.Time {
	var last time.Time
	for t := j.sched.Next(now.Add(-s.window - time.Nanosecond)); !t.IsZero() && !t.After(now); t = j.sched.Next(t) {
		last = t
	}
	return last
}

// retention is how long a slot claim must be remembered: longer than any
// member could still try to claim the slot.
func (s *Scheduler) retention(j *job) time.Duration {
	return s.window + j.Jitter + time.Hour
}

// jitter returns a random delay in [0, max).
func jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}
