package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// HookName names the event a hook runs for. The names are the original
// docker-cluster-controller's method names and the keys of `hooks.<name>` in
// the YAML configuration.
type HookName string

// The hook events, in the order a healthy member may see them.
const (
	// HookStart runs once, after registration and before the role is
	// decided.
	HookStart HookName = "start"
	// HookStartedAsMaster is the init hook of a member that starts as
	// master; it returns before the service starts.
	HookStartedAsMaster HookName = "started_as_master"
	// HookStartedAsSlave is the init hook of a member that starts as slave;
	// it returns before the service starts.
	HookStartedAsSlave HookName = "started_as_slave"
	// HookTransitionSlaveToMaster runs when a slave wins the leadership.
	HookTransitionSlaveToMaster HookName = "transition_slave_to_master"
	// HookTransitionMasterToSlave runs when a master hands over or loses
	// the leadership.
	HookTransitionMasterToSlave HookName = "transition_master_to_slave"
	// HookMasterChanged runs on a slave that sees a new master.
	HookMasterChanged HookName = "master_changed"
	// HookMembersAdded runs when members joined the cluster.
	HookMembersAdded HookName = "members_added"
	// HookMembersRemoved runs when members left the cluster.
	HookMembersRemoved HookName = "members_removed"
	// HookBecameActive runs when every port of PortsWhenActive accepts a
	// TCP connection.
	HookBecameActive HookName = "became_active"
	// HookStopping runs first when the controller stops, before the
	// service is sent SIGTERM.
	HookStopping HookName = "stopping"
)

// HookNames lists every hook name, in the order of the constants.
var HookNames = []HookName{
	HookStart, HookStartedAsMaster, HookStartedAsSlave,
	HookTransitionSlaveToMaster, HookTransitionMasterToSlave, HookMasterChanged,
	HookMembersAdded, HookMembersRemoved, HookBecameActive, HookStopping,
}

// ParseHookName returns the HookName spelled s, or an error naming the
// valid names.
func ParseHookName(s string) (HookName, error) {
	for _, n := range HookNames {
		if string(n) == s {
			return n, nil
		}
	}
	return "", fmt.Errorf("parse hook name %q: want one of %v", s, HookNames)
}

// HookEvent is what a hook is told: the event and the member's view of the
// cluster when it runs. Shell hooks get it as CC_* environment variables
// (see Environ).
type HookEvent struct {
	// Name is the event.
	Name HookName
	// Role is the member's role after the event (empty for the start
	// hook, which runs before the role is decided).
	Role coordinator.Role
	// PreviousRole is the role before the event (empty before the first
	// role).
	PreviousRole coordinator.Role
	// InstanceID is this member's id.
	InstanceID string
	// Environment and Service name the cluster.
	Environment, Service string
	// Master is the record of the current master, as far as known (zero
	// when there is none).
	Master coordinator.Member
	// Token is the fencing token of the current master's term (this
	// member's own when it is master), 0 when there is no master.
	Token int64
	// Members are the records of every registered member, sorted by id.
	Members []coordinator.Member
	// Added and Removed are the members that joined or left, for
	// members_added and members_removed.
	Added, Removed []coordinator.Member
	// Position is this member's replication position as its
	// PositionSource last told it (nil: unknown, or no source).
	Position *int64
	// Stdout and Stderr are where a hook's output should go: the
	// controller's own (nil means discard).
	Stdout, Stderr io.Writer
}

// Environ returns the event as CC_* environment variables: CC_EVENT,
// CC_ROLE, CC_PREVIOUS_ROLE, CC_INSTANCE_ID, CC_ENVIRONMENT, CC_SERVICE,
// CC_MASTER_ID, CC_MASTER_HOST, CC_MASTER_ADDRESS, CC_FENCING_TOKEN (empty
// when 0), CC_POSITION (this member's position, empty when unknown),
// CC_MEMBERS (a JSON array of member records), and for membership events
// CC_MEMBERS_ADDED and CC_MEMBERS_REMOVED (JSON arrays of records).
func (ev HookEvent) Environ() []string {
	env := []string{"CC_EVENT=" + string(ev.Name)}
	env = append(env, ev.serviceEnviron()...)
	pos := ""
	if ev.Position != nil {
		pos = strconv.FormatInt(*ev.Position, 10)
	}
	env = append(env,
		"CC_PREVIOUS_ROLE="+string(ev.PreviousRole),
		"CC_POSITION="+pos,
		"CC_MEMBERS="+membersJSON(ev.Members),
	)
	switch ev.Name {
	case HookMembersAdded, HookMembersRemoved:
		env = append(env,
			"CC_MEMBERS_ADDED="+membersJSON(ev.Added),
			"CC_MEMBERS_REMOVED="+membersJSON(ev.Removed),
		)
	}
	return env
}

