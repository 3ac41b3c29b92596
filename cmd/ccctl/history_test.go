package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

func TestHistoryCommand(t *testing.T) {
	tc := newTestCluster(t)
	m1 := tc.add(t, "m1", coordinator.RoleMaster, coordinator.StateActive)
	m2 := tc.add(t, "m2", coordinator.RoleSlave, coordinator.StateRunning)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l1, err := m1.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan error, 1)
	go func() {
		_, err := m2.Campaign(ctx)
		won <- err
	}()
	if err := l1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-won; err != nil {
		t.Fatal(err)
	}

	var terms []map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := ccctl(t, 30*time.Second, tc.env, "history", "-o", "json")
		if r.code != 0 {
			t.Fatalf("history -o json: exit %d, stderr %q", r.code, r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), &terms); err != nil {
			t.Fatalf("history -o json: %v in %q", err, r.stdout)
		}
		if len(terms) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a bounded poll
	}
	if len(terms) != 2 {
		t.Fatalf("history -o json: got %d terms %v; want 2", len(terms), terms)
	}
	for _, k := range []string{"token", "member", "began", "ended", "reason", "end_reason"} {
		if _, ok := terms[0][k]; !ok {
			t.Errorf("history -o json: term without %q: %v", k, terms[0])
		}
	}
	if terms[0]["member"] != "m1" || terms[0]["reason"] != "election" || terms[0]["end_reason"] != "resigned" ||
		terms[1]["member"] != "m2" || terms[1]["reason"] != "handover" || terms[1]["end_reason"] != "" || terms[1]["ended"] != nil {
		t.Errorf("history -o json: got %v; want m1 (election, resigned) then m2 (handover, leading)", terms)
	}

	r := ccctl(t, 30*time.Second, tc.env, "history", "--limit", "1")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "TOKEN") || !strings.Contains(lines[1], "m2") || !strings.Contains(lines[1], "handover") {
		t.Errorf("history --limit 1: got %d %q; want the header and m2's term", r.code, r.stdout)
	}
	for _, args := range [][]string{{"history", "-o", "yaml"}, {"history", "--limit", "-1"}} {
		if r := ccctl(t, 30*time.Second, tc.env, args...); r.code != exitUsage || !strings.Contains(r.stderr, "history: ") {
			t.Errorf("%v: got %d %q; want exit 2 and a one-line error", args, r.code, r.stderr)
		}
	}
}

// seedHistory writes n terms into the history of test/db as the backend
// records them: a beginning and an end each.
func seedHistory(tb testing.TB, cli *clientv3.Client, n int) {
	tb.Helper()
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := "/ccctl/test/db/history/"
	// A term's token is the revision at which it began, and its records
	// are written after: move etcd's revision past n first, with puts in
	// parallel (etcd commits them in batches).
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				if _, err := cli.Put(ctx, "/ccctl/test/db/filler", "x"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	var ops []clientv3.Op
	flush := func() {
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			tb.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := 1; i <= n; i++ {
		token := int64(i)
		key := fmt.Sprintf("%s%020d", p, token)
		member := fmt.Sprintf("m%d", i%3)
		at := base.Add(time.Duration(i) * time.Minute)
		ops = append(ops,
			clientv3.OpPut(key, fmt.Sprintf(`{"token":%d,"member":%q,"time":%q,"reason":"handover"}`, token, member, at.Format(time.RFC3339Nano))),
			clientv3.OpPut(key+"/end", fmt.Sprintf(`{"member":%q,"revision":%d,"time":%q,"reason":"resigned"}`, member, token, at.Add(time.Minute).Format(time.RFC3339Nano))))
		if len(ops) >= 100 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

// TestHistoryManyTerms: ccctl history lists 10 000 recorded terms in
// under a second (the race detector's binary gets four times as long).
// The test's own run seeds 2 000 terms (seeding 10 000 takes etcd 10 000
// revisions); CCCTL_HISTORY_TERMS=10000 runs the full count.
func TestHistoryManyTerms(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of terms: not in -short")
	}
	n := 2000
	if v := os.Getenv("CCCTL_HISTORY_TERMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("CCCTL_HISTORY_TERMS=%q: want a positive count", v)
		}
	}
	e := etcdtest.Start(t)
	seedHistory(t, e.Client(t), n)
	env := []string{"ETCD_ENDPOINTS=" + e.Endpoint(0), "ENVIRONMENT=test", "SERVICE=db"}
	for _, output := range []string{"json", "table"} {
		begin := time.Now()
		r := ccctl(t, time.Minute, env, "history", "-o", output)
		took := time.Since(begin)
		if r.code != 0 {
			t.Fatalf("history: exit %d, stderr %q", r.code, r.stderr)
		}
		if output == "json" {
			var terms []coordinator.Term
			if err := json.Unmarshal([]byte(r.stdout), &terms); err != nil || len(terms) != n {
				t.Fatalf("history -o json: %d terms, %v; want %d", len(terms), err, n)
			}
		}
		t.Logf("ccctl history -o %s of %d terms: %v (a race-detector binary)", output, n, took)
		if limit := 4 * time.Second; took > limit {
			t.Errorf("ccctl history -o %s of %d terms took %v; want under %v with the race detector (1s without)", output, n, took, limit)
		}
	}
}

// BenchmarkHistoryTenThousandTerms times one `ccctl history -o json` of
// 10 000 recorded terms, in process: connect, read, print.
func BenchmarkHistoryTenThousandTerms(b *testing.B) {
	e := etcdtest.Start(b)
	seedHistory(b, e.Client(b), 10000)
	b.Setenv("ETCD_ENDPOINTS", e.Endpoint(0))
	b.Setenv("ENVIRONMENT", "test")
	b.Setenv("SERVICE", "db")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code := Execute([]string{"history", "-o", "json"}, strings.NewReader(""), io.Discard, os.Stderr); code != 0 {
			b.Fatalf("history: exit %d", code)
		}
	}
}
