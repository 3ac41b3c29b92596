package etcd_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestWatchResumesAfterCompaction breaks a watcher's connection while the
// cluster changes and etcd compacts the history it would need: the watch
// resumes from the current state and reports the difference.
func TestWatchResumesAfterCompaction(t *testing.T) {
	e := etcdtest.Start(t)
	direct := e.Client(t)
	cl := newCluster()
	pw := etcdtest.NewProxy(t, e.Endpoint(0))
	var logs syncBuffer
	w := openWith(t, etcd.Config{Endpoints: []string{pw.Endpoint()}, Cluster: cl, ID: "w", TTL: testTTL,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a := open(t, cl, "a", e.Endpoint(0))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ch, err := w.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	untilEvent(t, ch, coordinator.EventNoLeader)

	pw.Cut()
	la := lead(t, a)
	open(t, cl, "d", e.Endpoint(0))
	resp, err := direct.Get(ctx, "compact")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
	pw.Reset()
	pw.Heal()

	want := map[string]bool{"member_joined(d)": false, "leader_changed(a)": false}
	timeout := time.After(waitTimeout)
	for n := 0; n < len(want); {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch closed; want it resumed")
			}
			var got string
			switch ev.Type {
			case coordinator.EventMemberJoined:
				got = "member_joined(" + ev.Member.ID + ")"
			case coordinator.EventLeaderChanged:
				got = "leader_changed(" + ev.Leader.ID + ")"
				if ev.Leader.Token != la.Token() {
					t.Errorf("leader_changed token %d; want %d", ev.Leader.Token, la.Token())
				}
			default:
				got = ev.Type.String()
			}
			seen, expected := want[got]
			if !expected || seen {
				t.Fatalf("after the compaction: got %s; want each of %v once", got, want)
			}
			want[got] = true
			n++
		case <-timeout:
			t.Fatalf("not every change reported within %v: %v", waitTimeout, want)
		}
	}
	if err := w.Err(); err != nil {
		t.Fatalf("watcher's session: %v", err)
	}
	if !strings.Contains(logs.String(), "watch: resuming from the current state") {
		t.Errorf("watcher's log:\n%s\nwant a line saying it resumed from the current state", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
