package etcd

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// The ranking (coordinator.Rank) decides who tries first at a vacancy,
// whom a resigning leader hands over to and whom a switchover without a
// target names. It reads three things besides the election keys, in one
// read-only transaction (readRanking):
//
//   - the member records, for their priorities and positions;
//   - the candidate keys, candidates/<id>: one per campaigning member,
//     bound to its lease, its value the member's priority, put by the
//     campaign's first read and deleted when the campaign ends (by the
//     transaction that wins, or as the campaign gives up). A member that
//     is registered but does not campaign (its start hook still runs, or
//     it leads) is ranked as stopped: its position still counts in the
//     reference of the lag, but nobody hands it the leadership or the
//     heir's place, which it would not take up;
//   - the last master's position (last_position, no lease), put by the
//     master's Register in a transaction that holds only while its term's
//     leader key does.
//
// Nothing here is a condition of safety: the place a pass or a handover
// writes is bound to the target's lease, as its own claim would be, and
// the conditions on the target's keys (their create revisions as read)
// only make such a write fail when the target went away meanwhile.

// rankMaxMembers is the largest cluster in which every campaigning member
// reads the records at a vacancy with the heir's place vacant (N reads of
// N records and candidates: with 50 members on two cores under the race
// detector, that starved the sessions' renewals). Above it, they claim
// the vacant place first, as while the leadership is held, and only its
// holder ranks (one read per vacancy), at the cost of one more write
// before the best leads.
const rankMaxMembers = 16

// candidateOp puts this member's candidate key.
func (c *Coordinator) candidateOp() clientv3.Op {
	return clientv3.OpPut(c.keys.candidates+c.cfg.ID, strconv.Itoa(c.cfg.Ranking.EffectivePriority()), clientv3.WithLease(c.s.lease))
}

// leaveCandidateOp deletes this member's candidate key if this session
// holds it.
func (c *Coordinator) leaveCandidateOp() clientv3.Op {
	return c.deleteOwnOp(c.keys.candidates + c.cfg.ID)
}

// candidate is a campaigning member as a ranking read it: the lease its
// candidate key is bound to and the create revisions of that key and of
// its record (0: none), which a pass or a handover to it repeats as
// conditions.
type candidate struct {
	lease  clientv3.LeaseID
	rev    int64
	recRev int64
}

// ranking is what readRanking read.
type ranking struct {
	records []coordinator.Member // the member records, sorted by id
	// members are what Rank takes: the records, those of members that do
	// not campaign marked stopped, and the candidates without a record
	// (a member may campaign unregistered) with their priority.
	members []coordinator.Member
	cands   map[string]candidate
	last    *int64 // the last master's position (nil: unknown)
}

// readRanking reads, in one read-only transaction, the election and
// control keys, the member records, the candidate keys and the last
// master's position.
func (c *Coordinator) readRanking(ctx context.Context) (electionState, ranking, error) {
	resp, err := c.cli.Txn(ctx).Then(
		c.readOp(),
		clientv3.OpGet(c.keys.members, clientv3.WithPrefix()),
		clientv3.OpGet(c.keys.candidates, clientv3.WithPrefix()),
		clientv3.OpGet(c.keys.lastPos),
	).Commit()
	if err != nil {
		return electionState{}, ranking{}, err
	}
	if len(resp.Responses) != 4 {
		return electionState{}, ranking{}, fmt.Errorf("read ranking: got %d responses; want 4", len(resp.Responses))
	}
	st := c.stateOf(resp.Header.Revision, resp.Responses[0].GetResponseRange())
	return st, c.rankingOf(resp.Responses[1].GetResponseRange(), resp.Responses[2].GetResponseRange(), resp.Responses[3].GetResponseRange()), nil
}

// rankingOf builds a ranking from the reads of the records, the candidate
// keys and the last position.
func (c *Coordinator) rankingOf(recs, cands, last *pb.RangeResponse) ranking {
	r := ranking{cands: map[string]candidate{}}
	recKV := map[string]*mvccpb.KeyValue{}
	for _, kv := range recs.GetKvs() {
		if d := c.decodeKV(kv); d.err == nil {
			r.records = append(r.records, d.member)
			recKV[d.member.ID] = kv
		}
	}
	slices.SortFunc(r.records, func(a, b coordinator.Member) int { return cmp.Compare(a.ID, b.ID) })
	prio := map[string]int{}
	for _, kv := range cands.GetKvs() {
		d := c.decodeKV(kv)
		if d.err != nil || d.kind != kindCandidate {
			continue
		}
		cd := candidate{lease: clientv3.LeaseID(kv.Lease), rev: kv.CreateRevision}
		if rec := recKV[d.id]; rec != nil {
			if rec.Lease != kv.Lease {
				continue // not the same session's: not a candidate
			}
			cd.recRev = rec.CreateRevision
		}
		r.cands[d.id], prio[d.id] = cd, d.prio
	}
	for _, m := range r.records {
		if _, ok := r.cands[m.ID]; !ok {
			m.State = coordinator.StateStopped // registered, not campaigning
		}
		r.members = append(r.members, m)
	}
	for id, p := range prio {
		if _, ok := recKV[id]; !ok {
			r.members = append(r.members, coordinator.Member{ID: id, Priority: p})
		}
	}
	if kvs := last.GetKvs(); len(kvs) == 1 {
		if n, err := parsePosition(kvs[0].Value); err == nil {
			r.last = &n
		} else {
			c.rejects.reject(c.log, kvs[0], err)
		}
	}
	return r
}

