// Package proc starts child processes and owns every wait for them.
//
// ccctl is often PID 1 of its container, where orphaned grandchildren of the
// service are re-parented to it and must be reaped, or they pile up as
// zombies. A reaper that calls wait4(-1) races with exec.Cmd.Wait (one of
// them gets "no child processes"), so in ccctl every child is started through
// this package and every wait goes through one place:
//
//   - Without reaping (the default, and in tests), each Process is waited for
//     by its own exec.Cmd.Wait.
//   - After EnableReaping, one goroutine reaps every child of the process on
//     SIGCHLD (wait4(-1)), hands the status of the children started here to
//     their Process, and discards the status of orphans. Start holds the
//     reaper off while it starts and records a child, so no status is lost.
//
// After EnableReaping, nothing else in the process may start children with
// os/exec or os.StartProcess directly: their waits would fail.
//
// Every child runs in its own process group (Setpgid), so that a stop reaches
// its whole tree, and gets SIGKILL from the kernel when this process dies
// (PR_SET_PDEATHSIG), so that no child outlives a ccctl killed by SIGKILL,
// PID 1 or not. The kernel sends that signal when the thread that forked the
// child ends, not the process, and a Go thread may end before its process
// (when a goroutine locked to it returns), so every child is forked from one
// goroutine locked to its thread for the life of the process. What is not
// guaranteed: the child's own children get no such signal (they are
// re-parented, and die only with a PID namespace or a cgroup that is
// killed), and the kernel clears the setting when the child executes a
// set-user-ID, set-group-ID or file-capability binary. Standard input, output and error may be any io.Reader or
// io.Writer; when they are not *os.File, proc copies through a pipe and stops
// copying at most WaitDelay after the child exited, so that a grandchild that
// keeps the pipe open cannot hang the caller.
//
// EnableReaping refuses while a child started without reaping still runs:
// that child's own exec.Cmd.Wait would race with the reaper. What is not
// guaranteed: the goroutine that copies a Stdin that is not an *os.File
// ends only when a read from it returns.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// WaitDelay is how long output copying may go on after a child exited.
const WaitDelay = 2 * time.Second

// Status is how a child ended.
type Status struct {
	// Code is the exit code when the child exited, -1 when it was killed.
	Code int
	// Signal is the signal that killed it, 0 when it exited.
	Signal syscall.Signal
}

// ExitCode returns the code a shell would report: the exit code, or 128+N
// when the child died of signal N.
func (s Status) ExitCode() int {
	if s.Signal != 0 {
		return 128 + int(s.Signal)
	}
	return s.Code
}

// Success reports whether the child exited with code 0.
func (s Status) Success() bool { return s.Signal == 0 && s.Code == 0 }

// String describes the status: "exit status 3" or "signal: killed".
func (s Status) String() string {
	if s.Signal != 0 {
		return "signal: " + s.Signal.String()
	}
	return fmt.Sprintf("exit status %d", s.Code)
}

// Err returns nil on success, else an *ExitError.
func (s Status) Err() error {
	if s.Success() {
		return nil
	}
	return &ExitError{Status: s}
}

// ExitError reports a child that did not exit with 0.
type ExitError struct{ Status Status }

func (e *ExitError) Error() string { return e.Status.String() }

func fromWaitStatus(ws syscall.WaitStatus) Status {
	if ws.Signaled() {
		return Status{Code: -1, Signal: ws.Signal()}
	}
	return Status{Code: ws.ExitStatus()}
}

// Process is a started child.
type Process struct {
	// Pid is the child's process id, which is also its process group id.
	Pid int

	cmd       *exec.Cmd
	reaped    atomic.Bool // the child was waited for: its pid may be reused
	done      chan struct{}
	status    Status
	closers   []io.Closer // parent ends of pipes, closed after the child exited
	childEnds []io.Closer // child ends of pipes, closed once the child started
	copying   sync.WaitGroup
}

