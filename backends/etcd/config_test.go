package etcd_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
)

func validConfig() etcd.Config {
	return etcd.Config{
		Endpoints: []string{"http://127.0.0.1:1"},
		Cluster:   coordinator.Cluster{Environment: "prod", Service: "db"},
		ID:        "db-1",
		TTL:       2 * time.Second,
		Logger:    quietLogger(),
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*etcd.Config)
		want   string
	}{
		{"no endpoints", func(c *etcd.Config) { c.Endpoints = nil }, "no endpoints"},
		{"endpoint without port", func(c *etcd.Config) { c.Endpoints = []string{"http://etcd"} }, "want a port"},
		{"endpoint with bad scheme", func(c *etcd.Config) { c.Endpoints = []string{"ftp://etcd:2379"} }, "endpoint"},
		{"empty id", func(c *etcd.Config) { c.ID = "" }, "member id"},
		{"id with a slash", func(c *etcd.Config) { c.ID = "a/b" }, "member id"},
		{"empty service", func(c *etcd.Config) { c.Cluster.Service = "" }, "service"},
		{"prefix without slash", func(c *etcd.Config) { c.Prefix = "ccctl" }, "prefix"},
		{"ttl below minimum", func(c *etcd.Config) { c.TTL = time.Second }, "at least 2s"},
		{"ttl not whole seconds", func(c *etcd.Config) { c.TTL = 2500 * time.Millisecond }, "whole seconds"},
		{"negative margin", func(c *etcd.Config) { c.Margin = -time.Second }, "margin"},
		{"negative renew interval", func(c *etcd.Config) { c.RenewInterval = -time.Second }, "renew interval"},
		{"renewals too rare for the ttl", func(c *etcd.Config) { c.RenewInterval = time.Second }, "ttl > 2 * renew interval + margin"},
		{"margin too large for the ttl", func(c *etcd.Config) { c.Margin = 1500 * time.Millisecond }, "ttl > 2 * renew interval + margin"},
		{"negative dial timeout", func(c *etcd.Config) { c.DialTimeout = -time.Second }, "dial timeout"},
		{"cert without key", func(c *etcd.Config) { c.Cert = "client.pem" }, "cert and key"},
		{"password without username", func(c *etcd.Config) { c.Password = "secret" }, "password without username"},
		{"priority above the maximum", func(c *etcd.Config) { c.Ranking.Priority = coordinator.MaxPriority + 1 }, "priority"},
		{"priority below NeverLead", func(c *etcd.Config) { c.Ranking.Priority = -2 }, "priority"},
		{"negative maximum lag", func(c *etcd.Config) { c.Ranking.MaxLag = -1 }, "maximum lag"},
		{"negative failover wait", func(c *etcd.Config) { c.Ranking.FailoverWait = -time.Second }, "failover wait"},
		{"missing ca file", func(c *etcd.Config) { c.CACert = "does-not-exist.pem" }, "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := etcd.New(ctx, cfg)
			if err == nil {
				c.Close()
				t.Fatalf("New: got nil error; want one wrapping ErrInvalidConfig")
			}
			if !errors.Is(err, coordinator.ErrInvalidConfig) {
				t.Fatalf("New: got %v; want an error wrapping ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: got %q; want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewUnreachableIsErrUnavailable(t *testing.T) {
	// A port that was free a moment ago: nothing answers there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := validConfig()
	cfg.Endpoints = []string{"http://" + addr}
	cfg.DialTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := time.Now()
	c, err := etcd.New(ctx, cfg)
	if err == nil {
		c.Close()
		t.Fatal("New with an unreachable endpoint: got nil error; want ErrUnavailable")
	}
	if !errors.Is(err, coordinator.ErrUnavailable) {
		t.Fatalf("New: got %v; want an error wrapping ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("New: got %q; want it to name the endpoint %s", err, addr)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("New took %v with a dial timeout of 300ms; want it bounded by the timeout", took)
	}
}
