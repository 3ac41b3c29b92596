// Package memory is the in-process backend of the coordinator contract: many
// members, of one or several clusters, live in one process and share a Store
// that stands in for etcd. It serves tests and examples (with a fake clock,
// so that leases expire without sleeping) and the single-instance local
// default of `ccctl run` (with the real clock).
//
// # What it guarantees
//
// Everything the package comment of coordinator promises, within one
// process: one leader per cluster; fencing tokens taken from a store-wide
// revision that increases on every write, as etcd's does, so tokens strictly
// increase across the terms of a cluster and are never reused; member
// records, campaigns and switchover requests bound to the member's lease;
// Watch streams that start with the current state, report every change in
// the order the store applied it, never drop an event and never block the
// store (each watcher has an unbounded queue).
//
// Each Coordinator renews its lease on a clock timer every RenewInterval; the
// store expires a lease when its clock passes the lease's expiry (last
// renewal + TTL). In one process the renewals of a connected member always
// arrive, so the store counts them on schedule even when the goroutine that
// carries them runs late: a fake clock moved far ahead in one jump expires
// only the members that could not renew (memorytest.Crash, Partition),
// never the others. A member whose renewals stop reaching the store
// (memorytest.Crash, Partition) fences itself: its Leadership.Done and its session's Done close
// at the latest at last acknowledged renewal + TTL - Margin on its own
// timer, and in every case before the store grants the leadership to anybody
// else, because the store ends the expiring session's term under the same
// lock as it grants the next one.
//
// # Ranking
//
// Config.Ranking gives each member a priority and the rules it ranks the
// others by (coordinator.Ranking), the same as the etcd backend's:
//
//   - The record's priority is the member's own (Register publishes
//     Ranking.EffectivePriority, whatever it is given); its position is
//     the one Register is given. The latest position a master's record
//     had while it led is kept after it went away (LastPosition).
//   - At a vacancy without a handover (the leader's lease expired, or the
//     cluster was just resumed or created), each waiting member ranks the
//     members with coordinator.Rank and its own Ranking, the heir being the
//     first waiting member of priority above 0. The best takes over at
//     once; another eligible member only once its failover wait has passed
//     since it saw the vacancy (its campaign's start, when later); an
//     ineligible one (priority 0, behind by more than its maximum lag,
//     stopping) never. The store decides again at every change during the
//     vacancy: a campaign, a record (a new position), a departure, the end
//     of a failover wait. With no positions and equal priorities this is
//     the plain rule: the longest waiting campaign wins.
//   - Resign hands over to coordinator.Best of the leader's Ranking when
//     that member is waiting; otherwise the vacancy rules apply.
//   - Switchover("") names coordinator.Best of the caller's Ranking;
//     Switchover(to) refuses a member that ranking does not let lead
//     (coordinator.ErrIneligible). Failover is a forced request: its
//     target may lead even if of priority 0 or too far behind.
//
// The ranking only chooses which waiting campaign the store grants: a
// grant happens only while the leadership is vacant, under the store's
// lock, so the one-leader rule does not depend on it.
//
// # What it does not do
//
// Nothing is persisted and nothing leaves the process: when the process
// exits, every cluster in the Store is gone. The store keeps no history, so
// a watch never needs to coalesce. Slot claims live as long as the Store.
//
// The failures the conformance suite and the lifecycle tests need are
// injected by package memorytest (Crash, Partition), not by methods of the
// production type: they are the only ways to make a lease expire, since in
// one process renewals otherwise always arrive.
package memory
