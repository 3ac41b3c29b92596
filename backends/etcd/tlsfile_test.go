package etcd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/sys/smallfile"
)

// TestTLSFilesReadWithALimit names endless, blocking and oversized files as
// the TLS files: New answers at once with one line wrapping
// ErrInvalidConfig, without reading them whole or hanging on them.
func TestTLSFilesReadWithALimit(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 4*smallfile.DefaultLimit); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*etcd.Config)
		want   string
	}{
		{"ca is /dev/zero", func(c *etcd.Config) { c.CACert = "/dev/zero" }, "not a regular file"},
		{"ca is a fifo", func(c *etcd.Config) { c.CACert = fifo }, "not a regular file (a FIFO)"},
		{"ca is a directory", func(c *etcd.Config) { c.CACert = dir }, "not a regular file (a directory)"},
		{"ca too large", func(c *etcd.Config) { c.CACert = big }, "larger than the limit"},
		{"ca without a certificate", func(c *etcd.Config) { c.CACert = notPEM }, "no PEM certificate"},
		{"cert is /dev/zero", func(c *etcd.Config) { c.Cert, c.Key = "/dev/zero", notPEM }, "cert: "},
		{"key is a fifo", func(c *etcd.Config) { c.Cert, c.Key = notPEM, fifo }, "key: "},
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
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("New: got %q; want one line mentioning %q", msg, tt.want)
			}
		})
	}
}
