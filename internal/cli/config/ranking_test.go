package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/config"
)

func TestRankingDefaults(t *testing.T) {
	clearEnv(t)
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Priority != 1 || c.PositionCommand != "" || c.MaximumLag != 0 {
		t.Errorf("got priority %d, position command %q, maximum lag %d; want 1, none, 0", c.Priority, c.PositionCommand, c.MaximumLag)
	}
	if c.PositionInterval != time.Second || c.PositionTimeout != time.Second {
		t.Errorf("position interval %s, timeout %s; want 1s and 1s", c.PositionInterval, c.PositionTimeout)
	}
	if c.FailoverWait != 2500*time.Millisecond {
		t.Errorf("failover wait: got %s; want 2.5s, a quarter of the TTL", c.FailoverWait)
	}
	if got, want := c.Ranking(), (coordinator.Ranking{Priority: 1, FailoverWait: 2500 * time.Millisecond}); got != want {
		t.Errorf("Ranking: got %+v; want %+v", got, want)
	}
}

func TestRankingSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("CCCTL_TTL", "4s")
	t.Setenv("CCCTL_PRIORITY", "0")
	t.Setenv("CCCTL_POSITION_COMMAND", "cat /data/lsn")
	t.Setenv("CCCTL_POSITION_INTERVAL", "10s")
	t.Setenv("CCCTL_MAXIMUM_LAG", "1000")
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Priority != 0 || c.PositionCommand != "cat /data/lsn" || c.PositionInterval != 10*time.Second || c.MaximumLag != 1000 {
		t.Errorf("got %d %q %s %d; want 0, the command, 10s, 1000", c.Priority, c.PositionCommand, c.PositionInterval, c.MaximumLag)
	}
	if c.PositionTimeout != 4*time.Second {
		t.Errorf("position timeout: got %s; want the interval cut to the TTL, 4s", c.PositionTimeout)
	}
	if c.FailoverWait != time.Second {
		t.Errorf("failover wait: got %s; want a quarter of the TTL, 1s", c.FailoverWait)
	}
	r := c.Ranking()
	if r.Priority != coordinator.NeverLead || r.EffectivePriority() != 0 || r.MaxLag != 1000 {
		t.Errorf("Ranking: got %+v; want NeverLead, maximum lag 1000", r)
	}

	clearEnv(t)
	t.Setenv("CCCTL_CONFIG", writeFile(t, "priority: 5\nposition_command: echo 7\nposition_interval: 500ms\nposition_timeout: 2s\nmaximum_lag: 0\nfailover_wait: 9s\n"))
	t.Setenv("CCCTL_PRIORITY", "3")
	c, err = config.Load(flags(t, "--failover-wait=3s"))
	if err != nil {
		t.Fatalf("Load the file: %v", err)
	}
	if c.Priority != 3 || c.PositionCommand != "echo 7" || c.PositionInterval != 500*time.Millisecond || c.PositionTimeout != 2*time.Second || c.FailoverWait != 3*time.Second {
		t.Errorf("got priority %d, %q, interval %s, timeout %s, wait %s; want 3 (env over file), echo 7, 500ms, 2s, 3s (flag)", c.Priority, c.PositionCommand, c.PositionInterval, c.PositionTimeout, c.FailoverWait)
	}
}

func TestRankingInvalid(t *testing.T) {
	tests := []struct {
		env  map[string]string
		file string
		want string
	}{
		{map[string]string{"CCCTL_PRIORITY": "-1"}, "", `CCCTL_PRIORITY: "-1": want a whole number from 0 (never leads) to 1048576`},
		{map[string]string{"CCCTL_PRIORITY": "1048577"}, "", `CCCTL_PRIORITY: "1048577": want a whole number from 0`},
		{map[string]string{"CCCTL_PRIORITY": "high"}, "", `CCCTL_PRIORITY: "high": want a whole number`},
		{map[string]string{"CCCTL_PRIORITY": "99999999999999999999999"}, "", `CCCTL_PRIORITY: "99999999999999999999999": want a whole number`},
		{nil, "priority: 1.5\n", `ccctl.yaml: priority: "1.5": want a whole number`},
		{nil, "priority: [1]\n", `priority: want a single value`},
		{map[string]string{"CCCTL_MAXIMUM_LAG": "-5"}, "", `CCCTL_MAXIMUM_LAG: "-5": want a whole number, 0 (no limit) or more`},
		{map[string]string{"CCCTL_MAXIMUM_LAG": "1e6"}, "", `CCCTL_MAXIMUM_LAG: "1e6": want a whole number`},
		{map[string]string{"CCCTL_MAXIMUM_LAG": "9223372036854775808"}, "", `CCCTL_MAXIMUM_LAG: "9223372036854775808": want a whole number`},
		{map[string]string{"CCCTL_POSITION_INTERVAL": "10ms"}, "", `CCCTL_POSITION_INTERVAL: "10ms": want at least 100ms (and at most 1h)`},
		{map[string]string{"CCCTL_POSITION_INTERVAL": "NaN"}, "", `CCCTL_POSITION_INTERVAL: "NaN": not a number`},
		{map[string]string{"CCCTL_POSITION_INTERVAL": "2h"}, "", `CCCTL_POSITION_INTERVAL: "2h": too large`},
		{map[string]string{"CCCTL_POSITION_TIMEOUT": "11s"}, "", `CCCTL_POSITION_TIMEOUT: "11s": too large; want a duration such as 10s, 1m30s or a number of seconds, from 100ms to 10s`},
		{map[string]string{"CCCTL_POSITION_TIMEOUT": "0"}, "", `CCCTL_POSITION_TIMEOUT: "0": want at least 100ms`},
		{map[string]string{"CCCTL_FAILOVER_WAIT": "10s"}, "", `CCCTL_FAILOVER_WAIT: "10s": want more than 0 and less than ttl (10s)`},
		{map[string]string{"CCCTL_FAILOVER_WAIT": "-1s"}, "", `CCCTL_FAILOVER_WAIT: "-1s": want a duration`},
		{nil, "failover_wait: 1h\nttl: 30s\n", `ccctl.yaml: failover_wait: "1h": want more than 0 and less than ttl (30s)`},
		{nil, "position_command: \"echo \\0 1\"\n", `position_command: want a shell command without NUL bytes`},
	}
	for _, tt := range tests {
		msg := loadErr(t, tt.env, tt.file)
		if strings.Count(msg, "\n") != 0 {
			t.Errorf("%v %q: got %d lines %q; want one", tt.env, tt.file, strings.Count(msg, "\n")+1, msg)
		}
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%v %q: got %q; want it to contain %q", tt.env, tt.file, msg, tt.want)
		}
	}
}
