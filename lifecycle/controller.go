package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/run"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// backendTimeout bounds the first registration and the final resignation.
const backendTimeout = 10 * time.Second

// useServiceCode marks a stop whose exit code is the service's.
const useServiceCode = -1

// Controller runs one member: it is made by New and run once by Run.
type Controller struct {
	cfg Config
	// coord is the member's current handle: a new one after each session
	// reopened by the controller actor, which alone writes it (under
	// coordMu) and reads it without the lock.
	coord   coordinator.Coordinator
	coordMu sync.Mutex
	id      string
	log     *slog.Logger
	metrics *metrics
	svc     *supervisor // nil when there is no service

	ran atomic.Bool

	stopOnce   sync.Once
	stopCh     chan struct{}
	stopCtx    context.Context // cancelled with stopCh
	stopCancel context.CancelFunc
	finished   chan struct{} // closed when the controller actor returns
	stopCode   int           // exit code of the stop, or useServiceCode
	stopErr    error         // why the controller stopped, nil for a normal stop

	mu     sync.Mutex
	status Status

	extMu    sync.Mutex
	extRole  coordinator.Role
	extToken int64
	extTold  bool
	term     int64 // token of this member's current term, 0 when it has none

	// set by the controller actor, read by Run after the group returned
	exitCode int
	lead     coordinator.Leadership
}

// New validates cfg, fills in its defaults and returns a Controller. Its
// errors wrap ErrInvalidConfig; the CLI exits with ExitBadConfig on them.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new controller: %w", err)
	}
	id := cfg.Coordinator.ID()
	cl := cfg.Coordinator.Cluster()
	c := &Controller{
		cfg:      cfg,
		coord:    cfg.Coordinator,
		id:       id,
		log:      cfg.Logger.With("member", id, "cluster", cl.String()),
		stopCh:   make(chan struct{}),
		finished: make(chan struct{}),
		status: Status{
			ID:          id,
			Environment: cl.Environment,
			Service:     cl.Service,
			State:       coordinator.StateStarting,
		},
	}
	c.metrics = newMetrics(c.Coordinator)
	c.stopCtx, c.stopCancel = context.WithCancel(context.Background())
	if len(cfg.Service.Argv) > 0 {
		c.svc = newSupervisor(&c.cfg)
	}
	return c, nil
}

// Coordinator returns the member's current handle on its cluster: the one
// of Config at first, a new one each time the controller opened a new
// session after losing one (see the package comment).
func (c *Controller) Coordinator() coordinator.Coordinator {
	c.coordMu.Lock()
	defer c.coordMu.Unlock()
	return c.coord
}

// setCoordinator makes n the current handle; only the controller actor
// calls it.
func (c *Controller) setCoordinator(n coordinator.Coordinator) {
	c.coordMu.Lock()
	c.coord = n
	c.coordMu.Unlock()
}

// requestStop asks the controller to stop; the first request sets the exit
// code (useServiceCode: the service's) and the error.
func (c *Controller) requestStop(code int, err error) {
	c.stopOnce.Do(func() {
		c.stopCode, c.stopErr = code, err
		close(c.stopCh)
		c.stopCancel()
	})
}

