package main

import (
	"strings"
	"testing"
	"time"
)

func TestHealthWithoutAddressIsUsageError(t *testing.T) {
	r := ccctl(t, 20*time.Second, nil, "health")
	if r.code != 2 || !strings.Contains(r.stderr, "CCCTL_HTTP_ADDR is not set") {
		t.Errorf("got %d %q; want 2 and a line naming CCCTL_HTTP_ADDR", r.code, r.stderr)
	}
}

func TestHealthUnreachableIsUnhealthy(t *testing.T) {
	r := ccctl(t, 20*time.Second, []string{"CCCTL_HTTP_ADDR=" + freeAddr(t)}, "health")
	if r.code != 1 {
		t.Errorf("exit code: got %d; want 1 (stderr %q)", r.code, r.stderr)
	}
}

func TestHealthBadRole(t *testing.T) {
	r := ccctl(t, 20*time.Second, []string{"CCCTL_HTTP_ADDR=" + freeAddr(t)}, "health", "--role", "boss")
	if r.code != 2 {
		t.Errorf("exit code: got %d; want 2 (stderr %q)", r.code, r.stderr)
	}
}
