// Package lifecycle is the ccctl controller: it registers a member, elects
// one master per cluster through a coordinator.Coordinator, runs the user's
// hooks for every role and membership change, and supervises the service
// process, fit to run as PID 1 of a container.
//
// A Controller is made by New from a Config and run once by Run, which
// composes its parts with github.com/oklog/run: a signal actor, the
// controller itself, the service, each Extension (the job scheduler, for
// example) and any extra Actor such as an HTTP server. The first part to
// return stops the others.
//
// # What is guaranteed
//
//   - The role's init hook (started_as_master or started_as_slave) has
//     returned before the service is started. When it fails, the service is
//     never started, a master resigns, and Run returns ExitInitHookFailed.
//   - Hooks run one at a time, in the order the changes were seen, each with
//     a timeout (HookTimeout, or WithTimeout for one hook). A running hook is
//     never cancelled by a later change or by a stop: a stop waits for it.
//     The one exception is the loss of the leadership: a master's hook
//     that runs when its term ends (its init hook excepted, which runs
//     before the service starts) is stopped at once, its context cancelled
//     with ErrLeadershipLost (a command hook's group gets SIGTERM, then
//     SIGKILL 2 s later), so that the demotion starts at once.
//   - The demotion has a hard deadline. The instant that matters is when
//     the term's lease can first expire on the server, as the Coordinator
//     reports it (coordinator.ExpiryReporter: for etcd, TTL after the send
//     time of the last acknowledged renewal, that is the backend's margin
//     after the loss). If the demotion (the configured
//     LeadershipLostAction) has not completed halfway to that instant, the
//     service's process group is SIGKILLed, so that it is gone before the
//     instant, and the demotion hook's context is cancelled; the service is
//     then started again as slave, unless the action is exit. A backend
//     that cannot tell the instant gets the kill at once.
//   - The loss of the session is not the end of the member (with a
//     backend that implements coordinator.Reopener, as both of ccctl's
//     do): a master demotes first, as above; then the controller opens a
//     new session (Reopen, which revokes the old lease if the backend
//     still has it), with a backoff of 200 ms growing to 1 s with jitter,
//     for as long as it runs; it registers again under its id with its
//     current record, watches again and campaigns again. A slave's service
//     is never stopped or restarted by this, and no init hook runs again;
//     once the new watch's view is complete, what changed meanwhile
//     (master, members) runs the usual hooks, computed by the same diff.
//     Controller.Coordinator returns the current handle.
//     A hook is run only for a change that still holds when it is about to
//     run: changes seen together are compared with what the hooks were last
//     told, so a member that joined and left in the meantime, or a master
//     that changed and changed back, runs nothing.
//   - The stop is ordered: the stopping hook, SIGTERM to the service's
//     process group, GracePeriod, SIGKILL, a wait until the whole group is
//     gone, and only then the resignation and the closing of the
//     Coordinator, so that the next master never overlaps this one's service.
//   - The loss of leadership is taken from the one place the Coordinator
//     reports it (Leadership.Done). Extensions are told at once, before the
//     demotion's hook runs, so that master-only work stops first; then the
//     configured LeadershipLostAction applies.
//   - Run's exit code is the service's own (128+N when signal N killed it),
//     or one of the Exit* constants for the controller's own failures.
//
// # Details
//
// The start hook runs once after registration, before the role is decided;
// its failure is treated as an init hook's (ExitInitHookFailed). Changes of
// membership and of master seen before the init hook ran run no hook of
// their own: the init hook sees them in CC_MEMBERS and CC_MASTER_*. For
// events that do not change the role, PreviousRole equals Role. A member
// that boots while the cluster is paused with no master starts as slave.
// ExitBackendUnavailable is left for a backend that cannot be reached at the
// first registration, and for a lost session on a backend without
// coordinator.Reopener. A stop asked for
// by a signal or by the caller's ctx returns the service's exit code (0
// when there is no service). An Extension whose Run returns nil before its
// context is done does not stop the controller.
//
// # The replication position
//
// With a PositionSource (ShellPosition runs the position command with
// /bin/sh -c), the controller reads this member's replication position
// every PositionInterval, start to start, from the first registration on,
// master and slaves alike (a master's position is the reference the
// others' lag is measured from, and the backend keeps the last one it
// published), and again at once when its watch reports the leadership
// vacant (coordinator.EventNoLeader), so that the members rank one
// another by fresh positions. Reads run one at a time, each bounded by
// PositionTimeout: a command still running then has its whole process
// group killed. A non-negative integer is the position; an error, a
// non-zero exit, any other output or a timeout make it unknown. The
// record (Member.Position and PositionAt, the time of the read that first
// gave the value) is registered again only when the value or its
// known-ness changed, so an idle member does not write every second; a
// failure is logged when it starts and when its kind changes, and the
// return of a known position once. Hooks get the latest position as
// CC_POSITION, empty when unknown. The runner stops when the stop begins,
// so the record keeps the last position read rather than the failure of a
// stopping service. A vacancy seen while a hook runs is acted on when the
// hook returns; the interval reads go on meanwhile.
//
// # What is not guaranteed
//
// A hook written in Go must return when its context is done: the controller
// waits for it and cannot kill a goroutine: a Go hook that ignores its
// context delays the demotion, though not the kill of the service at the
// deadline. A leader key deleted by hand ends the term while the lease
// lives: another member may then lead at once, before the deadline, which
// stays the lease's expiry. A process frozen by SIGSTOP or a paused container
// cannot act on the loss of leadership until it runs again: receivers of
// the service's writes must check the fencing token (CC_FENCING_TOKEN).
// Signals other than SIGTERM and SIGINT are forwarded to the service's main
// process, not to its whole group; SIGPIPE, SIGXFSZ and SIGXCPU, which
// ccctl's own sockets, pipes, files and limits raise, are caught and never
// forwarded, and the synchronous signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGTRAP, SIGSYS, SIGABRT), SIGTTIN and SIGTTOU are not caught, as tini
// leaves them.
package lifecycle
