package lifecycle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// Exit codes of Run for the controller's own outcomes. Otherwise Run returns
// the service's exit code, 128+N when the service died of signal N.
const (
	// ExitOK means that the controller stopped cleanly with no service to
	// report.
	ExitOK = 0
	// ExitFailure means that the controller failed for a reason with no code
	// of its own (an extension or actor failed). A service that cannot be started
	// gives 127 when its command is not found, 126 when it is not
	// executable, as a shell does.
	ExitFailure = 1
	// ExitBadConfig means that the configuration is invalid (New failed).
	ExitBadConfig = 2
	// ExitBackendUnavailable means that the backend could not be reached in
	// time at start-up, or that a lost session could not be replaced (a
	// backend without coordinator.Reopener).
	ExitBackendUnavailable = 3
	// ExitInitHookFailed means that the start hook or the role's init hook
	// failed.
	ExitInitHookFailed = 4
	// ExitLeadershipLost means that the leadership was lost and
	// OnLeadershipLost is LeadershipLostExit.
	ExitLeadershipLost = 5
)

// Defaults of Config.
const (
	DefaultHookTimeout         = 60 * time.Second
	DefaultGracePeriod         = 8 * time.Second
	DefaultActiveCheckInterval = time.Second
)

// LeadershipLostAction says what a master does when it loses the
// leadership without having resigned.
type LeadershipLostAction string

// The actions on loss of leadership.
const (
	// LeadershipLostDemote runs transition_master_to_slave and keeps
	// campaigning; the service keeps running. The default.
	LeadershipLostDemote LeadershipLostAction = "demote"
	// LeadershipLostRestart stops the service (as a stop does: SIGTERM,
	// grace, SIGKILL, whole group), runs transition_master_to_slave, starts
	// the service again as slave and keeps campaigning.
	LeadershipLostRestart LeadershipLostAction = "restart"
	// LeadershipLostExit stops the controller with ExitLeadershipLost.
	LeadershipLostExit LeadershipLostAction = "exit"
)

// ParseLeadershipLostAction returns the action spelled s ("" is the
// default, demote).
func ParseLeadershipLostAction(s string) (LeadershipLostAction, error) {
	switch a := LeadershipLostAction(s); a {
	case "":
		return LeadershipLostDemote, nil
	case LeadershipLostDemote, LeadershipLostRestart, LeadershipLostExit:
		return a, nil
	}
	return "", fmt.Errorf("parse leadership-lost action %q: want demote, restart or exit", s)
}

// Service is the command the controller supervises.
type Service struct {
	// Argv is the command and its arguments; argv[0] is looked up in PATH.
	// Empty means no service: the controller runs alone.
	Argv []string
	// Env is added to the controller's own environment, after which the
	// controller adds CC_ROLE, CC_INSTANCE_ID, CC_ENVIRONMENT, CC_SERVICE,
	// CC_MASTER_ID, CC_MASTER_HOST, CC_MASTER_ADDRESS and CC_FENCING_TOKEN
	// as they are when the service starts.
	Env []string
	// Dir is the working directory ("" is the controller's).
	Dir string
	// Stdin is the service's standard input (nil: none, /dev/null). The
	// hooks never read it.
	Stdin io.Reader
}

// Extension is a part that runs alongside the controller, such as the job
// scheduler, and follows the member's role.
type Extension interface {
	// Run runs until ctx is done; a non-nil error stops the controller.
	Run(ctx context.Context) error
	// RoleChanged is called, in order, after the init hook of the first role and after
	// each role transition's hook ran (and before a demotion's hook when leadership is
	// lost, so master-only work stops first).
	RoleChanged(role coordinator.Role, token int64)
}

// Actor is an extra part of the run group, such as the HTTP server. When
// Execute returns, the controller stops; Interrupt must make Execute return
// and be safe to call after it returned (the contract of run.Group.Add).
type Actor struct {
	Execute   func() error
	Interrupt func(error)
}

