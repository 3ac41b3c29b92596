package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/httpapi"
)

// member is a status that the test changes while the server runs.
type member struct {
	mu sync.Mutex
	st httpapi.Status
}

func (m *member) set(role coordinator.Role, state coordinator.State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st = httpapi.Status{Role: role, State: state, Body: map[string]any{"id": "m1", "role": role, "state": state}}
}

func (m *member) get() httpapi.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// start runs a server on a free port and stops it at the end of the test.
func start(t *testing.T, m *member) string {
	t.Helper()
	return startConfig(t, httpapi.Config{Status: m.get})
}

// startConfig is start with cfg's bounds and timeouts.
func startConfig(t *testing.T, cfg httpapi.Config) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ccctl_is_master", Help: "test"})
	g.Set(1)
	reg.MustRegister(g)
	cfg.Address, cfg.Gatherer = "127.0.0.1:0", reg
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Execute() }()
	t.Cleanup(func() {
		s.Interrupt(nil)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Execute: got %v; want nil after Interrupt", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Execute: no return within 5s of Interrupt")
		}
		s.Interrupt(nil) // safe after return
	})
	return "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestHealthMasterSlave(t *testing.T) {
	m := &member{}
	base := start(t, m)
	tests := []struct {
		role                  coordinator.Role
		state                 coordinator.State
		health, master, slave int
	}{
		{coordinator.RoleMaster, coordinator.StateActive, 200, 200, 503},
		{coordinator.RoleMaster, coordinator.StateRunning, 200, 200, 503},
		{coordinator.RoleSlave, coordinator.StateRunning, 200, 503, 200},
		{coordinator.RoleSlave, coordinator.StateInitializing, 503, 503, 503},
		{coordinator.RoleMaster, coordinator.StateStopping, 503, 503, 503},
		{coordinator.RoleNone, coordinator.StateFailed, 503, 503, 503},
	}
	for _, tt := range tests {
		m.set(tt.role, tt.state)
		for path, want := range map[string]int{"/health": tt.health, "/master": tt.master, "/slave": tt.slave} {
			if got, body := get(t, base+path); got != want {
				t.Errorf("%s/%s: GET %s: got %d (%s); want %d", tt.role, tt.state, path, got, body, want)
			}
		}
	}
}

func TestStatusJSON(t *testing.T) {
	m := &member{}
	m.set(coordinator.RoleMaster, coordinator.StateActive)
	base := start(t, m)
	code, body := get(t, base+"/status")
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET /status: %v in %q", err, body)
	}
	if code != 200 || got["id"] != "m1" || got["role"] != "master" {
		t.Errorf("GET /status: got %d %v; want 200 with id m1, role master", code, got)
	}
}

func TestMetrics(t *testing.T) {
	m := &member{}
	base := start(t, m)
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "ccctl_is_master 1") {
		t.Errorf("GET /metrics: got %d %q; want 200 with ccctl_is_master 1", code, body)
	}
}

func TestNewAddressInUse(t *testing.T) {
	m := &member{}
	base := start(t, m)
	_, err := httpapi.New(httpapi.Config{Address: strings.TrimPrefix(base, "http://"), Status: m.get})
	if err == nil || !strings.Contains(err.Error(), "new http server") {
		t.Errorf("New on a used address: got %v; want an error naming the operation", err)
	}
}