// Run runs the controller until it stops: on SIGTERM or SIGINT, when ctx is
// done, when the service exits, or when the controller cannot go on. It
// returns the exit code for the process and, when the controller itself
// failed, why. It closes the Coordinator before returning, after the
// service and its whole process group are gone. Run may be called once.
func (c *Controller) Run(ctx context.Context) (exitCode int, err error) {
	if !c.ran.CompareAndSwap(false, true) {
		return ExitFailure, errors.New("run controller: already ran")
	}
	defer c.closeCoordinator()
	if c.cfg.Reap {
		if _, err := proc.EnableReaping(); err != nil {
			return ExitFailure, fmt.Errorf("run controller: %w", err)
		}
	}
	if r := c.cfg.Registerer; r != nil {
		for _, col := range c.metrics.collectors() {
			if err := r.Register(col); err != nil {
				return ExitFailure, fmt.Errorf("run controller: register metrics: %w", err)
			}
			defer r.Unregister(col)
		}
	}

	// Every actor's interrupt asks for the stop (requestStop is idempotent);
	// each actor returns once its part of the stop is done: the caller's
	// context at once, the signals once the controller actor finished (a
	// second SIGTERM in the grace period must not kill ccctl before the
	// service), the supervisor once shutdown stopped the service.
	var g run.Group
	stop := c.interrupt
	{ // the context of the caller
		g.Add(func() error {
			select {
			case <-ctx.Done():
				c.log.Info("context done, stopping", "cause", context.Cause(ctx))
				c.requestStop(useServiceCode, nil)
			case <-c.stopCh:
			}
			return nil
		}, stop)
	}
	{ // signals: caught from now on, before anything starts, and handled
		// until the controller finished its stop, so that a second SIGTERM
		// during the grace period does not kill the controller before the
		// service
		sigs := c.cfg.Signals
		if sigs == nil {
			ch := make(chan os.Signal, 16)
			signal.Notify(ch, caught()...)
			defer signal.Stop(ch)
			sigs = ch
		}
		g.Add(func() error {
			c.handleSignals(sigs, c.finished)
			return nil
		}, stop)
	}
	{ // the controller
		g.Add(func() error {
			defer close(c.finished)
			return c.execute(ctx)
		}, stop)
	}
	if c.svc != nil {
		g.Add(c.svc.execute, stop)
	}
	for _, e := range c.cfg.Extensions {
		ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error {
			err := e.Run(ectx)
			if err == nil {
				<-ectx.Done() // an extension that ends early does not stop the others
				return nil
			}
			return fmt.Errorf("extension %T: %w", e, err)
		}, func(error) { cancel() })
	}
	for _, a := range c.cfg.Actors {
		g.Add(a.Execute, a.Interrupt)
	}
	_ = g.Run() // the first error is what requestStop recorded

	c.setStatus(func(s *Status) {
		if s.State != coordinator.StateFailed {
			s.State = coordinator.StateStopped
		}
	})
	if c.stopErr != nil {
		c.log.Error("controller stopped", "exit_code", c.exitCode, "err", c.stopErr)
	} else {
		c.log.Info("controller stopped", "exit_code", c.exitCode)
	}
	return c.exitCode, c.stopErr
}

// interrupt is every actor's interrupt: it asks for the stop, with the
// error of the actor that returned first (the service's exit leaves the
// exit code to the service).
func (c *Controller) interrupt(err error) {
	var exit *ServiceExitError
	switch {
	case err == nil, errors.As(err, &exit):
		c.requestStop(useServiceCode, nil)
	default:
		c.requestStop(ExitFailure, err)
	}
}

// closeCoordinator resigns the leadership, if held, and closes the session.
// It runs after every part stopped, so after the service's group is gone.
func (c *Controller) closeCoordinator() {
	ctx, cancel := context.WithTimeout(context.Background(), backendTimeout)
	defer cancel()
	if c.lead != nil {
		if err := c.lead.Resign(ctx); err != nil {
			c.log.Warn("resign", "err", err)
		} else {
			c.log.Info("resigned")
		}
	}
	if err := c.Coordinator().Close(); err != nil {
		c.log.Warn("close coordinator", "err", err)
	}
	c.metrics.isMaster.Set(0)
}

// handleSignals stops the controller on SIGTERM or SIGINT, drops the
// signals of ccctl's own making (ownSignal) and forwards every other signal
// it catches to the service, until quit is closed.
func (c *Controller) handleSignals(sigs <-chan os.Signal, quit <-chan struct{}) {
	for {
		select {
		case <-quit:
			return
		case s := <-sigs:
			sig, ok := s.(syscall.Signal)
			if !ok {
				continue
			}
			switch {
			case sig == syscall.SIGTERM, sig == syscall.SIGINT:
				select {
				case <-c.stopCh:
					c.log.Info("signal, already stopping", "signal", sig.String())
				default:
					c.log.Info("signal, stopping", "signal", sig.String())
					c.requestStop(useServiceCode, nil)
				}
			case ownSignal(sig), !forwarded(sig):
				c.log.Debug("signal not forwarded", "signal", sig.String())
			default:
				if c.svc == nil {
					continue
				}
				if err := c.svc.forward(sig); err != nil {
					c.log.Warn("forward signal", "signal", sig.String(), "err", err)
				} else {
					c.log.Info("forwarded signal", "signal", sig.String())
				}
			}
		}
	}
}