// serviceEnviron is the part of the environment the service also gets.
func (ev HookEvent) serviceEnviron() []string {
	token := ""
	if ev.Token != 0 {
		token = strconv.FormatInt(ev.Token, 10)
	}
	return []string{
		"CC_ROLE=" + string(ev.Role),
		"CC_INSTANCE_ID=" + ev.InstanceID,
		"CC_ENVIRONMENT=" + ev.Environment,
		"CC_SERVICE=" + ev.Service,
		"CC_MASTER_ID=" + ev.Master.ID,
		"CC_MASTER_HOST=" + ev.Master.Host,
		"CC_MASTER_ADDRESS=" + ev.Master.Address,
		"CC_FENCING_TOKEN=" + token,
	}
}

func membersJSON(ms []coordinator.Member) string {
	if ms == nil {
		ms = []coordinator.Member{}
	}
	b, err := json.Marshal(ms)
	if err != nil {
		return "[]"
	}
	return string(b)
}

// Hook is something run on an event: a Go function (HookFunc) or a command
// (Command, Shell). RunHook must return when ctx is done; ctx is cancelled
// when the hook's timeout passes, never because a later event happened.
type Hook interface {
	RunHook(ctx context.Context, ev HookEvent) error
}

// HookFunc is a hook written in Go.
type HookFunc func(ctx context.Context, ev HookEvent) error

// RunHook calls f.
func (f HookFunc) RunHook(ctx context.Context, ev HookEvent) error { return f(ctx, ev) }

// hookStopGrace is how long a command hook whose timeout passed gets
// between SIGTERM and SIGKILL.
const hookStopGrace = 2 * time.Second

type commandHook struct{ argv []string }

// Command returns a hook that executes argv directly (argv[0] is looked up
// in PATH), in its own process group, with the controller's environment
// plus the event's CC_* variables (HookEvent.Environ). A non-zero exit is
// the hook's failure. When the timeout passes, the hook's group gets
// SIGTERM, then SIGKILL 2 seconds later.
func Command(argv []string) Hook { return commandHook{argv: append([]string(nil), argv...)} }

// Shell returns a hook that runs script with /bin/sh -c, as Command does.
func Shell(script string) Hook { return Command([]string{"/bin/sh", "-c", script}) }

func (h commandHook) RunHook(ctx context.Context, ev HookEvent) error {
	if len(h.argv) == 0 || h.argv[0] == "" {
		return errors.New("run command hook: empty command")
	}
	cmd := exec.Command(h.argv[0], h.argv[1:]...)
	cmd.Env = append(os.Environ(), ev.Environ()...)
	cmd.Stdout, cmd.Stderr = ev.Stdout, ev.Stderr
	st, err := proc.Run(ctx, cmd, hookStopGrace)
	if err != nil {
		return fmt.Errorf("run %s: %w", h.argv[0], err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("run %s: %w (%s)", h.argv[0], context.Cause(ctx), st)
	}
	if err := st.Err(); err != nil {
		return fmt.Errorf("run %s: %w", h.argv[0], err)
	}
	return nil
}

type timeoutHook struct {
	Hook
	timeout time.Duration
}

// WithTimeout returns h with its own timeout, which replaces
// Config.HookTimeout for it.
func WithTimeout(h Hook, d time.Duration) Hook { return timeoutHook{Hook: h, timeout: d} }

// ErrHookTimeout is the cause of a hook's context when its timeout passed.
var ErrHookTimeout = errors.New("lifecycle: hook timed out")

// clockTimeout returns a context cancelled with ErrHookTimeout after d on
// clk, and its cancel function.
func clockTimeout(ctx context.Context, clk clock.Clock, d time.Duration) (context.Context, func()) {
	return clockTimeoutCause(ctx, clk, d, ErrHookTimeout)
}

// clockTimeoutCause is clockTimeout with cause as the context's cause.
func clockTimeoutCause(ctx context.Context, clk clock.Clock, d time.Duration, cause error) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := clk.AfterFunc(d, func() { cancel(cause) })
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}
