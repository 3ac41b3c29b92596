package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/etcdtest"
	"github.com/ccctl/ccctl/internal/testutil"
)

func TestEtcdServesUntilInterrupted(t *testing.T) {
	dir := t.TempDir() + "/data"
	listen := freeAddr(t)
	r := background(t, nil, "etcd", "--data-dir", dir, "--listen", listen, "--listen-peer", freeAddr(t))
	testutil.Eventually(t, 30*time.Second, "etcd ready line", func() bool { return strings.Contains(r.stderr.String(), "etcd ready") })
	cli := etcdtest.NewClient(t, "http://"+listen)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get /k: got %v, %v; want v", resp, err)
	}
	if code := r.stop(t, os.Interrupt, 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT: got %d; want 0 (stderr %q)", code, r.stderr.String())
	}
	if _, err := os.Stat(dir + "/etcd.log"); err != nil {
		t.Errorf("etcd.log in the data dir: %v", err)
	}
}

func TestEtcdBadListenIsUsageError(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "etcd", "--listen", "nowhere", "--data-dir", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, `--listen "nowhere": want host:port`) {
		t.Errorf("got %d %q; want 2 and a line naming --listen", r.code, r.stderr)
	}
}
