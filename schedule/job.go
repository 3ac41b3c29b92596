package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

// Role says on which members a job runs.
type Role string

// The roles a job can ask for.
const (
	// RoleMaster runs the job on the master only, at most once per slot
	// across the cluster when the scheduler has a SlotClaimer. It is the
	// default, as in the YAML configuration.
	RoleMaster Role = "master"
	// RoleSlave runs the job on every slave.
	RoleSlave Role = "slave"
	// RoleAny runs the job on every member whatever its role.
	RoleAny Role = "any"
)

// matches reports whether a member in role r should run a job asking for
// role j.
func (j Role) matches(r coordinator.Role) bool {
	switch j {
	case RoleMaster:
		return r == coordinator.RoleMaster
	case RoleSlave:
		return r == coordinator.RoleSlave
	default:
		return true
	}
}

// Overlap says what happens when a slot comes while the previous run of the
// same job is still going.
type Overlap string

// The overlap policies.
const (
	// OverlapSkip drops the new slot (the default).
	OverlapSkip Overlap = "skip"
	// OverlapQueue runs the new slot when the current run ends; at most one
	// slot waits, a later one is dropped.
	OverlapQueue Overlap = "queue"
	// OverlapReplace cancels the current run and runs the new slot once the
	// current run has ended.
	OverlapReplace Overlap = "replace"
)

// Job is one scheduled job. Exactly one of Func and Command is set.
type Job struct {
	// Name identifies the job in logs, metrics, status and slot claims:
	// 1 to 128 letters, digits, '.', '_' or '-'.
	Name string
	// Schedule is a cron specification; see ParseSchedule.
	Schedule string
	// Role is the role a member must hold to run the job; empty means
	// RoleMaster.
	Role Role
	// Func is the job as Go code. Its context is cancelled when the member
	// loses the role, the timeout passes, a replacing run comes, or the
	// scheduler stops; RunInfoFrom gives the slot and fencing token.
	Func func(ctx context.Context) error
	// Command is the job as a program and its arguments, run with the
	// environment of ccctl plus CC_JOB, CC_SCHEDULED_TIME (RFC 3339),
	// CC_ROLE, CC_FENCING_TOKEN and CC_INSTANCE_ID. Each line of its output
	// is logged with the job's name. It is stopped with SIGTERM to its
	// process group, then SIGKILL after the scheduler's grace period.
	Command []string
	// Timeout bounds one run; zero means no bound.
	Timeout time.Duration
	// Overlap is the overlap policy; empty means OverlapSkip.
	Overlap Overlap
	// Jitter delays each run by a random duration in [0, Jitter).
	Jitter time.Duration
}

// ShellCommand returns the Command that runs script with /bin/sh -c, the
// meaning of a YAML command given as a string.
func ShellCommand(script string) []string { return []string{"/bin/sh", "-c", script} }

// Validate checks the job and returns a one-line error naming the job and
// the field at fault. loc is the time zone its schedule is evaluated in
// (nil means UTC).
func (j Job) Validate(loc *time.Location) error {
	_, err := j.parse(loc)
	return err
}

func (j Job) parse(loc *time.Location) (Schedule, error) {
	if err := coordinator.ValidateName("name", j.Name); err != nil {
		return Schedule{}, fmt.Errorf("job %q: %w", j.Name, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("job %s: "+format, append([]any{j.Name}, args...)...)
	}
	sched, err := ParseSchedule(j.Schedule, loc)
	if err != nil {
		return Schedule{}, fail("schedule: %w", err)
	}
	switch j.Role {
	case "", RoleMaster, RoleSlave, RoleAny:
	default:
		return Schedule{}, fail("role %q: want master, slave or any", j.Role)
	}
	switch j.Overlap {
	case "", OverlapSkip, OverlapQueue, OverlapReplace:
	default:
		return Schedule{}, fail("overlap %q: want skip, queue or replace", j.Overlap)
	}
	switch {
	case j.Func == nil && len(j.Command) == 0:
		return Schedule{}, fail("command: empty (want a command or a Go function)")
	case j.Func != nil && len(j.Command) > 0:
		return Schedule{}, fail("command: both a command and a Go function given")
	case len(j.Command) > 0 && j.Command[0] == "":
		return Schedule{}, fail("command: empty program name")
	}
	if j.Timeout < 0 {
		return Schedule{}, fail("timeout %v: negative", j.Timeout)
	}
	if j.Jitter < 0 {
		return Schedule{}, fail("jitter %v: negative", j.Jitter)
	}
	return sched, nil
}

// Result is how a run ended.
type Result string

// The results of a run.
const (
	ResultSuccess          Result = "success"
	ResultFailed           Result = "failed"
	ResultDeadlineExceeded Result = "deadline_exceeded"
	// ResultCancelled means that the member lost the role, a replacing run
	// came, or the scheduler stopped.
	ResultCancelled Result = "cancelled"
)

// Status is what /status shows of one job.
type Status struct {
	// Running reports whether a run is in progress (from its jitter to its
	// end).
	Running bool `json:"running"`
	// LastRun is when the last run started (zero before the first).
	LastRun time.Time `json:"last_run,omitzero"`
	// Slot is the scheduled time the last run was for.
	Slot time.Time `json:"slot,omitzero"`
	// Result is how the last finished run ended (empty before the first).
	Result Result `json:"result,omitempty"`
	// Duration is how long the last finished run took.
	Duration time.Duration `json:"duration"`
	// Error is the last finished run's error, if any.
	Error string `json:"error,omitempty"`
	// Next is the next slot the job is scheduled for.
	Next time.Time `json:"next,omitzero"`
}

// RunInfo describes the run a job's context belongs to.
type RunInfo struct {
	// Job is the job's name.
	Job string
	// Slot is the scheduled time the run is for (not when it started:
	// jitter and catching up come after it).
	Slot time.Time
	// Role is the member's role when the run was started.
	Role coordinator.Role
	// Token is the fencing token of the master's term (0 for other roles).
	Token int64
}

type runInfoKey struct{}

// RunInfoFrom returns the RunInfo of the run ctx was made for.
func RunInfoFrom(ctx context.Context) (RunInfo, bool) {
	ri, ok := ctx.Value(runInfoKey{}).(RunInfo)
	return ri, ok
}

// Reasons a run's context is cancelled, found with context.Cause.
var (
	// ErrRoleLost means that the member no longer holds the role the job
	// needs.
	ErrRoleLost = errors.New("schedule: role lost")
	// ErrReplaced means that a newer slot replaced the run (OverlapReplace).
	ErrReplaced = errors.New("schedule: replaced by a newer run")
	// ErrStopped means that the scheduler is stopping.
	ErrStopped = errors.New("schedule: scheduler stopped")
	// ErrTimeout means that the job's timeout passed.
	ErrTimeout = errors.New("schedule: timeout")
)
