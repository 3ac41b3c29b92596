// Package schedule runs scheduled jobs on the members of a cluster: cron
// specifications evaluated in a time zone, on the members holding the role
// each job asks for (master, slave or any), with an overlap policy, a
// timeout and jitter per job.
//
// A Scheduler is the controller's extension: the controller runs Run as one
// actor and calls RoleChanged on every role change. Each job has one
// goroutine that owns its timer, its run in progress and at most one slot
// waiting behind it; every run is waited for before Run returns.
//
// # Schedules
//
// ParseSchedule accepts 5 or 6 cron fields (with seconds first), names of
// months and weekdays, @yearly, @annually, @monthly, @weekly, @daily,
// @midnight, @hourly and "@every <duration>", parsed by
// github.com/robfig/cron/v3. The activation times are computed here, not by
// robfig/cron, to follow ISC cron across daylight-saving changes: a
// fixed-time job due in the skipped hour runs once at the change, and never
// twice in the repeated hour; a wildcard job (a '*' in its seconds, minute or
// hour field) follows the wall clock. "@every d" fires at the multiples of d
// since the Unix epoch, so that all members agree on its slots.
//
// # What is guaranteed
//
//   - A job runs only while the member holds its role (master when not
//     given). When the role is lost, or a master-only run's term is
//     replaced by a new one (a new fencing token), the run's context is
//     cancelled (context.Cause is ErrRoleLost) or the command gets SIGTERM,
//     then SIGKILL after the grace period, to its whole process group.
//   - With a coordinator.SlotClaimer, a master-only job runs at most once per
//     slot across the cluster: the run claims (job, slot) after its jitter
//     and runs only if it won. A member that becomes master runs the latest
//     slot whose time passed at most MissedWindow ago and after its
//     scheduler started, if nobody claimed it; a slot from before it started
//     was never due for it (so a brand-new cluster's first master catches
//     nothing up). Without a SlotClaimer nothing is caught up, since nothing
//     tells whether the slot already ran.
//   - Overlap: skip (default) drops a slot while a run is going; queue keeps
//     at most one slot waiting; replace cancels the run (ErrReplaced) and
//     runs the new slot when it has ended. A run is going from the start of
//     its jitter to its end, its slot claim included.
//   - A timeout cancels the run with ErrTimeout; the clock is the
//     scheduler's, so a fake clock drives it in tests.
//
// # What is not guaranteed
//
//   - Exactly once. A slot claimed by a master that then loses its role or
//     crashes is not run again; a slot missed for longer than MissedWindow
//     (the scheduler was not running, or no member was master) is not run,
//     nor one that passed before the new master's scheduler started.
//     Without a SlotClaimer, master-only jobs are deduplicated only within
//     one member.
//   - No overlap between masters. A cancelled run may still be ending (a
//     Go function that ignores its context, a command within its grace
//     period) when the next master's run starts. Jobs get the fencing token
//     (RunInfoFrom, CC_FENCING_TOKEN) so that what receives their writes can
//     refuse a stale master.
//   - Slots are instants on each member's clock; members whose clocks differ
//     fire at different moments, and a claim only deduplicates them.
//
// # Metrics
//
// With a Registerer, the scheduler exports supercronic's metrics with the
// ccctl prefix, labelled by job: ccctl_currently_running,
// ccctl_executions, ccctl_successful_executions, ccctl_failed_executions
// (failed, timed out or cancelled), ccctl_deadline_exceeded and the
// histogram ccctl_cron_execution_time_seconds.
package schedule
