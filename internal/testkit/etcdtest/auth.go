package etcdtest

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// PrefixUser is a user for EnableAuth whose one role may read and write
// the keys under Prefix and nothing else (etcdctl role grant-permission
// --prefix ROLE readwrite PREFIX).
type PrefixUser struct {
	Name, Password, Prefix string
}

// EnableAuth adds the user root (password "root") with the root role, each
// of users with a role of its own, and turns authentication on. It speaks
// plain http: use it on a cluster of Start, StartCluster or StartBinary.
func (c *Cluster) EnableAuth(tb testing.TB, users ...PrefixUser) {
	tb.Helper()
	cli := c.Client(tb)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	must := func(_ any, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("etcdtest: enable auth: %v", err)
		}
	}
	must(cli.UserAdd(ctx, "root", "root"))
	must(cli.UserGrantRole(ctx, "root", "root"))
	for _, u := range users {
		role := "role-" + u.Name
		must(cli.RoleAdd(ctx, role))
		must(cli.RoleGrantPermission(ctx, role, u.Prefix, clientv3.GetPrefixRangeEnd(u.Prefix), clientv3.PermissionType(clientv3.PermReadWrite)))
		must(cli.UserAdd(ctx, u.Name, u.Password))
		must(cli.UserGrantRole(ctx, u.Name, role))
	}
	must(cli.AuthEnable(ctx))
}
