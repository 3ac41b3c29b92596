package coordinator_test

import (
	"slices"
	"testing"

	"github.com/ccctl/ccctl/coordinator"
)

func pos(v int64) *int64 { return &v }

func ids(sts []coordinator.Standing) []string {
	var out []string
	for _, s := range sts {
		if s.Eligible {
			out = append(out, s.ID)
		} else {
			out = append(out, s.ID+"!"+s.Reason)
		}
	}
	return out
}

func TestRank(t *testing.T) {
	m := func(id string, prio int, p *int64) coordinator.Member {
		return coordinator.Member{ID: id, Priority: prio, Position: p, State: coordinator.StateRunning}
	}
	for _, tc := range []struct {
		name    string
		members []coordinator.Member
		heir    string
		last    *int64
		r       coordinator.Ranking
		want    []string
	}{
		{"position first", []coordinator.Member{m("a", 1, pos(500)), m("b", 1, pos(900)), m("c", 1, nil)}, "a", nil, coordinator.Ranking{},
			[]string{"b", "a", "c"}},
		{"priority breaks ties", []coordinator.Member{m("a", 1, pos(900)), m("b", 5, pos(900))}, "a", nil, coordinator.Ranking{},
			[]string{"b", "a"}},
		{"heir breaks ties", []coordinator.Member{m("a", 1, nil), m("b", 1, nil), m("c", 1, nil)}, "c", nil, coordinator.Ranking{},
			[]string{"c", "a", "b"}},
		{"priority 0 never", []coordinator.Member{m("a", 0, pos(1000)), m("b", 1, pos(10))}, "", nil, coordinator.Ranking{},
			[]string{"b", "a!priority 0"}},
		{"lag from the last master", []coordinator.Member{m("a", 1, pos(900)), m("b", 1, pos(500)), m("c", 1, nil)}, "", pos(1000), coordinator.Ranking{MaxLag: 200},
			[]string{"a", "b!lag 500 > maximum_lag 200", "c!position unknown"}},
		{"everyone too far behind", []coordinator.Member{m("a", 1, pos(10)), m("b", 1, pos(20))}, "", pos(1000), coordinator.Ranking{MaxLag: 100},
			[]string{"b!lag 980 > maximum_lag 100", "a!lag 990 > maximum_lag 100"}},
		{"no reference, no lag", []coordinator.Member{m("a", 1, nil), m("b", 1, nil)}, "", nil, coordinator.Ranking{MaxLag: 1},
			[]string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(coordinator.Rank(tc.members, tc.heir, tc.last, tc.r)); !slices.Equal(got, tc.want) {
				t.Errorf("Rank = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestBestExcludesLeader(t *testing.T) {
	ms := []coordinator.Member{{ID: "a", Priority: 1, Position: pos(1000)}, {ID: "b", Priority: 1, Position: pos(900)}, {ID: "c", Priority: 0, Position: pos(2000)}}
	if got := coordinator.Best(ms, "a", "", nil, coordinator.Ranking{}); got != "b" {
		t.Errorf("Best = %q; want b", got)
	}
	if got := coordinator.Best(ms[2:], "", "", nil, coordinator.Ranking{}); got != "" {
		t.Errorf("Best of a priority-0 member = %q; want none", got)
	}
}

func TestEffectivePriority(t *testing.T) {
	for _, r := range []struct {
		in, want int
	}{{0, 1}, {coordinator.NeverLead, 0}, {7, 7}} {
		if got := (coordinator.Ranking{Priority: r.in}).EffectivePriority(); got != r.want {
			t.Errorf("EffectivePriority(%d) = %d; want %d", r.in, got, r.want)
		}
	}
}
