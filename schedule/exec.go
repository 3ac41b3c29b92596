package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// execution is one run of a job, from its jitter to its end.
type execution struct {
	slot   time.Time
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the run has ended and its status is recorded
}

// start begins a run of j for slot in its own goroutine; the returned
// execution's done channel is closed when it has ended.
func (s *Scheduler) start(base context.Context, j *job, slot time.Time, role coordinator.Role, token int64, catchUp bool, log *slog.Logger) *execution {
	info := RunInfo{Job: j.Name, Slot: slot, Role: role, Token: token}
	ctx, cancel := context.WithCancelCause(context.WithValue(base, runInfoKey{}, info))
	e := &execution{slot: slot, cancel: cancel, done: make(chan struct{})}
	log = log.With("slot", slot)
	go func() {
		defer close(e.done)
		defer cancel(nil)
		s.execute(ctx, cancel, j, info, catchUp, log)
	}()
	return e
}

func (s *Scheduler) execute(ctx context.Context, cancel context.CancelCauseFunc, j *job, info RunInfo, catchUp bool, log *slog.Logger) {
	if d := jitter(j.Jitter); d > 0 {
		t := s.clk.NewTimer(d)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			log.Info("job run cancelled before it started", "reason", context.Cause(ctx))
			return
		}
	}
	if j.Role == RoleMaster && s.claimer != nil {
		won, err := s.claimer.ClaimSlot(ctx, j.Name, info.Slot, s.retention(j))
		switch {
		case err != nil:
			log.Error("job not run: claim slot failed", "err", err)
			s.updateStatus(j.Name, func(st *Status) {
				st.Slot, st.Result, st.Error = info.Slot, ResultFailed, fmt.Sprintf("claim slot: %v", err)
			})
			return
		case !won:
			if catchUp {
				log.Info("job slot already taken by another member")
			} else {
				log.Warn("job slot already taken by another member")
			}
			return
		}
	}
	if ctx.Err() != nil {
		log.Info("job run cancelled before it started", "reason", context.Cause(ctx))
		return
	}
	if r, tok := s.currentRole(); !j.Role.matches(r) || (j.Role == RoleMaster && tok != info.Token) {
		log.Info("job run not started: role changed", "role", string(r))
		return
	}
	if j.Timeout > 0 {
		t := s.clk.AfterFunc(j.Timeout, func() { cancel(ErrTimeout) })
		defer t.Stop()
	}
	begin := s.clk.Now()
	s.updateStatus(j.Name, func(st *Status) { st.LastRun, st.Slot = begin, info.Slot })
	s.metrics.started(j)
	log.Info("job started", "catch_up", catchUp)
	var err error
	if j.Func != nil {
		err = runFunc(ctx, j.Func)
	} else {
		err = s.runCommand(ctx, j, info, log)
	}
	dur := s.clk.Since(begin)
	res := ResultSuccess
	if err != nil {
		res = ResultFailed
		if ctx.Err() != nil {
			switch cause := context.Cause(ctx); {
			case errors.Is(cause, ErrTimeout):
				res = ResultDeadlineExceeded
			default:
				res = ResultCancelled
			}
			if cause := context.Cause(ctx); !errors.Is(err, cause) {
				err = fmt.Errorf("%w: %w", cause, err)
			}
		}
	}
	s.metrics.finished(j, res, dur)
	s.updateStatus(j.Name, func(st *Status) {
		st.Result, st.Duration, st.Error = res, dur, ""
		if err != nil {
			st.Error = err.Error()
		}
	})
	if err != nil {
		log.Warn("job ended", "result", string(res), "duration", dur, "err", err)
	} else {
		log.Info("job ended", "result", string(res), "duration", dur)
	}
}

// runFunc runs f, turning a panic into an error.
func runFunc(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job panicked: %v", r)
		}
	}()
	return f(ctx)
}

func (s *Scheduler) runCommand(ctx context.Context, j *job, info RunInfo, log *slog.Logger) error {
	cmd := exec.Command(j.Command[0], j.Command[1:]...)
	cmd.Env = append(os.Environ(),
		"CC_JOB="+j.Name,
		"CC_SCHEDULED_TIME="+info.Slot.Format(time.RFC3339),
		"CC_ROLE="+string(info.Role),
		"CC_FENCING_TOKEN="+strconv.FormatInt(info.Token, 10),
		"CC_INSTANCE_ID="+s.member,
	)
	stdout := &lineLogger{log: log, stream: "stdout"}
	stderr := &lineLogger{log: log, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	st, err := proc.Run(ctx, cmd, s.grace)
	stdout.flush()
	stderr.flush()
	if err != nil {
		return fmt.Errorf("run %s: %w", j.Command[0], err)
	}
	return st.Err()
}

// maxLine bounds one logged line; longer output is split.
const maxLine = 64 << 10

// lineLogger logs what is written to it, one log line per line of output.
type lineLogger struct {
	log    *slog.Logger
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= maxLine {
				l.emit(l.buf[:maxLine])
				l.buf = l.buf[maxLine:]
				continue
			}
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineLogger) emit(line []byte) {
	l.log.Info("job output", "stream", l.stream, "line", string(bytes.TrimSuffix(line, []byte("\r"))))
}
