// Package coordinator defines the contract between the ccctl controller and a
// coordination backend: member registration bound to a session, the election
// of one master per cluster with fencing tokens, a stream of cluster events,
// and the operator's controls (pause, resume, switchover).
//
// The contract is backend-agnostic. backends/etcd implements it on etcd v3,
// backends/memory in one process. Every backend must pass the conformance
// suite in coordinator/coordinatortest.
//
// # Sessions
//
// A Coordinator is one member's handle on one cluster. It owns a session: a
// lease with a TTL that the backend keeps alive in the background. The member
// record and the leadership are bound to the session and vanish when it ends,
// whether it is closed (Close) or expires (the process died, or was cut off
// for longer than the TTL). Done is closed when the session has ended, for any
// reason; after that every call fails with ErrSessionClosed. Close is
// idempotent: it resigns, deletes the record and revokes the lease, so that
// another member can take over at once, without waiting for the TTL.
//
// # Leadership and what is guaranteed
//
// Campaign blocks until the member leads, its context is cancelled, or its
// session ends. It returns a Leadership carrying a fencing token. Tokens are
// strictly increasing across the terms of a cluster and never reused: a
// receiver that remembers the highest token it has seen can refuse the writes
// of a stale master.
//
// A Leadership reports its end in exactly one place: its Done channel, closed
// once, after which Err says why (ErrResigned, ErrSessionExpired,
// ErrLeaseDeadline, ErrLeadershipLost). The backend closes Done strictly
// before the leadership can be granted to anybody else, as far as the backend
// can know: after a resignation it closes Done before the leader key is
// deleted; for a session that stops being renewed, it closes Done at the
// latest when the lease could expire on the server, measured from the send
// time of the last acknowledged renewal on the local monotonic clock, minus a
// safety margin. This holds whatever the network does.
//
// What is not guaranteed: a process that is frozen (SIGSTOP, a paused
// container, a long GC pause) cannot act on Done until it runs again, and the
// service it controls may keep writing meanwhile. That is what the fencing
// token is for: the receiver of a write must check it. The clocks of
// different machines are never compared; the guarantee assumes that the local
// monotonic clock and the server's lease timer run at roughly the same rate
// (the margin absorbs the difference).
//
// # Pause and switchover
//
// While the cluster is paused, no member wins a campaign: a sitting leader
// keeps leading, but if it goes away, nobody takes over until Resume (the
// maintenance mode of Patroni). A switchover request names the member that
// should lead next; only that member can win while the request stands. The
// request is bound to the target's session and vanishes with it. The sitting
// leader sees the request as an EventSwitchover and is expected to hand over
// (demote its service, then Resign); the backend does not resign on its own,
// so the service never overlaps with the next master's.
//
// # History
//
// A backend that implements Historian keeps the last terms of a cluster:
// who led, from when to when, why the term began (BeganElection,
// BeganHandover, BeganSwitchover, BeganFailover) and why it ended
// (EndResigned, EndSwitchover, EndPaused, EndLeaseExpired, EndFenced). It is
// a record for people, not a lock: a term's record may be written a moment
// after the term began, and a master that crashed cannot write its end (the
// next master does). Nothing decides from it but the reason of the next
// term.
//
// # Watch
//
// Watch returns a stream of events. It starts with the current state (one
// EventMemberJoined per member, then EventLeaderChanged or EventNoLeader, then
// EventPaused when paused and EventSwitchover when a request stands), then
// reports every change in the order the backend applied it. Events are never
// dropped while the backend's history is available; when it is not (etcd
// compacted the revisions the watch needed, or a reconnection skipped some),
// the stream resumes from the current state and reports the difference
// between what it last reported and what is now: intermediate changes may be
// coalesced then, but the latest state is always reported. The stream is
// closed when the watch's context is done or the session ends; the channel is
// owned and closed by the backend.
package coordinator
