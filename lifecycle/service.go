package lifecycle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/ccctl/ccctl/internal/sys/proc"
)

// ServiceExitError is the error of the service actor when the service
// exited on its own.
type ServiceExitError struct{ Status proc.Status }

func (e *ServiceExitError) Error() string { return "service exited: " + e.Status.String() }

// supervisor starts and stops the service and is the service actor: its
// execute returns when the service exits without having been asked to.
type supervisor struct {
	argv           []string
	env            []string
	dir            string
	stdin          io.Reader
	stdout, stderr io.Writer
	grace          time.Duration

	runs chan *proc.Process // processes started, for the actor
	quit chan struct{}      // closed by the controller when it is done with the service
	once sync.Once

	mu       sync.Mutex
	cur      *proc.Process
	stopping *proc.Process // being stopped by stop, until its group is gone
	stopped  map[*proc.Process]bool
}

func newSupervisor(cfg *Config) *supervisor {
	return &supervisor{
		argv:    cfg.Service.Argv,
		env:     cfg.Service.Env,
		dir:     cfg.Service.Dir,
		stdin:   cfg.Service.Stdin,
		stdout:  cfg.Stdout,
		stderr:  cfg.Stderr,
		grace:   cfg.GracePeriod,
		runs:    make(chan *proc.Process, 1),
		quit:    make(chan struct{}),
		stopped: map[*proc.Process]bool{},
	}
}

// errStartService is wrapped when the service could not be started.
var errStartService = errors.New("start service")

// start starts the service with extra environment ccEnv.
func (s *supervisor) start(ccEnv []string) (*proc.Process, error) {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = append(append(os.Environ(), s.env...), ccEnv...)
	cmd.Dir = s.dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.stdin, s.stdout, s.stderr
	p, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errStartService, s.argv[0], err)
	}
	s.mu.Lock()
	s.cur = p
	s.mu.Unlock()
	s.runs <- p
	return p, nil
}

// startExitCode is the exit code for a service that could not start, as a
// shell reports it.
func startExitCode(err error) int {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return 127
	case errors.Is(err, fs.ErrPermission):
		return 126
	}
	return ExitFailure
}

// stop stops the running service, if any: SIGTERM to its group, grace,
// SIGKILL, and a wait until the whole group is gone. It returns the
// service's status and whether there was one.
func (s *supervisor) stop() (proc.Status, bool) {
	s.mu.Lock()
	p := s.cur
	s.cur = nil
	if p != nil {
		s.stopped[p] = true
		s.stopping = p
	}
	s.mu.Unlock()
	if p == nil {
		return proc.Status{}, false
	}
	st := p.Stop(s.grace)
	s.mu.Lock()
	s.stopping = nil
	s.mu.Unlock()
	return st, true
}

// kill sends SIGKILL at once to the group of the service that runs or is
// being stopped, and waits until the group is gone: the hard deadline of a
// demotion. The service actor takes it for a stop of the controller's. It
// reports whether there was a service.
func (s *supervisor) kill() bool {
	s.mu.Lock()
	p := s.cur
	s.cur = nil
	if p != nil {
		s.stopped[p] = true
	} else {
		p = s.stopping
	}
	s.mu.Unlock()
	if p == nil {
		return false
	}
	p.SignalGroup(syscall.SIGKILL)
	p.Stop(0) // waits for the group
	return true
}

// forward sends sig to the service's main process, if it runs.
func (s *supervisor) forward(sig syscall.Signal) error {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// execute is the service actor. It returns a *ServiceExitError when a
// service process exits without having been stopped by the controller, and
// nil once the controller is done with the service.
func (s *supervisor) execute() error {
	for {
		select {
		case <-s.quit:
			return nil
		case p := <-s.runs:
			<-p.Done()
			s.mu.Lock()
			expected := s.stopped[p]
			delete(s.stopped, p)
			s.mu.Unlock()
			if !expected {
				return &ServiceExitError{Status: p.Wait()}
			}
		}
	}
}

// done tells the actor that the controller is done with the service: the
// last process was stopped.
func (s *supervisor) done() { s.once.Do(func() { close(s.quit) }) }