// Config configures a Controller. The zero values of optional fields are
// the documented defaults.
type Config struct {
	// Coordinator is this member's handle on its cluster, already opened.
	// Run registers, campaigns, and closes it at the end. Required.
	Coordinator coordinator.Coordinator
	// Member is the template of the member record: Host, Address, Ports,
	// Version. ID must be empty or the Coordinator's ID; Role, State, Token
	// and StartedAt are set by the controller.
	Member coordinator.Member
	// Service is the supervised command; an empty Argv runs the controller
	// alone. Its standard input is /dev/null.
	Service Service
	// Hooks are run on each event, in the order of the list; the first to
	// fail ends the list.
	Hooks map[HookName][]Hook
	// HookTimeout bounds each hook (default DefaultHookTimeout).
	HookTimeout time.Duration
	// GracePeriod is the time between SIGTERM and SIGKILL when the service
	// is stopped (default DefaultGracePeriod), measured on the real clock.
	GracePeriod time.Duration
	// PortsWhenActive are the local TCP ports that must all accept a
	// connection before the member is active. Empty: active as soon as
	// the service runs.
	PortsWhenActive []int
	// ActiveCheckInterval is how often the ports are probed, on Clock
	// (default DefaultActiveCheckInterval).
	ActiveCheckInterval time.Duration
	// TerminateWhenNoLongerActive stops the controller when an active
	// service stops accepting connections on one of PortsWhenActive; Run
	// then returns the service's exit code after its stop.
	TerminateWhenNoLongerActive bool
	// OnLeadershipLost is what a master does when it loses the leadership
	// (default LeadershipLostDemote).
	OnLeadershipLost LeadershipLostAction
	// PositionSource, when set, tells this member's replication position
	// (ShellPosition runs a command): read every PositionInterval, and at
	// once when the leadership is seen vacant, and published in the
	// member's record (Member.Position, PositionAt) whenever it or its
	// known-ness changes; a failure publishes no position. Hooks get it as
	// CC_POSITION.
	PositionSource PositionSource
	// PositionInterval is how often PositionSource is read, start to start,
	// on Clock (default DefaultPositionInterval).
	PositionInterval time.Duration
	// PositionTimeout bounds one read of PositionSource, on Clock (default
	// PositionInterval); its context is then cancelled with
	// ErrPositionTimeout and the position is unknown.
	PositionTimeout time.Duration
	// Extensions run alongside the controller and follow its role.
	Extensions []Extension
	// Actors are extra parts of the run group (an HTTP server).
	Actors []Actor
	// Locks, when set, reports the filesystem locks for Status.
	Locks LockReporter
	// Registerer, when set, gets the controller's Prometheus collectors.
	Registerer prometheus.Registerer
	// Logger logs the controller's events (default slog.Default()); every
	// line carries the member id.
	Logger *slog.Logger
	// Clock tells time for hook timeouts and port probes (default
	// clock.Real()).
	Clock clock.Clock
	// Stdout and Stderr are the service's and the command hooks' output
	// (default os.Stdout and os.Stderr). An *os.File is passed straight
	// to the child, with no pipe that could fill.
	Stdout, Stderr io.Writer
	// Signals, when set, is read instead of the process's own signals
	// (embedding, tests). When nil, the controller subscribes to every
	// signal it can catch except SIGCHLD, SIGURG and SIGPROF.
	Signals <-chan os.Signal
	// Reap makes Run reap every child of the process, orphans included, and
	// register as child subreaper when not PID 1 (proc.EnableReaping). The
	// ccctl binary sets it; nothing else in the process may then start
	// children other than through internal/sys/proc.
	Reap bool
}

// ErrInvalidConfig is wrapped by every error of New. It is
// coordinator.ErrInvalidConfig: one error for a bad configuration, whichever
// part found it.
var ErrInvalidConfig = coordinator.ErrInvalidConfig

// validate checks cfg and fills in its defaults.
func (cfg *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if cfg.Coordinator == nil {
		return bad("coordinator is required")
	}
	if id := cfg.Member.ID; id != "" && id != cfg.Coordinator.ID() {
		return bad("member id %q differs from the coordinator's %q", id, cfg.Coordinator.ID())
	}
	for name, hooks := range cfg.Hooks {
		if _, err := ParseHookName(string(name)); err != nil {
			return bad("hooks: %v", err)
		}
		for i, h := range hooks {
			if h == nil {
				return bad("hooks.%s[%d] is nil", name, i)
			}
			if c, ok := h.(commandHook); ok && (len(c.argv) == 0 || c.argv[0] == "") {
				return bad("hooks.%s[%d]: empty command", name, i)
			}
			if t, ok := h.(timeoutHook); ok && t.timeout <= 0 {
				return bad("hooks.%s[%d]: timeout %v: want > 0", name, i, t.timeout)
			}
		}
	}
	if cfg.HookTimeout < 0 {
		return bad("hook timeout %v: want >= 0", cfg.HookTimeout)
	}
	if cfg.HookTimeout == 0 {
		cfg.HookTimeout = DefaultHookTimeout
	}
	if cfg.GracePeriod < 0 {
		return bad("grace period %v: want >= 0", cfg.GracePeriod)
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.ActiveCheckInterval < 0 {
		return bad("active check interval %v: want >= 0", cfg.ActiveCheckInterval)
	}
	if cfg.ActiveCheckInterval == 0 {
		cfg.ActiveCheckInterval = DefaultActiveCheckInterval
	}
	if cfg.PositionInterval < 0 {
		return bad("position interval %v: want >= 0", cfg.PositionInterval)
	}
	if cfg.PositionInterval == 0 {
		cfg.PositionInterval = DefaultPositionInterval
	}
	if cfg.PositionTimeout < 0 {
		return bad("position timeout %v: want >= 0", cfg.PositionTimeout)
	}
	if cfg.PositionTimeout == 0 {
		cfg.PositionTimeout = cfg.PositionInterval
	}
	if len(cfg.Service.Argv) > 0 && cfg.Service.Argv[0] == "" {
		return bad("service: empty command name")
	}
	seen := map[int]bool{}
	for _, p := range cfg.PortsWhenActive {
		if p < 1 || p > 65535 {
			return bad("ports when active: %d: want 1 to 65535", p)
		}
		if seen[p] {
			return bad("ports when active: %d listed twice", p)
		}
		seen[p] = true
	}
	if len(cfg.PortsWhenActive) > 0 && len(cfg.Service.Argv) == 0 {
		return bad("ports when active need a service")
	}
	if cfg.TerminateWhenNoLongerActive && len(cfg.PortsWhenActive) == 0 {
		return bad("terminate when no longer active needs ports when active")
	}
	a, err := ParseLeadershipLostAction(string(cfg.OnLeadershipLost))
	if err != nil {
		return bad("%v", err)
	}
	cfg.OnLeadershipLost = a
	for i, e := range cfg.Extensions {
		if e == nil {
			return bad("extensions[%d] is nil", i)
		}
	}
	for i, a := range cfg.Actors {
		if a.Execute == nil || a.Interrupt == nil {
			return bad("actors[%d]: execute and interrupt are required", i)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	return nil
}
