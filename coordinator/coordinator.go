package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Role is the role of a member in its cluster.
type Role string

// The roles, spelled as the original docker-cluster-controller spelled them.
const (
	RoleNone   Role = ""
	RoleMaster Role = "master"
	RoleSlave  Role = "slave"
)

// State is where a member is in its lifecycle.
type State string

// The states of a member, in the order a healthy member goes through them.
const (
	StateStarting     State = "starting"
	StateInitializing State = "initializing"
	StateRunning      State = "running"
	StateActive       State = "active"
	StateStopping     State = "stopping"
	StateStopped      State = "stopped"
	StateFailed       State = "failed"
)

// Cluster names one cluster: one service in one environment.
type Cluster struct {
	Environment string
	Service     string
}

// String returns "environment/service".
func (c Cluster) String() string { return c.Environment + "/" + c.Service }

// MinTTL is the shortest session TTL of every backend: below it a
// renewal interval and a safety margin leave no room for one round trip
// to a loaded backend.
const MinTTL = 2 * time.Second

// CheckTTL is the one rule for a session TTL: whole seconds (etcd's leases
// count seconds), at least MinTTL.
func CheckTTL(ttl time.Duration) error {
	switch {
	case ttl < MinTTL:
		return fmt.Errorf("ttl %v: want at least %v", ttl, MinTTL)
	case ttl%time.Second != 0:
		return fmt.Errorf("ttl %v: want whole seconds (etcd leases count seconds)", ttl)
	}
	return nil
}

// ValidateName reports whether s can name an environment, a service or a
// member: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or
// a digit, so that it is safe as one segment of a key or a file name.
func ValidateName(what, s string) error {
	if !validName(s) {
		return fmt.Errorf("%s %s: want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", what, short(s))
	}
	return nil
}

// validName checks a name byte by byte (ASCII only). A regular expression
// with a bounded repetition compiles, at start-up, to a program of 128
// copies of its class.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case i > 0 && (b == '_' || b == '.' || b == '-'):
		default:
			return false
		}
	}
	return true
}

// Validate checks both names of the cluster.
func (c Cluster) Validate() error {
	if err := ValidateName("environment", c.Environment); err != nil {
		return err
	}
	return ValidateName("service", c.Service)
}

