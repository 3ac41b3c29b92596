package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
)

// TestTLS runs a session over TLS with a client certificate (etcdctl's
// --cacert, --cert, --key); without the client certificate etcd refuses
// the connection and New reports ErrInvalidConfig (the user must fix it).
func TestTLS(t *testing.T) {
	e, files := etcdtest.StartTLS(t)
	cfg := etcd.Config{Endpoints: e.Endpoints(), Cluster: newCluster(), ID: "a", TTL: testTTL,
		CACert: files.CACert, Cert: files.Cert, Key: files.Key, Logger: quietLogger()}
	a := openWith(t, cfg)
	l := lead(t, a)
	quiet := time.NewTimer(2 * testTTL)
	defer quiet.Stop()
	select {
	case <-l.Done():
		t.Fatalf("leadership ended over TLS: %v", l.Err())
	case <-quiet.C:
	}

	noCert := cfg
	noCert.ID, noCert.Cert, noCert.Key = "b", "", ""
	noCert.DialTimeout = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := etcd.New(ctx, noCert)
	if err == nil {
		c.Close()
		t.Fatal("New without a client certificate: got nil error; want one")
	}
	if !errors.Is(err, coordinator.ErrInvalidConfig) {
		t.Errorf("New without a client certificate: got %v; want an error wrapping ErrInvalidConfig", err)
	}
}
