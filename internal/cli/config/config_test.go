package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ccctl/ccctl/internal/cli/config"
)

// clearEnv unsets every variable a setting reads, for the test's duration.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, s := range config.Settings() {
		for _, e := range s.Env {
			t.Setenv(e, "")
			t.Setenv(e+"_FILE", "")
		}
	}
	t.Setenv("CCCTL_INSTANCE_ID", "m1")
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ccctl.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.UsesEtcd() {
		t.Errorf("UsesEtcd: got true; want false with nothing configured")
	}
	if c.TTL != 10*time.Second || c.GracePeriod != 8*time.Second || c.HookTimeout != 60*time.Second {
		t.Errorf("durations: got ttl %s grace %s hook %s; want 10s 8s 1m0s", c.TTL, c.GracePeriod, c.HookTimeout)
	}
	if c.Etcd.Prefix != "/ccctl" {
		t.Errorf("prefix: got %q; want /ccctl", c.Etcd.Prefix)
	}
	b := c.Backups
	if b.Hours != 24 || b.Days != 14 || b.Weeks != 4 || b.Months != 3 || b.Destination != "backup" || b.Location.String() != "UTC" {
		t.Errorf("backups: got %+v; want 24, 14, 4, 3 in backup, UTC", b)
	}
	if c.HTTPAddress != "" || c.LogFormat != "text" || c.LeadershipLostAction != "demote" {
		t.Errorf("got http %q log %q action %q; want off, text, demote", c.HTTPAddress, c.LogFormat, c.LeadershipLostAction)
	}
	if c.HTTPMaxConnections != 512 {
		t.Errorf("http max connections: got %d; want 512", c.HTTPMaxConnections)
	}
}

func TestInstanceIDDefaultsToHostname(t *testing.T) {
	clearEnv(t)
	t.Setenv("CCCTL_INSTANCE_ID", "")
	h, err := os.Hostname()
	if err != nil {
		t.Skip("no host name")
	}
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.InstanceID != h {
		t.Errorf("instance id: got %q; want the host name %q", c.InstanceID, h)
	}
}

func TestPrecedenceFlagsEnvFileDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("CCCTL_CONFIG", writeFile(t, "ttl: 20s\ngrace_period: 3s\nservice: fromfile\nenvironment: fromfile\n"))
	t.Setenv("CCCTL_TTL", "30s")
	t.Setenv("SERVICE", "fromenv")
	c, err := config.Load(flags(t, "--ttl", "40s"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.TTL != 40*time.Second {
		t.Errorf("ttl: got %s; want 40s (flag over env and file)", c.TTL)
	}
	if c.Cluster.Service != "fromenv" {
		t.Errorf("service: got %q; want fromenv (env over file)", c.Cluster.Service)
	}
	if c.Cluster.Environment != "fromfile" || c.GracePeriod != 3*time.Second {
		t.Errorf("got environment %q grace %s; want fromfile and 3s (file over defaults)", c.Cluster.Environment, c.GracePeriod)
	}
	if c.Etcd.Prefix != "/ccctl" {
		t.Errorf("prefix: got %q; want the default /ccctl", c.Etcd.Prefix)
	}
}

func TestEtcdEndpoints(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"ETCD_HOST", map[string]string{"ETCD_HOST": "etcd1"}, "http://etcd1:2379"},
		{"ETCD_HOSTS and port", map[string]string{"ETCD_HOSTS": "a, b", "ETCD_PORT": "4001"}, "http://a:4001,http://b:4001"},
		{"endpoints win", map[string]string{"ETCD_HOSTS": "a", "ETCD_ENDPOINTS": "https://x:1,https://y:2"}, "https://x:1,https://y:2"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := config.Load(nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := strings.Join(c.Etcd.Endpoints, ","); got != tt.want {
				t.Errorf("endpoints: got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestBooleanAndLists(t *testing.T) {
	clearEnv(t)
	t.Setenv("TERMINATE_WHEN_NO_LONGER_ACTIVE", "False")
	t.Setenv("PORTS_WHEN_ACTIVE", "80,443, 8443")
	t.Setenv("WAIT_FOR_SERVICES", "db,cache")
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.TerminateWhenNoLongerActive {
		t.Errorf("TERMINATE_WHEN_NO_LONGER_ACTIVE=False: got true; want false (a real boolean, not a non-empty string)")
	}
	if got := len(c.PortsWhenActive); got != 3 || c.PortsWhenActive[2] != 8443 {
		t.Errorf("ports: got %v; want [80 443 8443]", c.PortsWhenActive)
	}
	if strings.Join(c.WaitFor, ",") != "db,cache" {
		t.Errorf("wait_for: got %v; want [db cache]", c.WaitFor)
	}
}

func TestSecretFile(t *testing.T) {
	clearEnv(t)
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ETCD_USERNAME", "root")
	t.Setenv("ETCD_PASSWORD_FILE", p)
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Etcd.Password != "s3cret" {
		t.Errorf("password: got %q; want the file's content without the newline", c.Etcd.Password)
	}
	t.Setenv("ETCD_PASSWORD", "other")
	_, err = config.Load(nil)
	if err == nil || !strings.Contains(err.Error(), "ETCD_PASSWORD and ETCD_PASSWORD_FILE: both set") {
		t.Errorf("both set: got %v; want an error naming both", err)
	}
	if err != nil && strings.Contains(err.Error(), "other") {
		t.Errorf("error %q shows the secret", err)
	}
}

func TestYAMLFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("CCCTL_CONFIG", writeFile(t, `
environment: prod
service: db
etcd:
  endpoints: [http://e1:2379]
hooks:
  timeout: 30s
  started_as_master: echo master
  started_as_slave: [/bin/echo, slave]
  stopping:
    command: echo bye
    timeout: 5s
jobs:
  - name: backup
    schedule: "@every 1h"
    command: ccctl backup run db -- pg_dump
  - name: vacuum
    schedule: "0 3 * * *"
    role: any
    command: [vacuumdb]
    timeout: 10m
    overlap: queue
    jitter: 30s
jobs_timezone: Europe/Berlin
filesystem_locks: [/data]
filesystem_locks_required: true
templates:
  - source: a.tmpl
    destination: a.conf
    reload: kill -HUP 1
wait_for: [cache]
backups:
  days_to_keep: 7
`))
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Hooks["started_as_master"]; strings.Join(got.Command, " ") != "/bin/sh -c echo master" || got.Timeout != 30*time.Second {
		t.Errorf("started_as_master: got %+v; want sh -c with the 30s hooks.timeout", got)
	}
	if got := c.Hooks["started_as_slave"]; strings.Join(got.Command, " ") != "/bin/echo slave" {
		t.Errorf("started_as_slave: got %+v; want argv [/bin/echo slave]", got)
	}
	if got := c.Hooks["stopping"]; got.Timeout != 5*time.Second {
		t.Errorf("stopping: got %+v; want its own 5s timeout", got)
	}
	if len(c.Jobs) != 2 || c.Jobs[0].Role != "master" || c.Jobs[0].Overlap != "skip" || c.Jobs[0].Timeout != 30*time.Second {
		t.Errorf("jobs: got %+v; want the first with defaults master, skip, 30s", c.Jobs)
	}
	if len(c.Jobs) == 2 && (c.Jobs[1].Timeout != 10*time.Minute || c.Jobs[1].Overlap != "queue" || c.Jobs[1].Jitter != 30*time.Second) {
		t.Errorf("jobs[1]: got %+v; want 10m, queue and 30s jitter", c.Jobs[1])
	}
	if got := c.JobsLocation.String(); got != "Europe/Berlin" {
		t.Errorf("jobs_timezone: got %s; want Europe/Berlin", got)
	}
	if len(c.Templates) != 1 || c.Templates[0].Reload != "kill -HUP 1" {
		t.Errorf("templates: got %+v; want one with a shell reload", c.Templates)
	}
	if len(c.FilesystemLocks) != 1 || !c.FilesystemLocksRequired {
		t.Errorf("filesystem locks: got %v required %v; want [/data] required", c.FilesystemLocks, c.FilesystemLocksRequired)
	}
	if c.Backups.Days != 7 || c.Backups.Hours != 24 {
		t.Errorf("backups: got %+v; want days 7 from the file, hours 24 by default", c.Backups)
	}
	if strings.Join(c.Etcd.Endpoints, ",") != "http://e1:2379" || c.Cluster.String() != "prod/db" {
		t.Errorf("got endpoints %v cluster %s; want http://e1:2379 prod/db", c.Etcd.Endpoints, c.Cluster)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		file string
		want string
	}{
		{"port", map[string]string{"ETCD_PORT": "abc"}, "", `ETCD_PORT: "abc": want a TCP port number from 1 to 65535`},
		{"ttl", map[string]string{"CCCTL_TTL": "1500ms"}, "", `CCCTL_TTL: "1500ms": want at least 2s`},
		{"ttl fraction", map[string]string{"CCCTL_TTL": "2.5s"}, "", `CCCTL_TTL: "2.5s": want whole seconds`},
		{"ttl in file", nil, "ttl: 1s\n", `ccctl.yaml: ttl: "1s": want at least 2s`},
		{"duration", map[string]string{"CCCTL_GRACE_PERIOD": "soon"}, "", `CCCTL_GRACE_PERIOD: "soon": want a duration`},
		{"boolean", map[string]string{"TERMINATE_WHEN_NO_LONGER_ACTIVE": "maybe"}, "", `TERMINATE_WHEN_NO_LONGER_ACTIVE: "maybe": want true or false`},
		{"ports", map[string]string{"PORTS_WHEN_ACTIVE": "80,http"}, "", `PORTS_WHEN_ACTIVE: "http": want TCP port numbers`},
		{"log format", map[string]string{"CCCTL_LOG_FORMAT": "xml"}, "", `CCCTL_LOG_FORMAT: "xml": want one of text, json`},
		{"action", map[string]string{"CCCTL_LEADERSHIP_LOST_ACTION": "panic"}, "", `CCCTL_LEADERSHIP_LOST_ACTION: "panic": want one of demote, restart, exit`},
		{"service name", map[string]string{"SERVICE": "a/b"}, "", `SERVICE: service "a/b": want 1 to 128 letters`},
		{"regexp", map[string]string{"SUPPRESS_LOG_REGEXP": "("}, "", `SUPPRESS_LOG_REGEXP: want a regular expression`},
		{"count", map[string]string{"BACKUP_DAYS_TO_KEEP": "-2"}, "", `BACKUP_DAYS_TO_KEEP: "-2": want a whole number, 0 or more, or unlimited`},
		{"timezone", map[string]string{"CCCTL_BACKUP_TIMEZONE": "Mars/Olympus"}, "", `CCCTL_BACKUP_TIMEZONE: "Mars/Olympus": want an IANA time zone`},
		{"http", map[string]string{"CCCTL_HTTP_ADDR": "8008"}, "", `CCCTL_HTTP_ADDR: "8008": want host:port or :port`},
		{"http max connections", map[string]string{"CCCTL_HTTP_MAX_CONNECTIONS": "0"}, "", `CCCTL_HTTP_MAX_CONNECTIONS: "0": want a whole number from 1 to 1000000`},
		{"cert without key", map[string]string{"ETCD_CERT": "/dev/null"}, "", `ETCD_CERT and ETCD_KEY: only one is set`},
		{"unreadable secret", map[string]string{"ETCD_PASSWORD_FILE": "/nonexistent/pw"}, "", `ETCD_PASSWORD_FILE: want a readable file`},
		{"unknown key", nil, "ttl: 5s\nbogus: 1\n", `ccctl.yaml: line 2: unknown key "bogus"`},
		{"unknown nested key", nil, "etcd:\n  prefx: /x\n", `ccctl.yaml: line 2: unknown key "prefx"`},
		{"unknown hook", nil, "hooks:\n  on_master: echo\n", `hooks.on_master: unknown hook; want one of start,`},
		{"hook map key", nil, "hooks:\n  start:\n    cmd: echo\n", `hooks.start: line 3: unknown key "cmd"; want command and timeout`},
		{"empty hook", nil, "hooks:\n  start: []\n", `hooks.start: line 2: want a command`},
		{"cron", nil, "jobs:\n  - name: j\n    schedule: every day\n    command: echo\n", `jobs[0].schedule: "every day": want 5 or 6 cron fields`},
		{"job role", nil, "jobs:\n  - name: j\n    schedule: '@daily'\n    role: leader\n    command: echo\n", `jobs[0].role: "leader": want master, slave or any`},
		{"job overlap", nil, "jobs:\n  - name: j\n    schedule: '@daily'\n    overlap: never\n    command: echo\n", `jobs[0].overlap: "never": want skip, queue or replace`},
		{"job jitter", nil, "jobs:\n  - name: j\n    schedule: '@daily'\n    jitter: soon\n    command: echo\n", `jobs[0].jitter: "soon": want a duration`},
		{"jobs timezone", map[string]string{"CCCTL_JOBS_TIMEZONE": "Moon/Base"}, "", `CCCTL_JOBS_TIMEZONE: "Moon/Base": want an IANA time zone`},
		{"yaml syntax", nil, "ttl: [\n", `ccctl.yaml: want valid YAML`},
		{"list for scalar", nil, "ttl: [1, 2]\n", `ttl: want a single value`},
		{"locks required without locks", map[string]string{"CCCTL_FILESYSTEM_LOCKS_REQUIRED": "true"}, "", `CCCTL_FILESYSTEM_LOCKS_REQUIRED: true needs filesystem_locks in the YAML file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.file != "" {
				t.Setenv("CCCTL_CONFIG", writeFile(t, tt.file))
			}
			_, err := config.Load(nil)
			if err == nil {
				t.Fatalf("Load: got no error; want %q", tt.want)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid): got false; want true")
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("error: got %d lines %q; want one", strings.Count(msg, "\n")+1, msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error: got %q; want it to contain %q", msg, tt.want)
			}
		})
	}
}

func TestFlagNamedInError(t *testing.T) {
	clearEnv(t)
	t.Setenv("CCCTL_TTL", "30s")
	_, err := config.Load(flags(t, "--ttl=1s"))
	if err == nil || !strings.Contains(err.Error(), `--ttl: "1s": want at least 2s`) {
		t.Errorf("got %v; want the error to name --ttl", err)
	}
}

func TestHistorySize(t *testing.T) {
	c, err := config.Load(flags(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.HistorySize != 100 {
		t.Errorf("default history size: got %d; want 100", c.HistorySize)
	}
	t.Setenv("CCCTL_HISTORY_SIZE", "7")
	if c, err = config.Load(flags(t)); err != nil || c.HistorySize != 7 {
		t.Errorf("CCCTL_HISTORY_SIZE=7: got %v, %v; want 7", c, err)
	}
	for _, bad := range []string{"0", "-1", "many", "100001"} {
		t.Setenv("CCCTL_HISTORY_SIZE", bad)
		_, err := config.Load(flags(t))
		if err == nil || !strings.Contains(err.Error(), "CCCTL_HISTORY_SIZE: \""+bad+"\": want a whole number from 1 to 100000") {
			t.Errorf("CCCTL_HISTORY_SIZE=%s: got %v; want a one-line error naming it", bad, err)
		}
	}
}
