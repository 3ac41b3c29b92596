package coordinator

import (
	"context"
	"fmt"
	"time"
)

// DefaultHistorySize is the number of terms a cluster's history keeps
// unless configured otherwise.
const DefaultHistorySize = 100

// MaxHistorySize bounds the history_size setting: each term costs a few
// hundred bytes of the store.
const MaxHistorySize = 100000

// Why a master term began.
const (
	// BeganElection: there was no previous term on record (the first
	// master), or it ended while the cluster was paused (this term began
	// after the resume).
	BeganElection = "election"
	// BeganHandover: the previous master resigned (it stopped) and this
	// member took over.
	BeganHandover = "handover"
	// BeganSwitchover: an operator's switchover named this member.
	BeganSwitchover = "switchover"
	// BeganFailover: the previous master's term ended without a
	// resignation (its lease expired, or it fenced itself).
	BeganFailover = "failover"
)

// Why a master term ended.
const (
	// EndResigned: the master resigned (it stopped).
	EndResigned = "resigned"
	// EndSwitchover: the master resigned for an operator's switchover.
	EndSwitchover = "switchover"
	// EndPaused: the master resigned while the cluster was paused, so
	// nobody took over until it was resumed.
	EndPaused = "paused"
	// EndLeaseExpired: the master's lease expired on the server without a
	// resignation (a crash, or a cut-off that the member could not report);
	// recorded by the next master.
	EndLeaseExpired = "lease expired"
	// EndFenced: the master gave its leadership up because no renewal of
	// its lease was acknowledged in time (it was cut off from the store).
	EndFenced = "fenced"
)

// Term is one master term as a cluster's history records it.
type Term struct {
	// Token is the term's fencing token.
	Token int64 `json:"token"`
	// Member is the master's id.
	Member string `json:"member"`
	// Began is when the term began; Began.Revision is the token.
	Began Moment `json:"began"`
	// Ended is when the term ended, nil while it lasts (or while nobody
	// recorded its end yet). For a term whose master could not record its
	// end (crash, cut-off), it is the beginning of the next term, which
	// recorded it: the lease had expired by then.
	Ended *Moment `json:"ended"`
	// Reason is why the term began: one of the Began constants.
	Reason string `json:"reason"`
	// EndReason is why it ended: one of the End constants, "" while it
	// lasts.
	EndReason string `json:"end_reason"`
	// Positions are the candidates' replication positions when a ranking
	// chose the master, by member id; empty otherwise.
	Positions map[string]int64 `json:"positions,omitempty"`
}

// Moment is a point in a cluster's history: the store's revision and the
// wall time of the member that recorded it.
type Moment struct {
	Revision int64     `json:"revision"`
	Time     time.Time `json:"time"`
}

// ValidBeginReason reports whether s is one of the Began constants.
func ValidBeginReason(s string) bool {
	switch s {
	case BeganElection, BeganHandover, BeganSwitchover, BeganFailover:
		return true
	}
	return false
}

// ValidEndReason reports whether s is one of the End constants.
func ValidEndReason(s string) bool {
	switch s {
	case EndResigned, EndSwitchover, EndPaused, EndLeaseExpired, EndFenced:
		return true
	}
	return false
}

// Validate checks a term read from a store like user input: a positive
// token, a valid member id, known reasons, an end (if any) after the
// beginning.
func (t Term) Validate() error {
	if t.Token <= 0 {
		return fmt.Errorf("term token %d: want > 0", t.Token)
	}
	if err := ValidateName("member", t.Member); err != nil {
		return fmt.Errorf("term %d: %w", t.Token, err)
	}
	if !ValidBeginReason(t.Reason) {
		return fmt.Errorf("term %d: reason %q: want election, handover, switchover or failover", t.Token, t.Reason)
	}
	if t.EndReason != "" && !ValidEndReason(t.EndReason) {
		return fmt.Errorf("term %d: end reason %q: want resigned, switchover, paused, lease expired or fenced", t.Token, t.EndReason)
	}
	for id, p := range t.Positions {
		if err := ValidateName("member", id); err != nil || p < 0 {
			return fmt.Errorf("term %d: bad position %q=%d", t.Token, id, p)
		}
	}
	return nil
}

// Historian is implemented by backends that keep the history of a
// cluster's master terms: the backend records each term when it begins
// and when it ends, keeping the last history_size terms.
type Historian interface {
	// History returns the recorded terms, oldest first: the last limit of
	// them (all that are kept when limit <= 0). Records that do not
	// validate are left out (and logged).
	History(ctx context.Context, limit int) ([]Term, error)
}

// BeginReason returns why a term began, given how it was won (handedOver:
// the previous master handed over to this member; switchover: a
// switchover request named this member when it won) and the previous term
// as recorded (nil when there is none).
func BeginReason(prev *Term, handedOver, switchover bool) string {
	switch {
	case switchover || prev != nil && prev.EndReason == EndSwitchover:
		return BeganSwitchover
	case handedOver || prev != nil && prev.EndReason == EndResigned:
		return BeganHandover
	case prev == nil:
		return BeganElection
	case prev.EndReason == "" || prev.EndReason == EndLeaseExpired || prev.EndReason == EndFenced:
		return BeganFailover
	}
	return BeganElection
}