var reaper struct {
	sync.Mutex
	enabled bool
	started map[int]*Process
	own     int // children started without reaping whose own Wait has not returned
}

// Start starts cmd in a new process group. cmd must not have been started,
// and must not be made with exec.CommandContext (use Run for a context).
func Start(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &Process{cmd: cmd, done: make(chan struct{})}
	if err := p.pipes(); err != nil {
		return nil, err
	}

	reaper.Lock()
	var err error
	onForkThread(func() { err = cmd.Start() })
	reaping := reaper.enabled
	if err == nil {
		p.Pid = cmd.Process.Pid
		if reaping {
			reaper.started[p.Pid] = p
		} else {
			reaper.own++
		}
	}
	reaper.Unlock()
	p.closeChildEnds()
	if err != nil {
		p.closeParentEnds()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	if !reaping {
		go p.waitOwn()
	}
	return p, nil
}

// forker runs every cmd.Start on one goroutine that locks its OS thread and
// never returns, so the thread that forked a child (whose end sends the
// child its Pdeathsig) lives as long as the process.
var forker struct {
	once sync.Once
	reqs chan func()
}

// onForkThread runs f on the forker's thread and returns when f returned.
func onForkThread(f func()) {
	forker.once.Do(func() {
		forker.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must not end
			for f := range forker.reqs {
				f()
			}
		}()
	})
	done := make(chan struct{})
	forker.reqs <- func() {
		defer close(done)
		f()
	}
	<-done
}

// pipes replaces non-file stdio by pipes copied in goroutines.
func (p *Process) pipes() error {
	var childEnds []io.Closer
	fail := func(err error) error {
		for _, c := range childEnds {
			c.Close()
		}
		p.closeParentEnds()
		return fmt.Errorf("start %s: %w", p.cmd.Path, err)
	}
	if r := p.cmd.Stdin; r != nil {
		if _, ok := r.(*os.File); !ok {
			pr, pw, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			p.cmd.Stdin = pr
			childEnds = append(childEnds, pr)
			p.closers = append(p.closers, pw)
			go func() {
				io.Copy(pw, r)
				pw.Close()
			}()
		}
	}
	for _, w := range []*io.Writer{&p.cmd.Stdout, &p.cmd.Stderr} {
		if *w == nil {
			continue
		}
		if _, ok := (*w).(*os.File); ok {
			continue
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		dst := *w
		*w = pw
		childEnds = append(childEnds, pw)
		p.closers = append(p.closers, pr)
		p.copying.Add(1)
		go func() {
			defer p.copying.Done()
			io.Copy(dst, pr)
		}()
	}
	p.childEnds = childEnds
	return nil
}

func (p *Process) closeChildEnds() {
	for _, c := range p.childEnds {
		c.Close()
	}
	p.childEnds = nil
}

func (p *Process) closeParentEnds() {
	for _, c := range p.closers {
		c.Close()
	}
}

func (p *Process) waitOwn() {
	err := p.cmd.Wait()
	p.reaped.Store(true)
	reaper.Lock()
	reaper.own--
	reaper.Unlock()
	st := Status{Code: -1}
	if ps := p.cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			st = fromWaitStatus(ws)
		}
	} else if err != nil {
		st = Status{Code: -1, Signal: syscall.SIGKILL}
	}
	p.finish(st)
}

func (p *Process) finish(st Status) {
	p.status = st
	copied := make(chan struct{})
	go func() {
		p.copying.Wait()
		close(copied)
	}()
	t := time.NewTimer(WaitDelay)
	select {
	case <-copied:
		t.Stop()
	case <-t.C:
	}
	p.closeParentEnds()
	<-copied
	close(p.done)
}

// Done is closed when the child has exited and its output is copied.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the child to exit and returns its status.
func (p *Process) Wait() Status {
	<-p.done
	return p.status
}

