package etcd

import (
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/ccctl/ccctl/coordinator"
)

// FuzzDecodeKey feeds the decoder of the keys read from etcd (member
// records, leader keys, the heir's place, control keys) with any key
// under the cluster, value and lease: it never panics, and whatever it
// accepts passes every check (a valid member id, matching its key, bound
// to a lease). Run it with go test -fuzz FuzzDecodeKey ./backends/etcd/.
func FuzzDecodeKey(f *testing.F) {
	record := `{"id":"web1","host":"h","address":"10.0.0.1","ports":[80],"role":"master","state":"active","token":7,"started_at":"2026-01-02T03:04:05Z","version":"1"}`
	for _, seed := range []struct {
		key, value string
		lease      int64
	}{
		{"members/web1", record, 1},
		{"members/web1", record, 0},
		{"members/web2", record, 1},
		{"members/../../x", `{"id":"../../x","role":"master"}`, 1},
		{"members/web1", `{"id":"web1","role":"king"}`, 1},
		{"members/web1", `{`, 1},
		{"members/web1", `null`, 1},
		{"members/web1", `{"id":"web1","ports":"80"}`, 1},
		{"election/web1", "web1", 5},
		{"election/web1", "web1", 0},
		{"election/ghost", "web1", 5},
		{"election/", "", 5},
		{"election/a/b", "a/b", 5},
		{"election-heir", "web2", 9},
		{"election-heir", "ghost", 0},
		{"election-heir", "", 9},
		{"control/pause", `{"by":"op","at":"2026-01-02T03:04:05Z"}`, 0},
		{"control/switchover", "web2", 9},
		{"control/switchover", "web2\n", 9},
		{"control/switchover", "force:web2", 9},
		{"control/switchover", "force:", 9},
		{"candidates/web2", "1", 9},
		{"candidates/web2", "01", 9},
		{"candidates/web2", "0", 9},
		{"last_position", "1000", 0},
		{"history/00000000000000000007", `{}`, 0},
		{"slots/job/2026-01-02T03:04:05Z", "web1", 3},
		{"members/\xff", "\x00", -1},
	} {
		f.Add(seed.key, []byte(seed.value), seed.lease, int64(3))
	}
	k := newKeys(DefaultPrefix, coordinator.Cluster{Environment: "prod", Service: "db"})
	f.Fuzz(func(t *testing.T, key string, value []byte, lease, createRev int64) {
		kv := &mvccpb.KeyValue{Key: []byte(k.base + key), Value: value, Lease: lease, CreateRevision: createRev, ModRevision: createRev}
		d := k.decode(kv)
		if d.err != nil {
			if len(d.err.Error()) > 512 {
				t.Errorf("error of %d bytes; want a short line", len(d.err.Error()))
			}
			return
		}
		switch d.kind {
		case kindMember:
			if id := strings.TrimPrefix(key, "members/"); d.member.ID != id {
				t.Errorf("member %q accepted under the key of %q", d.member.ID, id)
			}
			if err := d.member.Validate(); err != nil || lease == 0 {
				t.Errorf("member %+v (lease %d) accepted: %v", d.member, lease, err)
			}
		case kindLeader:
			if id := strings.TrimPrefix(key, "election/"); d.leader.ID != id || string(value) != id || lease == 0 ||
				coordinator.ValidateName("id", id) != nil || d.leader.Token != createRev {
				t.Errorf("leader %+v accepted from %q=%q (lease %d)", d.leader, key, value, lease)
			}
		case kindSwitchover:
			want := d.id
			if d.forced {
				want = forcedPrefix + d.id
			}
			if want != string(value) || lease == 0 || coordinator.ValidateName("id", d.id) != nil {
				t.Errorf("%q=%q (lease %d) accepted as naming %q (forced %v)", key, value, lease, d.id, d.forced)
			}
		case kindCandidate:
			if id := strings.TrimPrefix(key, "candidates/"); d.id != id || lease == 0 || d.prio < 1 || d.prio > coordinator.MaxPriority {
				t.Errorf("candidate %q (priority %d, lease %d) accepted from %q=%q", d.id, d.prio, lease, key, value)
			}
		case kindHeir:
			if d.id != string(value) || lease == 0 || coordinator.ValidateName("id", d.id) != nil {
				t.Errorf("%q=%q (lease %d) accepted as naming %q", key, value, lease, d.id)
			}
		}
	})
}
