package etcd

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/ccctl/ccctl/coordinator"
)

// A record written before priorities existed has the default priority; one
// that says 0 keeps it.
func TestMemberRecordPriority(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int
	}{
		{`{"id":"a"}`, coordinator.DefaultPriority},
		{`{"id":"a","priority":0}`, 0},
		{`{"id":"a","priority":7}`, 7},
	} {
		m, err := testKeys.member(&mvccpb.KeyValue{Key: []byte(testKeys.members + "a"), Value: []byte(tc.value), Lease: 1})
		if err != nil || m.Priority != tc.want {
			t.Errorf("record %s: priority %d, %v; want %d", tc.value, m.Priority, err, tc.want)
		}
	}
	if _, err := testKeys.member(&mvccpb.KeyValue{Key: []byte(testKeys.members + "a"), Value: []byte(`{"id":"a","priority":-1}`), Lease: 1}); err == nil {
		t.Error("record of priority -1 accepted; want an error")
	}
}
