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
//     key in the transaction that creates the heir's, if the leader's key
//     still has the term's create revision and the heir's place, the pause
//     and the switchover are as the leader's view saw them.
//   - The fencing token is the leader key's create revision: tryLead
//     returns its transaction's revision, which created the key; won and
//     the adoption (actAdopt) take it from the key itself.
//   - Every leader key is bound to a live lease: keys are put WithLease,
//     etcd refuses a put with a dead lease, and release hands over only to
//     an heir's place bound to a lease (keys.go, sessionID: a place written
//     by hand, with no lease, is ignored).
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
//     the next one begins.

// action is what a campaign does next.
type action int

const (
	actWait  action = iota // wait for a change
	actLead                // try to create the leader key (tryLead)
	actClaim               // try to take the heir's place (claimHeir)
	actAdopt               // the leader key is this session's: the term is this member's
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
	}
	return "?"
}

// self is what decide knows of the member that campaigns. What else
// should decide whether this member tries (a ranking of the members) is
// one more field here, and what orders the attempts of those that try,
// one more input to the pacer's delay: neither changes a transaction's
// conditions.
type self struct {
	id    string
	lease clientv3.LeaseID
	ended int64 // token of the latest term this handle ended (0: none)
}

// decision is decide's answer.
type decision struct {
	act action
	// first: no other waiter goes before this member (it holds the heir's
	// place, or a switchover names it). Such a member watches the leader
	// key, and the pacing lets it try at once.
	first bool
}

// decide returns what member me does in st. A leader key bound to me's
// lease is a term to take up: a resigning leader handed over to me, or an
// earlier attempt's request won but its answer was lost; never the term
// me ended last. Otherwise only the first tries to lead while another
// member holds the heir's place; any member tries when the place is vacant
// (the leadership, if it is vacant as well and open to me, else the
// place).
func decide(st electionState, me self) decision {
	if st.leader != nil && clientv3.LeaseID(st.leader.Lease) == me.lease && st.leader.CreateRevision != me.ended {
		return decision{act: actAdopt}
	}
	d := decision{first: st.heirIs(me.lease) || st.switchTo == me.id}
	switch open := st.open(me.id); {
	case open && (d.first || st.heirID == ""):
		d.act = actLead
	case !open && st.heirID == "":
		d.act = actClaim
	}
	return d
}
