package etcd

import (
	"log/slog"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// stateWith builds the state a campaign of cluster cl would read from
// kvs, through the one parser.
func stateWith(t *testing.T, kvs ...*mvccpb.KeyValue) electionState {
	t.Helper()
	c := &Coordinator{keys: testKeys, log: slog.New(slog.DiscardHandler)}
	st := electionState{rev: 100}
	for _, kv := range kvs {
		st.set(c.decodeRead(kv))
	}
	return st
}

var testKeys = newKeys("/ccctl", coordinator.Cluster{Environment: "prod", Service: "db"})

// Leases of the members in the table: me is the member that decides.
const (
	leaseMe    = clientv3.LeaseID(1)
	leaseOther = clientv3.LeaseID(2)
	leaseThird = clientv3.LeaseID(3)
)

func leaderKV(id string, lease clientv3.LeaseID, created int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(testKeys.leaderOf(id)), Value: []byte(id), Lease: int64(lease), CreateRevision: created, ModRevision: created}
}

func heirKV(id string, lease clientv3.LeaseID) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(testKeys.heir), Value: []byte(id), Lease: int64(lease), CreateRevision: 50, ModRevision: 50, Version: 1}
}

func switchoverKV(id string, lease clientv3.LeaseID) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(testKeys.switchover), Value: []byte(id), Lease: int64(lease), CreateRevision: 60, ModRevision: 60}
}

// passedKV is the heir's place passed to id: put over a claim.
func passedKV(id string, lease clientv3.LeaseID) *mvccpb.KeyValue {
	kv := heirKV(id, lease)
	kv.Version, kv.ModRevision = 2, 55
	return kv
}

func forcedKV(id string, lease clientv3.LeaseID) *mvccpb.KeyValue {
	kv := switchoverKV(id, lease)
	kv.Value = []byte(forcedPrefix + id)
	return kv
}

// ranked is member me having ranked at a vacancy: place among the
// eligible (0 best, -1 not eligible), best the best candidate.
func ranked(place int, best string) self {
	return self{id: "me", lease: leaseMe, rank: standing{known: true, place: place, best: best}}
}

// never is member me of priority 0.
var never = self{id: "me", lease: leaseMe, never: true}

var pauseKV = &mvccpb.KeyValue{Key: []byte(testKeys.pause), Value: []byte("1"), CreateRevision: 70, ModRevision: 70}