// The signals, as the controller treats them (the README lists the same):
//
//   - SIGTERM and SIGINT stop the controller.
//   - ownSignal: SIGPIPE, SIGXFSZ and SIGXCPU are raised by ccctl's own
//     sockets, pipes, file writes and CPU limit, so they say nothing to the
//     service. They are caught and dropped: a write to a closed socket or
//     pipe, or past the file size limit, then fails with an error instead
//     of ending ccctl.
//   - Not caught: SIGKILL and SIGSTOP (they cannot be); SIGCHLD (ccctl reaps
//     its children itself); SIGURG and SIGPROF (the Go runtime's); the
//     synchronous signals SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS
//     and SIGABRT, and SIGTTIN and SIGTTOU, which tini does not forward
//     either: sent to ccctl they have their default effect on ccctl.
//   - Every other signal from 1 to 31 is forwarded to the service's main
//     process: SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGSTKFLT,
//     SIGCONT, SIGTSTP, SIGVTALRM, SIGWINCH, SIGIO and SIGPWR.

// ownSignal reports whether sig is raised by ccctl's own sockets, pipes,
// files or limits: caught, and never forwarded.
func ownSignal(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGPIPE, syscall.SIGXFSZ, syscall.SIGXCPU:
		return true
	}
	return false
}

// forwarded reports whether sig, received by ccctl, is passed on to the
// service.
func forwarded(sig syscall.Signal) bool {
	if sig < 1 || sig > 31 || ownSignal(sig) {
		return false
	}
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, // they stop the controller
		syscall.SIGKILL, syscall.SIGSTOP, // cannot be caught
		syscall.SIGCHLD,                 // ccctl reaps
		syscall.SIGURG, syscall.SIGPROF, // the Go runtime's
		syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, // synchronous
		syscall.SIGTRAP, syscall.SIGSYS, syscall.SIGABRT,
		syscall.SIGTTIN, syscall.SIGTTOU: // tini leaves them too
		return false
	}
	return true
}

// caught lists the signals the controller catches: SIGTERM, SIGINT, the
// signals of its own making (to drop them) and the forwarded ones.
func caught() []os.Signal {
	sigs := []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	for s := syscall.Signal(1); s <= 31; s++ {
		if ownSignal(s) || forwarded(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// notifyRole tells the extensions the role, unless they were told this one
// already, or lead (the term that made the role, nil for a slave) has
// already ended: its end was told instead.
func (c *Controller) notifyRole(role coordinator.Role, token int64, lead coordinator.Leadership) {
	c.extMu.Lock()
	defer c.extMu.Unlock()
	if lead != nil {
		select {
		case <-lead.Done():
			return
		default:
		}
	}
	c.tellLocked(role, token)
}

// tellLocked tells the extensions role and token, unless they were told
// these already. c.extMu must be held.
func (c *Controller) tellLocked(role coordinator.Role, token int64) {
	if c.extTold && c.extRole == role && c.extToken == token {
		return
	}
	c.extTold, c.extRole, c.extToken = true, role, token
	for _, e := range c.cfg.Extensions {
		e.RoleChanged(role, token)
	}
}

// termStarted records the term with token as this member's current one.
func (c *Controller) termStarted(token int64) {
	c.extMu.Lock()
	defer c.extMu.Unlock()
	c.term = token
	c.metrics.isMaster.Set(1)
}

// termEnded reports at once, to the metrics and the extensions, that the
// term with token has ended, unless a newer term has started since: the end
// of an old term, seen late, must not demote the term that followed it.
func (c *Controller) termEnded(token int64) {
	c.extMu.Lock()
	defer c.extMu.Unlock()
	if c.term != token {
		return
	}
	c.term = 0
	c.metrics.isMaster.Set(0)
	c.tellLocked(coordinator.RoleSlave, 0)
}

func sortedMembers(m map[string]coordinator.Member) []coordinator.Member {
	out := make([]coordinator.Member, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