// Signal sends sig to the child only. Once the child has been waited for
// (before its output is all copied and Done is closed) it returns
// os.ErrProcessDone and sends nothing, since the pid may belong to another
// process by then.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.reaped.Load() {
		return os.ErrProcessDone
	}
	return syscall.Kill(p.Pid, sig)
}

// SignalGroup sends sig to the child's whole process group. It is not an
// error if the group is already gone.
func (p *Process) SignalGroup(sig syscall.Signal) error {
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// GroupAlive reports whether any process of the child's group still exists.
func (p *Process) GroupAlive() bool {
	return syscall.Kill(-p.Pid, 0) == nil
}

// Stop ends the child's whole group: SIGTERM, then SIGKILL after grace if
// the child has not exited, then SIGKILL to what is left of the group. It
// returns the child's status once the child exited and the group is gone
// (or, for a group member that cannot be reaped here, after a short bound).
func (p *Process) Stop(grace time.Duration) Status {
	p.SignalGroup(syscall.SIGTERM)
	t := time.NewTimer(grace)
	select {
	case <-p.done:
		t.Stop()
	case <-t.C:
		p.SignalGroup(syscall.SIGKILL)
		<-p.done
	}
	p.reapGroup()
	return p.status
}

// reapGroup kills what is left of the group and waits, bounded, until it is
// gone.
func (p *Process) reapGroup() {
	if !p.GroupAlive() {
		return
	}
	p.SignalGroup(syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for p.GroupAlive() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// Run starts cmd, waits for it, and stops its group (Stop with grace) when
// ctx is done first. The error is non-nil only when cmd could not start.
func Run(ctx context.Context, cmd *exec.Cmd, grace time.Duration) (Status, error) {
	p, err := Start(cmd)
	if err != nil {
		return Status{}, err
	}
	select {
	case <-p.done:
		p.reapGroup()
		return p.status, nil
	case <-ctx.Done():
		return p.Stop(grace), nil
	}
}

// EnableReaping makes this process reap every child, its own and orphans
// re-parented to it. When the process is not PID 1 it first registers as a
// child subreaper (PR_SET_CHILD_SUBREAPER), so that orphans of its
// descendants come to it rather than to the host's init. It returns a
// function that reports how many orphans were reaped so far. Calling it
// again has no effect. It fails while a child started before is running:
// that child's own wait would race with the reaper.
func EnableReaping() (orphans func() int64, err error) {
	reaper.Lock()
	defer reaper.Unlock()
	if reaper.enabled {
		return orphanCount, nil
	}
	if reaper.own > 0 {
		return nil, fmt.Errorf("enable reaping: children started before still run (%d)", reaper.own)
	}
	if os.Getpid() != 1 {
		if err := setSubreaper(); err != nil {
			return nil, fmt.Errorf("register as child subreaper: %w", err)
		}
	}
	reaper.enabled = true
	reaper.started = make(map[int]*Process)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	go reapLoop(sigs)
	// A child may have exited before Notify; reap once now.
	sigs <- syscall.SIGCHLD
	return orphanCount, nil
}

var orphansReaped struct {
	sync.Mutex
	n int64
}

func orphanCount() int64 {
	orphansReaped.Lock()
	defer orphansReaped.Unlock()
	return orphansReaped.n
}

func reapLoop(sigs <-chan os.Signal) {
	for range sigs {
		for {
			reaper.Lock()
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				reaper.Unlock()
				continue
			}
			if err != nil || pid <= 0 {
				reaper.Unlock()
				break
			}
			p := reaper.started[pid]
			delete(reaper.started, pid)
			reaper.Unlock()
			if p == nil {
				orphansReaped.Lock()
				orphansReaped.n++
				orphansReaped.Unlock()
				continue
			}
			p.reaped.Store(true)
			p.cmd.Process.Release()
			go p.finish(fromWaitStatus(ws))
		}
	}
}