// standing is one member's place at a vacancy, as it ranked then.
type standing struct {
	known   bool
	heirRev int64  // the mod revision of the heir's place it holds for (0: vacant)
	best    string // the best eligible candidate ("" none)
	target  candidate
	place   int // this member's place among the eligible: 0 best; -1 not eligible
}

// standing ranks r for member id, heir holding the place (heirRev its mod
// revision).
func (r ranking) standing(id, heir string, heirRev int64, rk coordinator.Ranking) standing {
	s := standing{known: true, heirRev: heirRev, place: -1}
	for i, st := range coordinator.Rank(r.members, heir, r.last, rk) {
		if !st.Eligible {
			break
		}
		if i == 0 {
			s.best, s.target = st.ID, r.cands[st.ID]
		}
		if st.ID == id {
			s.place = i
		}
	}
	return s
}

// holds reports whether s still holds in st: the same vacancy, and the
// heir's place as it was read (or as this member passed it).
func (s standing) holds(st electionState) bool {
	return s.known && st.leader == nil && modRev(st.heir) == s.heirRev
}

// modRev returns kv's mod revision, 0 for no key.
func modRev(kv *mvccpb.KeyValue) int64 {
	if kv == nil {
		return 0
	}
	return kv.ModRevision
}

// best returns the best eligible candidate other than exclude ("" none)
// and what a handover to it repeats as conditions.
func (r ranking) best(exclude, heir string, rk coordinator.Ranking) (string, candidate) {
	id := coordinator.Best(r.members, exclude, heir, r.last, rk)
	return id, r.cands[id]
}

// passHeir passes the heir's place, which this member holds (as st shows
// it), to the best candidate of s, bound to its lease, if its candidate
// key and record are as read; it reports whether it did, st then holding
// the keys as the transaction saw them. The holder of a passed place
// takes it up without ranking (electionState.passed).
func (c *Coordinator) passHeir(ctx context.Context, st *electionState, s standing) (bool, error) {
	resp, err := c.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.ModRevision(c.keys.heir), "=", modRev(st.heir)),
		clientv3.Compare(clientv3.CreateRevision(c.keys.candidates+s.best), "=", s.target.rev),
		clientv3.Compare(clientv3.CreateRevision(c.keys.members+s.best), "=", s.target.recRev),
	).Then(
		clientv3.OpPut(c.keys.heir, s.best, clientv3.WithLease(s.target.lease)), c.readOp(),
	).Else(c.readOp()).Commit()
	if err != nil {
		return false, err
	}
	*st = c.stateOf(resp.Header.Revision, resp.Responses[len(resp.Responses)-1].GetResponseRange())
	if resp.Succeeded {
		c.log.Info("campaign: passed the heir's place to the best candidate", "to", s.best)
	}
	return resp.Succeeded, nil
}

// LastPosition returns the position the latest master published while it
// led (Register with a Position), nil if none did or the key holds no
// valid position.
func (c *Coordinator) LastPosition(ctx context.Context) (*int64, error) {
	if err := c.check("last position"); err != nil {
		return nil, err
	}
	resp, err := c.cli.Get(ctx, c.keys.lastPos)
	if err != nil {
		return nil, c.sessionErr("last position", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	n, err := parsePosition(resp.Kvs[0].Value)
	if err != nil {
		c.rejects.reject(c.log, resp.Kvs[0], err)
		return nil, nil
	}
	return &n, nil
}

// switchoverTarget returns whom a switchover without a target names: the
// best eligible campaigning member other than the leader, or, when none
// campaigns, the best of the records; among members ranked equal (same
// position and priority) the state decides as
// coordinator.PickSwitchoverTarget does. "" when none is eligible.
func (r ranking) switchoverTarget(leader, heir string, rk coordinator.Ranking) string {
	if id := pickRanked(r.members, leader, heir, r.last, rk); id != "" {
		return id
	}
	return pickRanked(r.records, leader, heir, r.last, rk)
}

// pickRanked returns the best eligible of ms other than exclude, the
// state and then the id deciding among those of the best's position and
// priority.
func pickRanked(ms []coordinator.Member, exclude, heir string, last *int64, rk coordinator.Ranking) string {
	ms = slices.DeleteFunc(slices.Clone(ms), func(m coordinator.Member) bool { return m.ID == exclude })
	byID := map[string]coordinator.Member{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	order := coordinator.Rank(ms, heir, last, rk)
	if len(order) == 0 || !order[0].Eligible {
		return ""
	}
	top := byID[order[0].ID]
	var tied []coordinator.Member
	for _, st := range order {
		m := byID[st.ID]
		if !st.Eligible || m.Priority != top.Priority || !samePosition(m.Position, top.Position) {
			break
		}
		tied = append(tied, m)
	}
	if id := coordinator.PickSwitchoverTarget(tied, ""); id != "" {
		return id
	}
	return order[0].ID
}

func samePosition(a, b *int64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