// Member is the record a member publishes about itself. Its JSON form is the
// value stored by backends (readable with etcdctl get).
type Member struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	Address   string    `json:"address"`
	Ports     []int     `json:"ports"`
	Role      Role      `json:"role"`
	State     State     `json:"state"`
	Token     int64     `json:"token,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Version   string    `json:"version"`
	// Priority is the member's priority (see Ranking): 0 never leads; a
	// record without one has DefaultPriority. Backends publish their own
	// Ranking's effective priority here, whatever Register is given.
	Priority int `json:"priority"`
	// Position is the member's replication position as its position
	// command last printed it (nil: unknown, or the command failed), and
	// PositionAt when it did.
	Position   *int64    `json:"position,omitempty"`
	PositionAt time.Time `json:"position_at,omitzero"`
}

// Leader is the current holder of a cluster's leadership.
type Leader struct {
	ID    string `json:"id"`
	Token int64  `json:"token"`
}

// EventType says what an Event reports.
type EventType int

// The kinds of events a Watch reports.
const (
	// EventMemberJoined reports that a member registered; Member is its record.
	EventMemberJoined EventType = iota + 1
	// EventMemberUpdated reports that a member changed its record; Member is
	// the new record.
	EventMemberUpdated
	// EventMemberLeft reports that a member's record vanished (closed or
	// expired); Member is its last known record.
	EventMemberLeft
	// EventLeaderChanged reports that a new term began; Leader is the new
	// leader.
	EventLeaderChanged
	// EventNoLeader reports that the leadership is vacant (resigned or
	// expired).
	EventNoLeader
	// EventPaused reports that automatic takeover is suspended.
	EventPaused
	// EventResumed reports that automatic takeover is allowed again.
	EventResumed
	// EventSwitchover reports that an operator asked that SwitchoverTo leads
	// next.
	EventSwitchover
	// EventSwitchoverCleared reports that the switchover request was
	// fulfilled or withdrawn, or that its target went away.
	EventSwitchoverCleared
)

var eventNames = map[EventType]string{
	EventMemberJoined:      "member_joined",
	EventMemberUpdated:     "member_updated",
	EventMemberLeft:        "member_left",
	EventLeaderChanged:     "leader_changed",
	EventNoLeader:          "no_leader",
	EventPaused:            "paused",
	EventResumed:           "resumed",
	EventSwitchover:        "switchover",
	EventSwitchoverCleared: "switchover_cleared",
}

// String returns the event type's snake_case name.
func (t EventType) String() string {
	if s, ok := eventNames[t]; ok {
		return s
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change in a cluster, as reported by Watch.
type Event struct {
	Type EventType
	// Member is set for member events.
	Member Member
	// Leader is set for EventLeaderChanged.
	Leader Leader
	// SwitchoverTo is set for EventSwitchover.
	SwitchoverTo string
	// Forced is set for EventSwitchover when an operator forced the
	// target past the ranking (Failoverer).
	Forced bool
}

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	// ErrSessionClosed means that the session has ended (closed or expired);
	// the Coordinator cannot be used any more.
	ErrSessionClosed = errors.New("coordinator: session closed")
	// ErrSessionExpired means that the session's lease expired, or could have
	// expired on the server, before it was renewed.
	ErrSessionExpired = errors.New("coordinator: session expired")
	// ErrLeaseDeadline means that leadership was given up because no renewal
	// was acknowledged in time; the lease may still be alive on the server but
	// can no longer be relied on (self-fencing).
	ErrLeaseDeadline = errors.New("coordinator: lease deadline passed without renewal")
	// ErrResigned means that leadership ended because the leader resigned.
	ErrResigned = errors.New("coordinator: resigned")
	// ErrLeadershipLost means that the leader key was deleted or taken over
	// by something other than this member (an operator, a bug elsewhere).
	ErrLeadershipLost = errors.New("coordinator: leadership lost")
	// ErrNoLeader means that the cluster has no leader now.
	ErrNoLeader = errors.New("coordinator: no leader")
	// ErrUnknownMember means that the named member is not registered.
	ErrUnknownMember = errors.New("coordinator: unknown member")
	// ErrIneligible means that the named member may not lead by the
	// ranking (priority 0, or too far behind); an operator can force it
	// (Failoverer).
	ErrIneligible = errors.New("coordinator: member may not lead (priority 0 or too far behind)")
	// ErrNotRegistered means that the call needs this member to be registered
	// first.
	ErrNotRegistered = errors.New("coordinator: member not registered")
	// ErrInvalidConfig means that a backend's configuration is invalid.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrUnavailable means that the backend could not be reached in time.
	ErrUnavailable = errors.New("coordinator: backend unavailable")
)

// Coordinator is one member's handle on one cluster. All methods are safe for
// concurrent use. The member's id is fixed when the handle is created.
type Coordinator interface {
	Session
	Registry
	Elector
	Controls

	// Watch streams the cluster's events until ctx is done or the session
	// ends, then closes the channel. See the package comment for ordering and
	// coalescing.
	Watch(ctx context.Context) (<-chan Event, error)
}

// Session is the liveness of a member.
type Session interface {
	// ID returns this member's id.
	ID() string
	// Cluster returns the cluster this handle belongs to.
	Cluster() Cluster
	// Done is closed when the session has ended, closed or expired. It is
	// the one place where the loss of the session is reported.
	Done() <-chan struct{}
	// Err returns nil while the session lives, then why it ended
	// (ErrSessionClosed after Close, ErrSessionExpired or ErrLeaseDeadline
	// when it was lost).
	Err() error
	// Close resigns any leadership, deletes the member record and ends the
	// session at once. It is idempotent and safe to call concurrently; it
	// returns the error of the first call's cleanup, if any.
	Close() error
}

// Registry publishes and reads member records.
type Registry interface {
	// Register creates or replaces this member's record, bound to the
	// session. m.ID must be the handle's ID (empty means the handle's ID).
	Register(ctx context.Context, m Member) error
	// Members returns the records of every registered member of the
	// cluster, sorted by ID.
	Members(ctx context.Context) ([]Member, error)
}

// Elector elects one leader per cluster.
type Elector interface {
	// Campaign blocks until this member leads, ctx is done (it then returns
	// ctx.Err() and leaves no trace of the campaign), or the session ends
	// (ErrSessionClosed). Campaigning while already leading returns the
	// current Leadership. Only one Campaign call runs at a time per handle.
	Campaign(ctx context.Context) (Leadership, error)
	// Leader returns the current leader, or ErrNoLeader.
	Leader(ctx context.Context) (Leader, error)
}

// Leadership is one term of leadership.
type Leadership interface {
	// Token returns the fencing token of this term: strictly greater than
	// every earlier term's token in this cluster.
	Token() int64
	// Done is closed when the term has ended, for whatever reason. It is the
	// one place where the loss of leadership is reported, and it is closed
	// before anybody else can be granted the leadership.
	Done() <-chan struct{}
	// Err returns nil while the term lasts, then why it ended.
	Err() error
	// Resign ends the term and releases the leadership at once, so that a
	// waiting member can take over. Done is closed before the release.
	// Resign is idempotent.
	Resign(ctx context.Context) error
}

// Controls are the operator's levers on a cluster. Any member's handle can
// pull them (the CLI uses a handle of its own).
type Controls interface {
	// Pause suspends automatic takeover for the whole cluster.
	Pause(ctx context.Context) error
	// Resume allows automatic takeover again.
	Resume(ctx context.Context) error
	// Paused reports whether the cluster is paused.
	Paused(ctx context.Context) (bool, error)
	// Switchover asks the leader to hand over to the member named to, which
	// must be registered (ErrUnknownMember otherwise). An empty to lets the
	// backend choose with PickSwitchoverTarget. It returns the chosen
	// target. The request stands until that member leads or its session
	// ends.
	Switchover(ctx context.Context, to string) (string, error)
}

// LeaseReporter is implemented by backends that can tell how long the
// session's lease is known to last without another renewal.
type LeaseReporter interface {
	// LeaseRemaining returns the time left before the session would be
	// given up for lack of renewal (zero when ended).
	LeaseRemaining() time.Duration
}

// Reopener is implemented by backends whose member can open a new session
// once its session has ended, so that the member outlives an outage of the
// backend.
type Reopener interface {
	// Reopen opens a new session for the same member of the same cluster
	// and returns its handle. It returns an error while the receiver's
	// session lives, and must be called before the receiver is closed.
	// The old session's lease is revoked first if the backend still has
	// it, so that nothing the old session held (its record, a leader key)
	// outlives it. The new handle takes over what the old one shared with
	// it (the connection); the old one must still be closed. Errors wrap
	// ErrUnavailable when the backend could not be reached: try again
	// later.
	Reopen(ctx context.Context) (Coordinator, error)
}

// ExpiryReporter is implemented by backends that can tell when the
// session's lease can first expire on the server: the instant after which
// another member may be granted a leadership this member held.
type ExpiryReporter interface {
	// LeaseExpiresIn returns how long from now until the session's lease
	// could first expire on the server, as proved by the last acknowledged
	// renewal: TTL after that renewal was sent. It is zero or negative once
	// that instant has passed, and stays meaningful after the session was
	// given up for lack of renewal (ErrLeaseDeadline), which happens a
	// margin earlier.
	LeaseExpiresIn() time.Duration
}

// SlotClaimer is implemented by backends that can record, once for the
// whole cluster, that a scheduled job's slot was taken, so that a job runs
// at most once per slot across failovers.
type SlotClaimer interface {
	// ClaimSlot records (job, slot) as taken by this member, if nobody has
	// taken it yet, and reports whether this call took it. Records are kept
	// for retention and then forgotten.
	ClaimSlot(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error)
}

// PickSwitchoverTarget chooses whom to hand over to when the operator named
// nobody: a member other than the leader, preferring active over running
// over any other state, then the lowest id. It returns "" when there is none.
func PickSwitchoverTarget(members []Member, leaderID string) string {
	rank := func(s State) int {
		switch s {
		case StateActive:
			return 0
		case StateRunning:
			return 1
		case StateInitializing, StateStarting:
			return 2
		default:
			return 3
		}
	}
	best := ""
	bestRank := 4
	for _, m := range members {
		if m.ID == leaderID || rank(m.State) == 3 {
			continue
		}
		r := rank(m.State)
		if r < bestRank || (r == bestRank && m.ID < best) {
			best, bestRank = m.ID, r
		}
	}
	return best
}

// StateEvents returns the events with which a Watch stream starts, in the
// order the package comment gives: one EventMemberJoined per member (in the
// order given; backends sort by id), then EventLeaderChanged (leader non-nil)
// or EventNoLeader, then EventPaused when paused, then EventSwitchover when a
// request for switchoverTo stands.
func StateEvents(members []Member, leader *Leader, paused bool, switchoverTo string) []Event {
	evs := make([]Event, 0, len(members)+3)
	for _, m := range members {
		evs = append(evs, Event{Type: EventMemberJoined, Member: m})
	}
	if leader != nil {
		evs = append(evs, Event{Type: EventLeaderChanged, Leader: *leader})
	} else {
		evs = append(evs, Event{Type: EventNoLeader})
	}
	if paused {
		evs = append(evs, Event{Type: EventPaused})
	}
	if switchoverTo != "" {
		evs = append(evs, Event{Type: EventSwitchover, SwitchoverTo: switchoverTo})
	}
	return evs
}

// Validate checks a record read from a backend: its id is a valid member
// name, its role one of the roles (or none) and its state one of the states
// (or none), so that a record written by hand or by something else is not
// taken for a member's.
func (m Member) Validate() error {
	if err := ValidateName("member id", m.ID); err != nil {
		return err
	}
	if m.Priority < 0 || m.Priority > MaxPriority {
		return fmt.Errorf("member %s: priority %d: want 0 to %d", m.ID, m.Priority, MaxPriority)
	}
	if m.Position != nil && *m.Position < 0 {
		return fmt.Errorf("member %s: position %d: want a non-negative integer", m.ID, *m.Position)
	}
	switch m.Role {
	case RoleNone, RoleMaster, RoleSlave:
	default:
		return fmt.Errorf("member %s: role %s: want master, slave or none", m.ID, short(string(m.Role)))
	}
	switch m.State {
	case "", StateStarting, StateInitializing, StateRunning, StateActive, StateStopping, StateStopped, StateFailed:
	default:
		return fmt.Errorf("member %s: state %s: want one of starting, initializing, running, active, stopping, stopped, failed", m.ID, short(string(m.State)))
	}
	return nil
}

// short quotes s, cut to 64 bytes, for an error line.
func short(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}
