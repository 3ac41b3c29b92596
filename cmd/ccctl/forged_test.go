package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestStatusIgnoresForgedKeys: under CCCTL_PREFIX=/ (keys at /<env>/<svc>/,
// as the backend writes them), status shows the real member with its
// lease; a record put by hand with id ../../x and role master, and a
// leader key and heir put by hand, are not shown, and leader prints the
// real master.
func TestStatusIgnoresForgedKeys(t *testing.T) {
	e := etcdtest.Start(t)
	ep := e.Endpoint(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m1, err := etcd.New(ctx, etcd.Config{Endpoints: []string{ep}, Prefix: "/", Cluster: coordinator.Cluster{Environment: "test", Service: "db"},
		ID: "m1", TTL: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m1.Close() })
	l, err := m1.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Register(ctx, coordinator.Member{ID: "m1", Role: coordinator.RoleMaster, State: coordinator.StateActive, Token: l.Token()}); err != nil {
		t.Fatal(err)
	}
	cli := etcdtest.NewClient(t, ep)
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{
		"/test/db/members/../../x": `{"id":"../../x","role":"master","state":"active"}`,
		"/test/db/members/y":       `{"id":"../../x","role":"master","state":"active"}`,
		"/test/db/election/ghost":  "ghost",
		"/test/db/election-heir":   "ghost",
	} {
		if _, err := cli.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "/test/db/members/z", `{"id":"z","role":"master"}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	env := []string{"ETCD_ENDPOINTS=" + ep, "ENVIRONMENT=test", "SERVICE=db", "CCCTL_PREFIX=/", "CCCTL_TTL=5"}
	r := ccctl(t, 30*time.Second, env, "status", "-o", "json")
	var v clusterView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("status -o json: %v in %q (stderr %q)", err, r.stdout, r.stderr)
	}
	if v.Master != "m1" || len(v.Members) != 2 {
		t.Fatalf("status: got %+v; want master m1 and members m1, z", v)
	}
	if m := v.Members[0]; m.ID != "m1" || !m.Master || m.LeaseLeftSc <= 0 {
		t.Errorf("members[0] = %+v; want m1, master, with its lease left", m)
	}
	if m := v.Members[1]; m.ID != "z" || m.Master || m.LeaseLeftSc <= 0 {
		t.Errorf("members[1] = %+v; want z, not master, with its lease left", m)
	}
	if strings.Contains(r.stdout, "../../x") || strings.Contains(r.stdout, "ghost") {
		t.Errorf("status shows a forged key: %s", r.stdout)
	}
	if r := ccctl(t, 30*time.Second, env, "leader"); r.code != 0 || r.stdout != "m1\n" {
		t.Errorf("leader: got %d %q (stderr %q); want 0 and m1", r.code, r.stdout, r.stderr)
	}
}
