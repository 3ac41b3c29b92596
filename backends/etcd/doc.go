// Package etcd implements the coordinator contract on etcd v3 (tested
// against etcd 3.4 and 3.7).
//
// # Keys
//
// Under <prefix>/<environment>/<service>/ (prefix defaults to /ccctl):
//
//	members/<id>          the member's JSON record, bound to its lease
//	election/<id>         the leader's id, bound to the leader's lease; the
//	                      revision that created it is the fencing token
//	                      (one such key at most)
//	election-heir         the id of the waiting member that tries first on
//	                      a vacancy, bound to its lease (outside election/,
//	                      so that etcdctl sees only the leader there)
//	control/pause         present while the cluster is paused (no lease)
//	control/switchover    the requested next leader's id, bound to that
//	                      member's lease ("force:<id>" when forced:
//	                      Failover)
//	candidates/<id>       the member's priority while it campaigns, bound
//	                      to its lease (the ranking's candidates)
//	last_position         the position the last master published while it
//	                      led (no lease; LastPosition)
//	slots/<job>/<slot>    scheduled-job slots claimed (ClaimSlot), bound to
//	                      the job's slot lease: one or two per job, each of
//	                      twice the retention, used for one retention period
//	history/<token>[/end|/fenced]  the last HistorySize master terms, no
//	                      lease (History; the layout and who writes what
//	                      are described in history.go)
//
// The leader's key is the only key under election/, so `etcdctl elect -l
// <prefix>/<env>/<service>/election` prints the leader, and `etcdctl get --prefix <prefix>/<env>/<service>/members/`
// the records.
//
// # Election
//
// A campaign reads the election and control keys. When the leadership is
// vacant, the cluster not paused and no switchover names another member,
// it creates its leader key in a transaction that repeats those conditions
// (no key under election/, pause absent, switchover unchanged, heir's
// place unchanged). Of the members waiting, one holds the heir's place (the
// key election-heir, bound to its lease): it alone watches the leader key
// and tries at once on a vacancy, with a transaction that also gives the
// place up. A leader that resigns hands over to it directly: one
// transaction deletes the leader's key and creates the heir's (bound to
// the heir's lease, so the new term has a new token), if the place, the
// pause and the switchover request are as the leader last saw them; the
// heir learns that it leads from its watch, so a graceful handover costs
// one write and one watch event, where etcd's concurrency.Election needs a
// read by the next in line besides. The new leader then leaves the place
// (in the same transaction, the others, who wake for the place, would stand
// between the handover and the heir). A campaign that ends as it is handed
// the leadership deletes the key. The others watch only the heir's place and the control keys, so a
// vacancy wakes one member, as the next in line of etcd's
// concurrency.Election; when the place falls vacant (its holder won, left,
// or stopped campaigning, which gives it up at once) they race to take it
// (see Many members), and a member that takes it while the leadership is
// vacant tries to lead next. A member that a switchover names watches the
// leader key too, and tries at once. A campaign that ends without leading
// gives the place up. Apart from counting the member records (a count, not
// a read of them, when it starts), the cost of a campaign does not depend
// on the number of candidates, unlike concurrency.Election, whose every
// Campaign reads the whole candidate prefix: ten thousand members of one
// cluster hold.
//
// As with concurrency.Election, a vacancy waits for the heir: an heir cut
// off from etcd, or frozen, holds its place until its lease expires (the
// TTL), and only then does another member take over.
//
// # Ranking
//
// Who tries first is decided by a ranking (coordinator.Rank: the highest
// known position, then the priority, then the heir's place, then the id),
// read with the election keys in one read-only transaction (the member
// records, the candidate keys of the members that campaign, the last
// master's position; rank.go). Each rule, with the one place that keeps
// it:
//
//   - At a vacancy (no leader key, not paused, no switchover request), the
//     holder of the heir's place alone reads and ranks, once per vacancy:
//     it leads at once if it is the best, else passes the place to the
//     best candidate in one transaction (the place as read, the best's
//     candidate key and record as read; the place bound to the best's
//     lease). The best wakes for the place and leads at once; a passed
//     place (a put over a claim: its key's version above 1) is taken up
//     without ranking again, so two stale views cannot pass it back and
//     forth (decide, vacancy).
//   - An eligible member that is not the best tries only after the
//     failover wait (Ranking.Wait: a quarter of the TTL by default), 20 ms
//     later per place below the second, then ranks again and tries if it
//     still may (the pacer's delay): a best candidate that is frozen or
//     cut off holds the cluster leaderless for at most the failover wait
//     after the vacancy, plus the TTL when it held a place whose lease
//     must expire first. A member that is not eligible never tries; it
//     ranks again after each failover wait.
//   - With the heir's place vacant at a vacancy, every campaigning member
//     of a cluster of at most 16 members ranks and follows the same rules;
//     in a larger one they claim the place first (spread by the herd
//     delay), and its holder ranks for all: no member reads N records N
//     times per vacancy.
//   - A member registered but not campaigning (its start hook still runs,
//     its campaign was cancelled) has no candidate key: it is ranked as
//     stopped, so it is never handed the place nor the leadership, which
//     it would not take up; its position still counts in the reference of
//     the lag. A campaign that ends deletes its candidate key.
//   - A resigning leader hands over to the best candidate (release,
//     successor): to the heir's place holder as before when it is the
//     best, else in one transaction that deletes the leader's key,
//     creates the best's bound to its candidate key's lease and puts it in
//     the heir's place (which it watches, and leaves once it leads), if
//     the leader's key, the best's candidate key and record, the place,
//     the pause and the switchover are as read. Nobody eligible: the key
//     is only deleted. A switchover request, forced or not, wins over the
//     ranking.
//   - A member of priority 0 never claims the place, never tries to lead,
//     is never a successor and is never chosen by Switchover(""), and
//     Switchover naming it fails (coordinator.ErrIneligible); a forced
//     request (Failover) names it as any other member, and it then leads
//     at once, past the ranking, as does any member a forced request
//     names, whatever its lag.
//   - The last master's position is put by Register with a Position while
//     the member leads, in the same transaction and only while the term's
//     leader key is in place; a value that is not a non-negative integer
//     is ignored (unknown).
//
// As the rest of the election, the ranking only decides who tries and
// when: whether a transaction succeeds is decided by its conditions
// alone (see Safety). What it does not guarantee: a member's position is
// as fresh as its last Register (a second, by default); members that rank
// at one vacancy from different reads may disagree, and then the
// transactions decide; a vacancy with no eligible candidate stays vacant
// until a member becomes eligible at a later ranking or an operator forces
// one (Failover); members of older versions write no candidate key and
// are never chosen by a newer one (and read a forced request as no
// request).
//
// # Safety
//
// The election keeps these invariants: at most one key under election/;
// the fencing token is the leader key's create revision, and tokens
// strictly increase; every leader key is bound to a live lease; no term is
// granted to a session past its deadline, and a leader acts only before
// it; Leadership.Done is closed before the leader key is released. The
// list beside decide (decide.go) names the one place that keeps each: the
// conditions of the transactions (tryLead, claimHeir, the handover in
// release) and the session's deadline, never the decision of who tries or
// when. A model of the protocol in Promela (backends/etcd/model) checks
// them with spin, every decision and its timing left free, and fails when
// any of those conditions is removed.
//
// In the code the election is three parts: a follower turns the election
// and control keys into a state (read, watch, read again after a
// compaction or a broken watch; state.go), decide says what to do in that
// state (wait, claim the heir's place, lead, adopt a handed-over term;
// decide.go), and the pacer says when (the herd delay, the recheck, the
// recount; pacing.go). Watch and a term's monitor read the same keys with
// the same parser, so all three agree on who leads.
//
// # Self-fencing
//
// The session renews its lease with its own loop: every RenewInterval it
// sends one keep-alive request on a keep-alive stream of its own (several
// may be in flight on a slow network; answers come in order) and records
// its send time on the local monotonic clock. An acknowledgement
// with a positive TTL proves that the lease lives at least until send time +
// TTL on the server, whose timer started after the send. The session is
// given up (Leadership.Done closed, then Session.Done, with
// coordinator.ErrLeaseDeadline) by a local timer at that time minus Margin,
// whatever the network does: errors, an open but silent connection, or a
// server that answers late. The timing relations (TTL >= 2 s, TTL > 2 *
// RenewInterval + Margin) are checked by New.
//
// What is not guaranteed: a frozen process acts on Done only when it runs
// again (fencing tokens cover that); the guarantee assumes the local
// monotonic clock and the server's run at about the same rate, the
// difference being absorbed by Margin.
//
// Given several endpoints, the sessions of one client send their
// keep-alives to etcd's leader on a connection of their own (found with a
// Status request to each endpoint, looked for again when an answer comes
// from a newer raft term or a stream there breaks): a follower forwards
// each renewal to the leader as an HTTP request (with 20 000 sessions on
// three etcd 3.4 members, 29 % of the leader's CPU went to serving them,
// besides the followers' cost of sending them). A new stream starts on the client's
// own connection and moves once a stream to the leader is open, so the
// preference never stands between a session and a live endpoint.
//
// A lost session is not renewed: the
// caller opens a new Coordinator to rejoin. With authentication on, etcd's
// client authenticates again whenever a stream opens (bcrypt on the
// server), so sessions that reconnect at once cost etcd CPU in proportion.
//
// # Many members
//
// Members can share one client (NewWithClient): each session has its own
// lease and keep-alive stream, each campaign one watch on the shared
// client's watch stream. When the heir's place falls vacant (or the
// leadership with nobody in it), the waiting campaigns do not all send
// their transaction at once (N-1 raft writes per vacancy, which with ten
// thousand members backs etcd's apply queue up until lease renewals stall):
// each waits a random delay in [0, W) first, then reads the election keys
// from the etcd member it talks to (a serializable read: no raft round) and
// sends nothing if that read or its watch shows the place taken. W is 0.25 ms
// per other member, at most one minute (10 members: 2.25 ms; 10 001:
// 2.5 s). About 8 waiters of any vacancy do not wait (each with probability
// 8 / other members), so that the vacancy is tried at once, and up to 9
// members none waits: a handful of transactions that can only fail cost
// etcd less than the delay and the read would cost a leadership that fell
// vacant with nobody in the heir's place.
// The watch alone is not enough: etcd sends a change to its watchers one
// by one, so with ten thousand watchers the winner's key reaches the last
// of them about a second later (measured on two cores), and every waiter
// whose delay ended before would send a transaction that can only fail.
// With the read, about C / 0.25 ms waiters send per vacancy, C being the
// time a transaction takes to commit, and the first tries about
// sqrt(2 * F * 0.25 ms) after the vacancy, F being the time etcd takes to
// tell every watcher of it (tens of milliseconds for a second). The
// number of members is a count-only read of the member records, made with
// a Campaign's first read of the election keys (one read-only
// transaction), then again now and then while it waits and the leadership
// is held, never on a vacancy: a count still walks every record's index
// entry, so N waiters counting every P' seconds cost etcd N*N/P' entries a
// second; P' is random in [T/2, T), T being 100 ms per member counted,
// from 5 minutes to one hour (10 000 members: about every 12 minutes), in
// the background. A member that started campaigning while few others had
// registered tries early until it counts again. The members counted are
// all registered members, not only the campaigning ones; a member that did
// not register is not counted. The conditions of the transaction are
// unchanged: the delay only decides when to try, not whether a transaction
// may succeed. The first to arrive wins, the others fail their comparison
// and wait again.
package etcd
