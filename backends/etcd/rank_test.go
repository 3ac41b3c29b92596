package etcd

import (
	"encoding/json"
	"log/slog"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/ccctl/ccctl/coordinator"
)

// TestRankingOf: what a ranking makes of the records and candidate keys
// it read, without etcd.
func TestRankingOf(t *testing.T) {
	c := &Coordinator{keys: testKeys, log: slog.New(slog.DiscardHandler)}
	rec := func(id string, lease, rev int64, p *int64) *mvccpb.KeyValue {
		b, _ := json.Marshal(coordinator.Member{ID: id, State: coordinator.StateRunning, Priority: 1, Position: p})
		return &mvccpb.KeyValue{Key: []byte(testKeys.members + id), Value: b, Lease: lease, CreateRevision: rev, ModRevision: rev}
	}
	cand := func(id, prio string, lease, rev int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(testKeys.candidates + id), Value: []byte(prio), Lease: lease, CreateRevision: rev, ModRevision: rev}
	}
	n := func(v int64) *int64 { return &v }
	recs := &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{
		rec("a", 1, 10, n(1000)), // campaigns
		rec("b", 2, 11, n(2000)), // registered, not campaigning
		rec("c", 3, 12, n(900)),  // its candidate key is another session's
	}}
	cands := &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{
		cand("a", "1", 1, 20),
		cand("c", "1", 9, 21),
		cand("d", "5", 4, 22),  // campaigns unregistered
		cand("e", "1", 0, 23),  // written by hand
		cand("f", "x", 6, 24),  // not a priority
		cand("g", "01", 7, 25), // not the canonical form
	}}
	r := c.rankingOf(recs, cands, &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte(testKeys.lastPos), Value: []byte("1500")}}})
	if r.last == nil || *r.last != 1500 {
		t.Errorf("last = %v; want 1500", r.last)
	}
	if len(r.cands) != 2 || r.cands["a"] != (candidate{lease: 1, rev: 20, recRev: 10}) || r.cands["d"] != (candidate{lease: 4, rev: 22}) {
		t.Errorf("candidates %+v; want a (lease 1, revisions 20 and 10) and d (lease 4, revision 22, no record)", r.cands)
	}
	got := coordinator.Rank(r.members, "", r.last, coordinator.Ranking{})
	want := []coordinator.Standing{
		{ID: "a", Eligible: true},
		{ID: "d", Eligible: true},
		{ID: "b", Reason: "state stopped"},
		{ID: "c", Reason: "state stopped"},
	}
	if len(got) != len(want) {
		t.Fatalf("Rank = %+v; want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Rank[%d] = %+v; want %+v", i, got[i], want[i])
		}
	}
	// b's position counts in the reference of the lag although b does
	// not campaign: with maximum lag 500, a (1000 of 2000) may not lead.
	s := r.standing("d", "", 0, coordinator.Ranking{MaxLag: 500})
	if s.best != "" || s.place != -1 {
		t.Errorf("standing with maximum lag 500: best %q, place %d; want none, -1", s.best, s.place)
	}
	s = r.standing("d", "", 0, coordinator.Ranking{})
	if s.best != "a" || s.place != 1 || s.target != r.cands["a"] {
		t.Errorf("standing of d: best %q, place %d, target %+v; want a, 1, a's", s.best, s.place, s.target)
	}
	for _, v := range []string{"-1", "x", "", "1.5", "99999999999999999999999"} {
		r := c.rankingOf(recs, cands, &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte(testKeys.lastPos), Value: []byte(v)}}})
		if r.last != nil {
			t.Errorf("last position %q read as %d; want unknown", v, *r.last)
		}
	}
}

// TestSwitchoverTarget: a switchover without a target names the best
// campaigning member, the state deciding among those ranked equal, and
// falls back on the records when nobody campaigns.
func TestSwitchoverTarget(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	m := func(id string, st coordinator.State, p *int64, prio int) coordinator.Member {
		return coordinator.Member{ID: id, State: st, Position: p, Priority: prio}
	}
	tests := []struct {
		name    string
		members []coordinator.Member
		records []coordinator.Member
		want    string
	}{
		{"the furthest ahead", []coordinator.Member{m("l", coordinator.StateActive, n(10), 1), m("b", coordinator.StateRunning, n(5), 1), m("c", coordinator.StateRunning, n(9), 1)}, nil, "c"},
		{"equal: active before running", []coordinator.Member{m("l", coordinator.StateActive, nil, 1), m("b", coordinator.StateRunning, nil, 1), m("d", coordinator.StateActive, nil, 1)}, nil, "d"},
		{"priority 0 never", []coordinator.Member{m("l", coordinator.StateActive, nil, 1), m("z", coordinator.StateActive, n(99), 0)}, nil, ""},
		{"nobody campaigns: the records", []coordinator.Member{m("l", coordinator.StateActive, nil, 1), m("b", coordinator.StateStopped, nil, 1)},
			[]coordinator.Member{m("l", coordinator.StateActive, nil, 1), m("b", coordinator.StateRunning, nil, 1)}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ranking{members: tt.members, records: tt.records}
			if got := r.switchoverTarget("l", "", coordinator.Ranking{}); got != tt.want {
				t.Errorf("switchoverTarget = %q; want %q", got, tt.want)
			}
		})
	}
}
