package etcd

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/ccctl/ccctl/coordinator"
)

// Layout is where one cluster's keys live under a prefix, and how a key
// read from there is decoded and checked. It is the one description of
// the layout: the backend and the CLI both read keys through it.
//
// Every key read from etcd is checked as input from outside (an operator's
// etcdctl put, another program): a member record, leader key, heir's place
// or switchover request that fails the checks is not one, and is ignored.
type Layout struct{ k keys }

// NewLayout returns the layout of cl's keys under prefix (DefaultPrefix
// when empty; trailing '/' are dropped, so "/" puts them at
// /<environment>/<service>/).
func NewLayout(prefix string, cl coordinator.Cluster) (Layout, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return Layout{}, err
	}
	if err := cl.Validate(); err != nil {
		return Layout{}, invalid("%v", err)
	}
	return Layout{newKeys(p, cl)}, nil
}

// cleanPrefix applies the default to prefix, checks it and drops its
// trailing '/'.
func cleanPrefix(prefix string) (string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasPrefix(prefix, "/") {
		return "", invalid("prefix %s: want it to start with '/'", quote([]byte(prefix)))
	}
	if strings.ContainsFunc(prefix, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", invalid("prefix %s: want no control characters", quote([]byte(prefix)))
	}
	return strings.TrimRight(prefix, "/"), nil
}

// Base returns the prefix of every key of the cluster:
// <prefix>/<environment>/<service>/.
func (l Layout) Base() string { return l.k.base }

// Members returns the prefix of the member records.
func (l Layout) Members() string { return l.k.members }

// Member returns the key of member id's record.
func (l Layout) Member(id string) string { return l.k.members + id }

// DecodeMember returns the member record kv holds, or an error saying why
// it is not one: its key is not under Members, it is bound to no lease (a
// member's record always is: a key put by hand is not), it does not parse,
// its id is not a valid member id or differs from its key, or its role or
// state is unknown.
func (l Layout) DecodeMember(kv *mvccpb.KeyValue) (coordinator.Member, error) {
	return l.k.member(kv)
}

// DecodeLeader returns the leader that a key under election/ names, or an
// error saying why it names none: the key is not election/<id> with <id>
// a valid member id and its value that id, or it is bound to no lease (a
// leader key always is: one put by hand is not).
func (l Layout) DecodeLeader(kv *mvccpb.KeyValue) (coordinator.Leader, error) {
	return l.k.leader(kv)
}

// LastPosition returns the key of the position the last master published
// while it led (a decimal integer, no lease; see LastPosition).
func (l Layout) LastPosition() string { return l.k.lastPos }

// DecodeLastPosition returns the position kv, read at LastPosition, holds,
// or an error saying why it holds none (not a non-negative decimal
// integer): such a value counts as unknown.
func (l Layout) DecodeLastPosition(kv *mvccpb.KeyValue) (int64, error) {
	return parsePosition(kv.Value)
}

// parsePosition parses a position: a non-negative decimal integer.
func parsePosition(b []byte) (int64, error) {
	if len(b) > 20 {
		return 0, fmt.Errorf("position %s: want a non-negative integer", quote(b))
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 || string(b) != strconv.FormatInt(n, 10) {
		return 0, fmt.Errorf("position %s: want a non-negative integer", quote(b))
	}
	return n, nil
}

// errNoLease is why a key that must be bound to a session is rejected.
var errNoLease = errors.New("bound to no lease (not written by a member)")

func (k keys) member(kv *mvccpb.KeyValue) (coordinator.Member, error) {
	id, ok := strings.CutPrefix(string(kv.Key), k.members)
	if !ok {
		return coordinator.Member{}, errors.New("not a member record's key")
	}
	if err := coordinator.ValidateName("member id", id); err != nil {
		return coordinator.Member{}, err
	}
	if kv.Lease == 0 {
		return coordinator.Member{}, errNoLease
	}
	// A record written before priorities existed has none: the default.
	m := coordinator.Member{Priority: coordinator.DefaultPriority}
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		return coordinator.Member{}, fmt.Errorf("decode member record: %w", err)
	}
	if m.ID != id {
		return coordinator.Member{}, fmt.Errorf("record of id %s under the key of %s", quote([]byte(m.ID)), id)
	}
	if err := m.Validate(); err != nil {
		return coordinator.Member{}, err
	}
	return m, nil
}

func (k keys) leader(kv *mvccpb.KeyValue) (coordinator.Leader, error) {
	id, ok := strings.CutPrefix(string(kv.Key), k.leaders)
	if !ok {
		return coordinator.Leader{}, errors.New("not a leader key")
	}
	if err := coordinator.ValidateName("leader id", id); err != nil {
		return coordinator.Leader{}, err
	}
	if string(kv.Value) != id {
		return coordinator.Leader{}, fmt.Errorf("value %s: want the id of its key, %s", quote(kv.Value), id)
	}
	if kv.Lease == 0 {
		return coordinator.Leader{}, errNoLease
	}
	return coordinator.Leader{ID: id, Token: kv.CreateRevision}, nil
}