// TestDecide: what a campaign does in each state, without etcd.
func TestDecide(t *testing.T) {
	me := self{id: "me", lease: leaseMe}
	tests := []struct {
		name string
		kvs  []*mvccpb.KeyValue
		self self
		want decision
	}{
		{"vacant, nobody in the heir's place: rank first", nil, me, decision{act: actRank, first: true}},
		{"vacant, place vacant, ranked best: lead at once", nil, ranked(0, "me"), decision{act: actLead, first: true}},
		{"vacant, place vacant, ranked second: lead after the wait", nil, ranked(1, "b"), decision{act: actLead, wait: true, place: 1}},
		{"vacant, place vacant, ranked third: later still", nil, ranked(2, "b"), decision{act: actLead, wait: true, place: 2}},
		{"vacant, place vacant, not eligible: rank again after the wait", nil, ranked(-1, "b"), decision{act: actRank, wait: true}},
		{"vacant, place vacant, nobody eligible: rank again after the wait", nil, ranked(-1, ""), decision{act: actRank, wait: true}},
		{"vacant, place vacant, many members: claim it first", nil, self{id: "me", lease: leaseMe, many: true}, decision{act: actClaim}},
		{"vacant, another in the heir's place: wait for it", []*mvccpb.KeyValue{heirKV("b", leaseOther)}, me, decision{act: actWait}},
		{"vacant, in the heir's place: rank first", []*mvccpb.KeyValue{heirKV("me", leaseMe)}, me, decision{act: actRank, first: true}},
		{"vacant, in the heir's place, many members: rank first", []*mvccpb.KeyValue{heirKV("me", leaseMe)}, self{id: "me", lease: leaseMe, many: true}, decision{act: actRank, first: true}},
		{"vacant, in the heir's place, ranked best: lead at once", []*mvccpb.KeyValue{heirKV("me", leaseMe)}, ranked(0, "me"), decision{act: actLead, first: true}},
		{"vacant, in the heir's place, another best: pass the place", []*mvccpb.KeyValue{heirKV("me", leaseMe)}, ranked(1, "b"), decision{act: actPass, first: true}},
		{"vacant, in the heir's place, not eligible: pass the place", []*mvccpb.KeyValue{heirKV("me", leaseMe)}, ranked(-1, "b"), decision{act: actPass, first: true}},
		{"vacant, in the heir's place, nobody eligible: keep it, rank again after the wait", []*mvccpb.KeyValue{heirKV("me", leaseMe)}, ranked(-1, ""), decision{act: actRank, wait: true}},
		{"vacant, passed the place, eligible: lead after the wait", []*mvccpb.KeyValue{passedKV("b", leaseOther)}, ranked(1, "b"), decision{act: actLead, wait: true, place: 1}},
		{"vacant, passed the place, not eligible: wait", []*mvccpb.KeyValue{passedKV("b", leaseOther)}, ranked(-1, "b"), decision{act: actWait}},
		{"vacant, the place passed to this member: lead at once, no ranking", []*mvccpb.KeyValue{passedKV("me", leaseMe)}, me, decision{act: actLead, first: true}},
		{"vacant, the place passed to this member, ranked low: lead at once still", []*mvccpb.KeyValue{passedKV("me", leaseMe)}, ranked(-1, "b"), decision{act: actLead, first: true}},
		{"priority 0, vacant, nobody in the place: wait", nil, never, decision{act: actWait}},
		{"priority 0, led by another, place vacant: never claims", []*mvccpb.KeyValue{leaderKV("b", leaseOther, 10)}, never, decision{act: actWait}},
		{"priority 0, switchover to it, vacant: wait", []*mvccpb.KeyValue{switchoverKV("me", leaseMe)}, never, decision{act: actWait}},
		{"priority 0, forced switchover to it, vacant: lead at once", []*mvccpb.KeyValue{forcedKV("me", leaseMe)}, never, decision{act: actLead, first: true}},
		{"priority 0, forced switchover to it, still led: wait, watching the leader", []*mvccpb.KeyValue{forcedKV("me", leaseMe), leaderKV("b", leaseOther, 10)}, never, decision{act: actWait, first: true}},
		{"priority 0, a handed-over term: adopt", []*mvccpb.KeyValue{leaderKV("me", leaseMe, 10)}, never, decision{act: actAdopt}},
		{"forced switchover to this member, ranked ineligible: lead at once", []*mvccpb.KeyValue{forcedKV("me", leaseMe), heirKV("b", leaseOther)}, ranked(-1, "b"), decision{act: actLead, first: true}},
		{"priority 0, a forced switchover written by hand (no lease): wait", []*mvccpb.KeyValue{forcedKV("me", 0)}, never, decision{act: actWait}},
		{"forced switchover to another, vacant: claim only", []*mvccpb.KeyValue{forcedKV("b", leaseOther)}, me, decision{act: actClaim}},
		{"led by another, place vacant: claim it", []*mvccpb.KeyValue{leaderKV("b", leaseOther, 10)}, me, decision{act: actClaim}},
		{"led by another, another in the place: wait", []*mvccpb.KeyValue{leaderKV("b", leaseOther, 10), heirKV("c", leaseThird)}, me, decision{act: actWait}},
		{"led by another, in the place: wait, watching the leader", []*mvccpb.KeyValue{leaderKV("b", leaseOther, 10), heirKV("me", leaseMe)}, me, decision{act: actWait, first: true}},
		{"the leader key is this session's: adopt (handed over)", []*mvccpb.KeyValue{leaderKV("me", leaseMe, 10), heirKV("me", leaseMe)}, me, decision{act: actAdopt}},
		{"the leader key is this session's: adopt (an answer lost)", []*mvccpb.KeyValue{leaderKV("me", leaseMe, 10)}, me, decision{act: actAdopt}},
		{"the term this handle ended is never adopted", []*mvccpb.KeyValue{leaderKV("me", leaseMe, 10)}, self{id: "me", lease: leaseMe, ended: 10}, decision{act: actClaim}},
		{"a later term of this session is adopted", []*mvccpb.KeyValue{leaderKV("me", leaseMe, 12)}, self{id: "me", lease: leaseMe, ended: 10}, decision{act: actAdopt}},
		{"another session's key of this id is not adopted", []*mvccpb.KeyValue{leaderKV("me", leaseOther, 10)}, me, decision{act: actClaim}},
		{"paused and vacant, place vacant: claim only", []*mvccpb.KeyValue{pauseKV}, me, decision{act: actClaim}},
		{"paused and vacant, in the place: wait", []*mvccpb.KeyValue{pauseKV, heirKV("me", leaseMe)}, me, decision{act: actWait, first: true}},
		{"switchover to this member, another in the place: lead at once", []*mvccpb.KeyValue{switchoverKV("me", leaseMe), heirKV("b", leaseOther)}, me, decision{act: actLead, first: true}},
		{"switchover to this member, still led: wait, watching the leader", []*mvccpb.KeyValue{switchoverKV("me", leaseMe), leaderKV("b", leaseOther, 10), heirKV("c", leaseThird)}, me, decision{act: actWait, first: true}},
		{"switchover to another, vacant: claim only", []*mvccpb.KeyValue{switchoverKV("b", leaseOther)}, me, decision{act: actClaim}},
		{"switchover to another, in the place: wait", []*mvccpb.KeyValue{switchoverKV("b", leaseOther), heirKV("me", leaseMe)}, me, decision{act: actWait, first: true}},
		{"a place written by hand (no lease) counts as vacant", []*mvccpb.KeyValue{leaderKV("b", leaseOther, 10), heirKV("c", 0)}, me, decision{act: actClaim}},
		{"a leader key written by hand counts as vacant", []*mvccpb.KeyValue{leaderKV("b", 0, 10)}, me, decision{act: actRank, first: true}},
		{"a switchover written by hand names nobody", []*mvccpb.KeyValue{switchoverKV("b", 0), heirKV("me", leaseMe)}, ranked(0, "me"), decision{act: actLead, first: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stateWith(t, tt.kvs...)
			me := tt.self
			if me.rank.known {
				me.rank.heirRev = modRev(st.heir)
			}
			if got := decide(st, me); got != tt.want {
				t.Errorf("decide = %+v; want %+v", got, tt.want)
			}
		})
	}
}

