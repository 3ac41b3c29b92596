package etcd

import clientv3 "go.etcd.io/etcd/client/v3"

// The election is three parts: a follower turns the election and control
// keys into an electionState (state.go); decide, below, says what a
// campaign does in that state; the pacing (pacing.go) says when it does
// it. decide and the pacing only choose which transaction to send and
// when: whether one may succeed is decided by its conditions alone, which
// the model (backends/etcd/model) checks with every choice left free.
//
// # Safety
//
// Each invariant, with the one place that keeps it:
//
//   - At most one key under election/: the If-clause of tryLead (no key
//     under election/ but the bogus ones as read, which it deletes), and
//     the handover transaction of release, which deletes the leader's own
//     key in the transaction that creates the successor's (the heir's, or
//     the best candidate's), if the leader's key still has the term's
//     create revision and the heir's place, the pause and the switchover
//     are as the leader's view saw them.
//   - The fencing token is the leader key's create revision: tryLead
//     returns its transaction's revision, which created the key; won and
//     the adoption (actAdopt) take it from the key itself.
//   - Every leader key is bound to a live lease: keys are put WithLease,
//     etcd refuses a put with a dead lease, and release hands over only to
//     an heir's place bound to a lease (keys.go, sessionID: a place written
//     by hand, with no lease, is ignored) or to a candidate key's lease
//     (keys.go, candidate: a key with no lease is no candidate's).
//   - The ranking changes none of the above: it only chooses which of
//     these transactions a member sends, and when (decide, vacancy; the
//     pacer's failover wait). A member of priority 0 sends none of them
//     unless a forced switchover names it. The pass of the heir's place
//     (passHeir) is a put of the place bound to the target's lease, as
//     the target's own claim would be: the place decides nothing but who
//     tries first and whom a handover may go to, both still guarded by
//     the conditions above; the model (backends/etcd/model) lets any
//     holder pass the place to any live member at any time.
//   - No term is granted to a session past its deadline, and a leader acts
//     only before it: the session's local deadline (session.go: send time
//     of the last acknowledged renewal + TTL - Margin) ends the session
//     before etcd can expire the lease, and session.lose ends the term
//     first (onEnd, Coordinator.sessionEnded: Leadership.Done closed
//     before Session.Done); won grants a term only while the session
//     lives (session.add, under the mutex where sessionEnded takes the
//     term).
//   - Tokens strictly increase: a new term's key is created by a new
//     revision, and decide never adopts the term this handle ended last
//     (self.ended), whose key may linger while its release is retried.
//   - Done is closed before the release: Resign detaches the term (closes
//     Done) before it sends release, so no code of the old term acts while
//     the next one begins (the read of the ranking that release makes
//     comes after, too).

// action is what a campaign does next.
type action int

const (
	actWait  action = iota // wait for a change
	actLead                // try to create the leader key (tryLead)
	actClaim               // try to take the heir's place (claimHeir)
	actAdopt               // the leader key is this session's: the term is this member's
	actRank                // read the records and rank the candidates (readRanking)
	actPass                // pass the heir's place to the best candidate (passHeir)
)

func (a action) String() string {
	switch a {
	case actWait:
		return "wait"
	case actLead:
		return "lead"
	case actClaim:
		return "claim"
	case actAdopt:
		return "adopt"
	case actRank:
		return "rank"
	case actPass:
		return "pass"
	}
	return "?"
}

// self is what decide knows of the member that campaigns. What else
// should decide whether this member tries is one more field here, and
// what orders the attempts of those that try, one more input to the
// pacer's delay: neither changes a transaction's conditions.
type self struct {
	id    string
	lease clientv3.LeaseID
	ended int64 // token of the latest term this handle ended (0: none)
	// never: priority 0; the member leads only when a forced switchover
	// names it.
	never bool
	// many: the cluster is too large for every member to rank at a
	// vacancy (rankMaxMembers): with the heir's place vacant, this member
	// claims it first, and the holder ranks for all.
	many bool
	// rank is this member's standing at the current vacancy, once read.
	rank standing
	// plain: no ranking (the rule before it: the heir, else anyone, tries
	// at once); for the benchmarks' comparison only.
	plain bool
}

// decision is decide's answer.
type decision struct {
	act action
	// first: no other waiter goes before this member (it holds the heir's
	// place, or a switchover names it, or it ranks best at a vacancy).
	// Such a member watches the leader key, and the pacing lets it try at
	// once.
	first bool
	// wait: the member ranked eligible but not best at a vacancy (or
	// ranks again later): it watches the leader key and tries only after
	// the failover wait, later the lower it ranks (place: its place among
	// the eligible, 1 the second best).
	wait  bool
	place int
}

// decide returns what member me does in st. A leader key bound to me's
// lease is a term to take up: a resigning leader handed over to me, or an
// earlier attempt's request won but its answer was lost; never the term
// me ended last. A member of priority 0 only waits, unless a forced
// switchover names it. At a vacancy (the leadership vacant, not paused,
// no switchover request), see vacancy. Otherwise only the first tries to
// lead while another member holds the heir's place; any member claims the
// place when it is vacant.
func decide(st electionState, me self) decision {
	if st.leader != nil && clientv3.LeaseID(st.leader.Lease) == me.lease && st.leader.CreateRevision != me.ended {
		return decision{act: actAdopt}
	}
	open := st.open(me.id)
	if me.never {
		forced := st.switchTo == me.id && st.forced
		if forced && open {
			return decision{act: actLead, first: true}
		}
		return decision{first: forced}
	}
	if open && st.switchTo == "" && !me.plain {
		return vacancy(st, me)
	}
	d := decision{first: st.heirIs(me.lease) || st.switchTo == me.id}
	switch {
	case open && (d.first || st.heirID == ""):
		d.act = actLead
	case !open && st.heirID == "":
		d.act = actClaim
	}
	return d
}

// vacancy decides at a vacancy. A passed place is taken up at once. While
// another member holds the place, this one waits for it, unless it ranked
// at this vacancy (it passed the place on) and is eligible: then it tries
// after the failover wait. Otherwise (its own place, or a vacant one) it
// ranks first, then: the best tries at once; the holder of the place
// passes it to the best if that is another member; an eligible member
// tries after the failover wait; an ineligible one ranks again after it.
// In a large cluster (me.many) a member claims a vacant place first, so
// that one member ranks for all.
func vacancy(st electionState, me self) decision {
	mine := st.heirIs(me.lease)
	r := me.rank
	switch {
	case mine && st.passed():
		return decision{act: actLead, first: true}
	case !mine && st.heirID != "":
		if r.known && r.place > 0 {
			return decision{act: actLead, wait: true, place: r.place}
		}
		return decision{act: actWait}
	case !mine && me.many:
		return decision{act: actClaim}
	case !r.known:
		return decision{act: actRank, first: true}
	case r.place == 0:
		return decision{act: actLead, first: true}
	case mine && r.best != "":
		return decision{act: actPass, first: true}
	case r.place > 0:
		return decision{act: actLead, wait: true, place: r.place}
	}
	return decision{act: actRank, wait: true}
}
