package etcd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

func historyPrefix(cl coordinator.Cluster) string {
	return etcd.DefaultPrefix + "/" + cl.Environment + "/" + cl.Service + "/history/"
}

// waitHistory polls c's history until ok accepts it, failing after
// waitTimeout (a term's beginning is recorded a moment after it began).
func waitHistory(t *testing.T, c *etcd.Coordinator, what string, ok func([]coordinator.Term) bool) []coordinator.Term {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err := c.History(ctx, 0)
		cancel()
		if err == nil && ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("history: want %s; got %s (err %v)", what, terms(h), err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a bounded poll
	}
}

func terms(h []coordinator.Term) string {
	var b strings.Builder
	for _, t := range h {
		fmt.Fprintf(&b, "[%d %s %s-%s]", t.Token, t.Member, t.Reason, t.EndReason)
	}
	return b.String()
}

// TestHistoryTrimmed: the member whose term begins keeps the last
// HistorySize terms, in the same transaction as its own record.
func TestHistoryTrimmed(t *testing.T) {
	e := etcdtest.Start(t)
	direct := e.Client(t)
	cl := newCluster()
	a := openWith(t, etcd.Config{Endpoints: []string{e.Endpoint(0)}, Cluster: cl, ID: "a", TTL: testTTL, Logger: quietLogger(), HistorySize: 3})
	var tokens []int64
	for i := 0; i < 5; i++ {
		l := lead(t, a)
		tokens = append(tokens, l.Token())
		waitHistory(t, a, fmt.Sprintf("term %d recorded", l.Token()), func(h []coordinator.Term) bool {
			return len(h) > 0 && h[len(h)-1].Token == l.Token()
		})
		if err := l.Resign(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	h := waitHistory(t, a, "the last 3 terms, the newest resigned", func(h []coordinator.Term) bool {
		return len(h) == 3 && h[2].EndReason == coordinator.EndResigned
	})
	for i, term := range h {
		if term.Token != tokens[2+i] {
			t.Errorf("term %d: got token %d; want %d", i, term.Token, tokens[2+i])
		}
	}
	// Nothing of the trimmed terms is left in etcd: 3 beginnings, 3 ends.
	resp, err := direct.Get(context.Background(), historyPrefix(cl), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 6 {
		var keys []string
		for _, kv := range resp.Kvs {
			keys = append(keys, string(kv.Key))
		}
		t.Errorf("history keys: got %d %v; want 6", len(resp.Kvs), keys)
	}
}

// TestHistoryForgedRecordsIgnored: keys and values under history/ that do
// not validate are left out of the history and never stop a term from
// being recorded.
func TestHistoryForgedRecordsIgnored(t *testing.T) {
	e := etcdtest.Start(t)
	direct := e.Client(t)
	cl := newCluster()
	p := historyPrefix(cl)
	ctx := context.Background()
	forged := map[string]string{
		p + "zzz":                             `{"token":1}`,
		p + "1":                               `{"token":1,"member":"x","reason":"election"}`,
		p + "00000000000000000002":            `not json`,
		p + "00000000000000000003":            `{"token":3,"member":"../etc","reason":"election"}`,
		p + "00000000000000000004":            `{"token":4,"member":"x","reason":"coup"}`,
		p + "00000000000000000005":            `{"token":6,"member":"x","reason":"election"}`,
		p + "09999999999999999999":            `{"token":9999999999999999999,"member":"x","reason":"election"}`,
		p + "00000000000000000007/end":        `{"member":"x","reason":"bored"}`,
		p + "00000000000000000008/elsewhere":  `{}`,
		p + "00000000000000000009/end/nested": `{}`,
	}
	for k, v := range forged {
		if _, err := direct.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	a := open(t, cl, "a", e.Endpoint(0))
	b := open(t, cl, "b", e.Endpoint(0))
	la := lead(t, a)
	chB := campaign(t, ctx, b)
	if err := la.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	lb := waitWon(t, chB, "b", waitTimeout).l
	h := waitHistory(t, b, "a's term, then b's", func(h []coordinator.Term) bool {
		return len(h) == 2 && h[1].Token == lb.Token()
	})
	if h[0].Token != la.Token() || h[0].Reason != coordinator.BeganElection || h[0].EndReason != coordinator.EndResigned ||
		h[1].Reason != coordinator.BeganHandover {
		t.Errorf("history among forged records: got %s; want a by election, resigned; b by handover", terms(h))
	}
}

// TestHistoryFencedCutOff: a master cut off from etcd fences itself; the
// next master records its end as a lease that expired, and once the
// cut-off member reaches etcd again it records that it fenced itself.
func TestHistoryFencedCutOff(t *testing.T) {
	e := etcdtest.Start(t)
	cl := newCluster()
	pa := etcdtest.NewProxy(t, e.Endpoint(0))
	a := open(t, cl, "a", pa.Endpoint())
	b := open(t, cl, "b", e.Endpoint(0))
	la := lead(t, a)
	chB := campaign(t, context.Background(), b)
	waitHistory(t, b, "a's term", func(h []coordinator.Term) bool { return len(h) == 1 })
	pa.Cut()
	lb := waitWon(t, chB, "b", waitTimeout).l
	waitHistory(t, b, "a's lease expired, b by failover", func(h []coordinator.Term) bool {
		return len(h) == 2 && h[0].EndReason == coordinator.EndLeaseExpired && h[1].Reason == coordinator.BeganFailover
	})
	pa.Heal()
	h := waitHistory(t, b, "a fenced", func(h []coordinator.Term) bool {
		return len(h) == 2 && h[0].EndReason == coordinator.EndFenced
	})
	if h[0].Token != la.Token() || h[1].Token != lb.Token() || h[0].Ended == nil || h[0].Ended.Revision != lb.Token() {
		t.Errorf("history: got %s, a's end %+v; want a's term ended by the revision b's began", terms(h), h[0].Ended)
	}
}