// TestSetLeaderRule: the one rule for a leader key, as the campaign, the
// monitor and Watch all apply it.
func TestSetLeaderRule(t *testing.T) {
	c := &Coordinator{keys: testKeys, log: slog.New(slog.DiscardHandler)}
	del := func(kv *mvccpb.KeyValue) change {
		return c.decodeEvent(&clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: kv.Key, ModRevision: kv.ModRevision + 1}})
	}
	a, b := leaderKV("a", leaseOther, 10), leaderKV("b", leaseThird, 20)
	forged := leaderKV("a", 0, 30) // over a's key, by hand

	st := stateWith(t, a)
	st.set(del(b)) // another key's deletion leaves the leader
	if got := st.leaderInfo(); got == nil || got.ID != "a" {
		t.Fatalf("after deleting another key: leader %v; want a", got)
	}
	st.set(del(a)) // a handover: a's key deleted, b's created, one revision
	st.set(c.decodeRead(b))
	if got := st.leaderInfo(); got == nil || got.ID != "b" || got.Token != 20 {
		t.Fatalf("after a handover: leader %v; want b with token 20", got)
	}
	st = stateWith(t, a)
	st.set(c.decodeRead(forged)) // a's key overwritten by a key that fails the checks
	if st.leader != nil || len(st.bogus) != 1 {
		t.Fatalf("after a forged put over the leader's key: leader %v, %d bogus; want none, 1", st.leaderInfo(), len(st.bogus))
	}
	st.set(del(forged))
	if len(st.bogus) != 0 {
		t.Fatalf("after the forged key's deletion: %d bogus; want 0", len(st.bogus))
	}
}
