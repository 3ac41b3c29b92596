package lifecycle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/lifecycle"
)

func TestNewValidates(t *testing.T) {
	store := memory.NewStore()
	co, err := memory.New(store, memory.Config{Cluster: testCluster, ID: "a", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { co.Close() })
	ok := func(edit func(*lifecycle.Config)) lifecycle.Config {
		cfg := lifecycle.Config{Coordinator: co, Service: lifecycle.Service{Argv: []string{"true"}}}
		edit(&cfg)
		return cfg
	}
	hook := lifecycle.Shell("true")
	for _, tc := range []struct {
		name string
		cfg  lifecycle.Config
		ok   bool
	}{
		{"minimal", ok(func(*lifecycle.Config) {}), true},
		{"no service", ok(func(c *lifecycle.Config) { c.Service.Argv = nil }), true},
		{"everything", ok(func(c *lifecycle.Config) {
			c.Member = coordinator.Member{ID: "a", Host: "h", Address: "10.0.0.1", Ports: []int{5432}, Version: "1"}
			c.Hooks = map[lifecycle.HookName][]lifecycle.Hook{lifecycle.HookStart: {hook, lifecycle.WithTimeout(hook, time.Second)}}
			c.HookTimeout, c.GracePeriod = time.Minute, time.Second
			c.PortsWhenActive, c.TerminateWhenNoLongerActive = []int{80, 443}, true
			c.OnLeadershipLost = lifecycle.LeadershipLostRestart
		}), true},
		{"no coordinator", ok(func(c *lifecycle.Config) { c.Coordinator = nil }), false},
		{"member id differs", ok(func(c *lifecycle.Config) { c.Member.ID = "b" }), false},
		{"unknown hook", ok(func(c *lifecycle.Config) {
			c.Hooks = map[lifecycle.HookName][]lifecycle.Hook{"started": {hook}}
		}), false},
		{"nil hook", ok(func(c *lifecycle.Config) {
			c.Hooks = map[lifecycle.HookName][]lifecycle.Hook{lifecycle.HookStart: {nil}}
		}), false},
		{"empty command hook", ok(func(c *lifecycle.Config) {
			c.Hooks = map[lifecycle.HookName][]lifecycle.Hook{lifecycle.HookStart: {lifecycle.Command(nil)}}
		}), false},
		{"zero per-hook timeout", ok(func(c *lifecycle.Config) {
			c.Hooks = map[lifecycle.HookName][]lifecycle.Hook{lifecycle.HookStart: {lifecycle.WithTimeout(hook, 0)}}
		}), false},
		{"negative hook timeout", ok(func(c *lifecycle.Config) { c.HookTimeout = -time.Second }), false},
		{"negative grace period", ok(func(c *lifecycle.Config) { c.GracePeriod = -time.Second }), false},
		{"negative check interval", ok(func(c *lifecycle.Config) { c.ActiveCheckInterval = -time.Second }), false},
		{"empty service name", ok(func(c *lifecycle.Config) { c.Service.Argv = []string{""} }), false},
		{"port 0", ok(func(c *lifecycle.Config) { c.PortsWhenActive = []int{0} }), false},
		{"port 65536", ok(func(c *lifecycle.Config) { c.PortsWhenActive = []int{65536} }), false},
		{"port twice", ok(func(c *lifecycle.Config) { c.PortsWhenActive = []int{80, 80} }), false},
		{"ports without service", ok(func(c *lifecycle.Config) {
			c.Service.Argv, c.PortsWhenActive = nil, []int{80}
		}), false},
		{"terminate without ports", ok(func(c *lifecycle.Config) { c.TerminateWhenNoLongerActive = true }), false},
		{"unknown action", ok(func(c *lifecycle.Config) { c.OnLeadershipLost = "panic" }), false},
		{"nil extension", ok(func(c *lifecycle.Config) { c.Extensions = []lifecycle.Extension{nil} }), false},
		{"actor without interrupt", ok(func(c *lifecycle.Config) {
			c.Actors = []lifecycle.Actor{{Execute: func() error { return nil }}}
		}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lifecycle.New(tc.cfg)
			if tc.ok && err != nil {
				t.Errorf("New: got %v; want nil", err)
			}
			if !tc.ok && !errors.Is(err, lifecycle.ErrInvalidConfig) {
				t.Errorf("New: got %v; want an error wrapping ErrInvalidConfig", err)
			}
		})
	}
}

func TestParseHookName(t *testing.T) {
	for _, n := range []string{"start", "started_as_master", "started_as_slave", "transition_slave_to_master",
		"transition_master_to_slave", "master_changed", "members_added", "members_removed", "became_active", "stopping"} {
		got, err := lifecycle.ParseHookName(n)
		if err != nil || string(got) != n {
			t.Errorf("ParseHookName(%q): got %q, %v; want %q, nil", n, got, err, n)
		}
	}
	if _, err := lifecycle.ParseHookName("Start"); err == nil {
		t.Errorf("ParseHookName(%q): got nil error; want an error", "Start")
	}
	if n := len(lifecycle.HookNames); n != 10 {
		t.Errorf("len(HookNames): got %d; want 10", n)
	}
}

func TestParseLeadershipLostAction(t *testing.T) {
	for in, want := range map[string]lifecycle.LeadershipLostAction{
		"": lifecycle.LeadershipLostDemote, "demote": lifecycle.LeadershipLostDemote,
		"restart": lifecycle.LeadershipLostRestart, "exit": lifecycle.LeadershipLostExit,
	} {
		got, err := lifecycle.ParseLeadershipLostAction(in)
		if err != nil || got != want {
			t.Errorf("ParseLeadershipLostAction(%q): got %q, %v; want %q, nil", in, got, err, want)
		}
	}
	if _, err := lifecycle.ParseLeadershipLostAction("resign"); err == nil {
		t.Errorf("ParseLeadershipLostAction(%q): got nil error; want an error", "resign")
	}
}

func TestRunTwice(t *testing.T) {
	h := newHarness(t)
	m := h.newMember("a", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code, err := m.ctl.Run(ctx); code != 0 || err != nil {
		t.Fatalf("Run with a done context: got %d, %v; want 0, nil", code, err)
	}
	if code, err := m.ctl.Run(ctx); code != lifecycle.ExitFailure || err == nil {
		t.Errorf("second Run: got %d, %v; want %d and an error", code, err, lifecycle.ExitFailure)
	}
}