// forcedPrefix marks a switchover request an operator forced
// (Coordinator.Failover): control/switchover holds "force:<id>".
const forcedPrefix = "force:"

// switchoverID checks a switchover request and returns the member it
// names and whether it was forced.
func switchoverID(kv *mvccpb.KeyValue) (string, bool, error) {
	v, forced := strings.CutPrefix(string(kv.Value), forcedPrefix)
	id, err := sessionID(&mvccpb.KeyValue{Value: []byte(v), Lease: kv.Lease})
	return id, forced, err
}

// candidate checks the key of a campaigning member (candidates/<id>,
// bound to its lease, its value the member's priority) and returns its id
// and priority.
func (k keys) candidate(kv *mvccpb.KeyValue) (string, int, error) {
	id := strings.TrimPrefix(string(kv.Key), k.candidates)
	if err := coordinator.ValidateName("candidate id", id); err != nil {
		return "", 0, err
	}
	if kv.Lease == 0 {
		return "", 0, errNoLease
	}
	p, err := strconv.Atoi(string(kv.Value))
	if err != nil || p < 1 || p > coordinator.MaxPriority || string(kv.Value) != strconv.Itoa(p) {
		return "", 0, fmt.Errorf("candidate %s: priority %s: want 1 to %d", id, quote(kv.Value), coordinator.MaxPriority)
	}
	return id, p, nil
}

// sessionID checks the value of a key that names a member and is bound
// to a session (the heir's place, bound to the heir's lease; a switchover
// request, bound to its target's) and returns that member's id.
func sessionID(kv *mvccpb.KeyValue) (string, error) {
	id := string(kv.Value)
	if err := coordinator.ValidateName("member id", id); err != nil {
		return "", err
	}
	if kv.Lease == 0 {
		return "", errNoLease
	}
	return id, nil
}

// kind is what a key of the cluster is.
type kind int

const (
	kindOther      kind = iota // not a key the backend reads (history, slots, unknown)
	kindMember                 // members/<id>
	kindLeader                 // election/<id>
	kindHeir                   // election-heir
	kindPause                  // control/pause
	kindSwitchover             // control/switchover
	kindCandidate              // candidates/<id>
)

// decoded is a key read from etcd, decoded: what it is and, when err is
// nil, what it says.
type decoded struct {
	kind   kind
	member coordinator.Member // kindMember
	leader coordinator.Leader // kindLeader
	id     string             // kindHeir, kindSwitchover, kindCandidate: the member it names
	forced bool               // kindSwitchover: forced (Failover)
	prio   int                // kindCandidate: the candidate's priority
	err    error              // why the key is not what its name says: ignore it
}

// decode sorts kv by its key and checks it. A pause request is taken as it
// is (an operator may write it by hand, and it names nobody).
func (k keys) decode(kv *mvccpb.KeyValue) decoded {
	key := string(kv.Key)
	switch {
	case strings.HasPrefix(key, k.members):
		m, err := k.member(kv)
		return decoded{kind: kindMember, member: m, err: err}
	case strings.HasPrefix(key, k.leaders):
		l, err := k.leader(kv)
		return decoded{kind: kindLeader, leader: l, err: err}
	case key == k.heir:
		id, err := sessionID(kv)
		return decoded{kind: kindHeir, id: id, err: err}
	case key == k.pause:
		return decoded{kind: kindPause}
	case key == k.switchover:
		id, forced, err := switchoverID(kv)
		return decoded{kind: kindSwitchover, id: id, forced: forced, err: err}
	case strings.HasPrefix(key, k.candidates):
		id, p, err := k.candidate(kv)
		return decoded{kind: kindCandidate, id: id, prio: p, err: err}
	}
	return decoded{kind: kindOther}
}

// quote quotes b for a log or error line, cut to 64 bytes.
func quote(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q...", b[:64])
	}
	return fmt.Sprintf("%q", b)
}

// rejectLog logs each rejected key once per revision, however often it
// is read. Its zero value is ready to use.
type rejectLog struct {
	mu   sync.Mutex
	seen map[string]int64 // key -> mod revision last logged
}

// maxRejects bounds the keys a rejectLog remembers; past it, it forgets
// them all (and may log them again).
const maxRejects = 1024

// reject logs, unless it did for this revision of kv, that kv is ignored
// and why.
func (r *rejectLog) reject(log *slog.Logger, kv *mvccpb.KeyValue, err error) {
	key := string(kv.Key)
	r.mu.Lock()
	if rev, ok := r.seen[key]; ok && rev == kv.ModRevision {
		r.mu.Unlock()
		return
	}
	if r.seen == nil || len(r.seen) >= maxRejects {
		r.seen = map[string]int64{}
	}
	r.seen[key] = kv.ModRevision
	r.mu.Unlock()
	log.Warn("ignored a key that is not what its name says", "key", quote(kv.Key), "revision", kv.ModRevision, "err", err)
}

// decodeKV decodes kv and logs it once if it is rejected.
func (c *Coordinator) decodeKV(kv *mvccpb.KeyValue) decoded {
	d := c.keys.decode(kv)
	if d.err != nil {
		c.rejects.reject(c.log, kv, d.err)
	}
	return d
}
