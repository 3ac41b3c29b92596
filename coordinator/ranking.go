package coordinator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// DefaultPriority is the priority of a member that sets none, and of a
// record that carries none (written before priorities existed).
const DefaultPriority = 1

// MaxPriority is the largest priority a member may have.
const MaxPriority = 1 << 20

// Ranking is how the members of a cluster rank one another when the
// leadership is vacant without a handover (the master crashed or was cut
// off), when a leader hands over (Resign) and when a switchover names
// nobody. It only decides who tries to lead and how soon: whether an
// attempt succeeds is decided by the backend's transaction conditions
// alone, so the safety promises do not depend on it.
type Ranking struct {
	// Priority is this member's priority: among members equally caught
	// up, the higher one leads. Zero means DefaultPriority; NeverLead
	// means priority 0: the member never campaigns, is never handed the
	// leadership and is never a switchover's target, unless an operator
	// forces it (Failoverer). A backend publishes the effective value in
	// the member's record (Member.Priority), whatever Register is given.
	Priority int
	// MaxLag: a member whose position is behind the reference position (the
	// highest position published by a live member, or by the last master
	// before it went away) by more than MaxLag does not take over on a
	// crash. Zero means no limit.
	MaxLag int64
	// FailoverWait is how long an eligible member that is not the best
	// candidate waits for the best one to take over before it tries
	// itself (default DefaultFailoverWait(ttl)).
	FailoverWait time.Duration
}

// NeverLead is the Ranking.Priority of a member that must never lead: its
// record says priority 0.
const NeverLead = -1

// EffectivePriority returns the priority a member of ranking r publishes:
// DefaultPriority for 0, 0 for NeverLead (or any negative value).
func (r Ranking) EffectivePriority() int {
	switch {
	case r.Priority == 0:
		return DefaultPriority
	case r.Priority < 0:
		return 0
	}
	return min(r.Priority, MaxPriority)
}

// Wait returns the failover wait of r for a session TTL: r.FailoverWait,
// or DefaultFailoverWait(ttl) when it is zero.
func (r Ranking) Wait(ttl time.Duration) time.Duration {
	if r.FailoverWait > 0 {
		return r.FailoverWait
	}
	return DefaultFailoverWait(ttl)
}

// DefaultFailoverWait is the failover wait for a session TTL: a quarter of
// it (2.5 s at the default TTL of 10 s), so that a best candidate that is
// frozen or dead holds the cluster leaderless for at most that long after
// its own lease is gone.
func DefaultFailoverWait(ttl time.Duration) time.Duration { return ttl / 4 }

// Standing is one member's place at a vacancy, as Rank gives it.
type Standing struct {
	ID string `json:"id"`
	// Eligible: the member may take over. The eligible ones come first in
	// Rank's answer, best first.
	Eligible bool `json:"eligible"`
	// Reason says why a member is not eligible ("priority 0", "lag 600 > 100",
	// "position unknown", "state failed"), empty for an eligible one.
	Reason string `json:"reason,omitempty"`
}

// Rank orders members for a vacancy: the eligible ones first, best first
// (the highest known position, then the highest priority, then the member
// in the heir's place, heir, then the lowest id), then the others with why
// they may not take over. last is the position the last master published
// before it went away (nil if unknown); with r.MaxLag, a member whose
// position is unknown is not eligible, since it cannot be shown to be
// close enough. A member that is stopping, stopped or failed is never
// eligible, nor one of priority 0.
func Rank(members []Member, heir string, last *int64, r Ranking) []Standing {
	ref, known := Reference(members, last)
	type entry struct {
		m  Member
		st Standing
	}
	es := make([]entry, 0, len(members))
	for _, m := range members {
		st := Standing{ID: m.ID, Eligible: true}
		switch {
		case m.Priority <= 0:
			st.Reason = "priority 0"
		case m.State == StateStopping || m.State == StateStopped || m.State == StateFailed:
			st.Reason = "state " + string(m.State)
		case r.MaxLag > 0 && known && m.Position == nil:
			st.Reason = "position unknown"
		case r.MaxLag > 0 && known && ref-*m.Position > r.MaxLag:
			st.Reason = fmt.Sprintf("lag %d > maximum_lag %d", ref-*m.Position, r.MaxLag)
		}
		st.Eligible = st.Reason == ""
		es = append(es, entry{m, st})
	}
	slices.SortStableFunc(es, func(a, b entry) int {
		if a.st.Eligible != b.st.Eligible {
			if a.st.Eligible {
				return -1
			}
			return 1
		}
		if c := comparePosition(a.m.Position, b.m.Position); c != 0 {
			return c
		}
		if c := cmp.Compare(b.m.Priority, a.m.Priority); c != 0 {
			return c
		}
		if (a.m.ID == heir) != (b.m.ID == heir) {
			if a.m.ID == heir {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.m.ID, b.m.ID)
	})
	out := make([]Standing, len(es))
	for i, e := range es {
		out[i] = e.st
	}
	return out
}

// comparePosition orders a known position before an unknown one, and a
// higher one before a lower one.
func comparePosition(a, b *int64) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return cmp.Compare(*b, *a)
}

// Reference returns the position the lag of a member is measured from: the
// highest of the positions members publish and last (the last master's),
// and whether any is known.
func Reference(members []Member, last *int64) (int64, bool) {
	var ref int64
	known := false
	if last != nil {
		ref, known = *last, true
	}
	for _, m := range members {
		if m.Position != nil && (!known || *m.Position > ref) {
			ref, known = *m.Position, true
		}
	}
	return ref, known
}

// Best returns the best eligible candidate among members other than
// exclude (the sitting leader, at a handover), or "" when none is
// eligible.
func Best(members []Member, exclude, heir string, last *int64, r Ranking) string {
	ms := members
	if exclude != "" {
		ms = slices.DeleteFunc(slices.Clone(members), func(m Member) bool { return m.ID == exclude })
	}
	if sts := Rank(ms, heir, last, r); len(sts) > 0 && sts[0].Eligible {
		return sts[0].ID
	}
	return ""
}

// Failoverer is implemented by backends whose operator can force the
// leadership onto one member (Patroni's failover): a switchover request
// marked forced, which the named member may fulfil even when the ranking
// would not let it lead (priority 0, or behind by more than MaxLag). With
// a sitting leader, it hands over to that member as for a switchover;
// with none, that member takes the vacancy.
type Failoverer interface {
	// Failover asks that member to lead next, whatever the ranking says.
	// to must be registered (ErrUnknownMember otherwise).
	Failover(ctx context.Context, to string) error
}

// LastPositioner is implemented by backends that keep the position the
// last master published, after it went away.
type LastPositioner interface {
	// LastPosition returns the position the latest master published while
	// it led (nil if none did).
	LastPosition(ctx context.Context) (*int64, error)
}
