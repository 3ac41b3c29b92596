package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// flagLine is one flag of a help text: its name, the name of its value
// ("" for a boolean) and its usage.
var flagLine = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)(\[=[^\]]*\])?(?: (\S+))?\s{2,}(.*)$`)

// helpFlags returns the flags listed by ccctl args --help, by name: value
// name and usage.
func helpFlags(t *testing.T, args ...string) map[string][2]string {
	t.Helper()
	r := ccctl(t, 20*time.Second, nil, append(args, "--help")...)
	if r.code != 0 {
		t.Fatalf("ccctl %s --help: got %d %q; want 0", strings.Join(args, " "), r.code, r.stderr)
	}
	out := map[string][2]string{}
	for _, m := range flagLine.FindAllStringSubmatch(r.stdout, -1) {
		out[m[1]] = [2]string{m[3], m[4]}
	}
	if len(out) == 0 {
		t.Fatalf("ccctl %s --help: no flags in %q", strings.Join(args, " "), r.stdout)
	}
	return out
}

func TestHelpNamesValuesByTheirKind(t *testing.T) {
	valueNames := map[string]bool{"": true, "string": true, "N": true, "duration": true, "list": true, "port": true, "file": true, "strings": true, "int": true}
	for _, args := range [][]string{{}, {"run"}, {"status"}, {"health"}, {"switchover"}, {"failover"}, {"backup", "prune"}} {
		for name, f := range helpFlags(t, args...) {
			if !valueNames[f[0]] {
				t.Errorf("ccctl %s --help: --%s %s: the value's name is a word of the usage %q", strings.Join(args, " "), name, f[0], f[1])
			}
			if strings.Contains(f[1], "`") {
				t.Errorf("ccctl %s --help: --%s: usage %q has a back quote", strings.Join(args, " "), name, f[1])
			}
		}
	}
	run := helpFlags(t, "run")
	for name, want := range map[string][2]string{
		"ttl":                             {"duration", "(default 10s)"},
		"etcd-connect-timeout":            {"duration", "(default 60s)"},
		"ports-when-active":               {"list", "(env PORTS_WHEN_ACTIVE)"},
		"log-level":                       {"string", `(default "info")`},
		"backups-days-to-keep":            {"N", "(default 14)"},
		"instance-id":                     {"string", "default: the host name"},
		"terminate-when-no-longer-active": {"", "TERMINATE_WHEN_NO_LONGER_ACTIVE"},
		"priority":                        {"N", "(default 1)"},
		"position-command":                {"string", "(env CCCTL_POSITION_COMMAND)"},
		"position-interval":               {"duration", "(default 1s)"},
		"position-timeout":                {"duration", "default: position_interval, at most ttl"},
		"maximum-lag":                     {"N", "(env CCCTL_MAXIMUM_LAG)"},
		"failover-wait":                   {"duration", "default: ttl / 4"},
	} {
		got, ok := run[name]
		if !ok || got[0] != want[0] || !strings.Contains(got[1], want[1]) {
			t.Errorf("run --help: --%s: got %q; want value %q and %q in the usage", name, got, want[0], want[1])
		}
	}
}

func TestRunSettingsAreFlagsOfRunOnly(t *testing.T) {
	leader := helpFlags(t, "leader")
	for _, name := range []string{"ports-when-active", "ttl", "hooks-timeout", "backups-days-to-keep", "http-address", "instance-id"} {
		if _, ok := leader[name]; ok {
			t.Errorf("leader --help lists --%s; want only the connection and cluster flags", name)
		}
	}
	for _, name := range []string{"config", "etcd-endpoints", "etcd-prefix", "environment", "service"} {
		if _, ok := leader[name]; !ok {
			t.Errorf("leader --help: no --%s; want it on every command", name)
		}
	}
	if _, ok := helpFlags(t, "health")["http-address"]; !ok {
		t.Error("health --help: no --http-address")
	}
	if _, ok := helpFlags(t, "backup", "prune")["backups-days-to-keep"]; !ok {
		t.Error("backup prune --help: no --backups-days-to-keep")
	}
	r := ccctl(t, 20*time.Second, nil, "leader", "--ttl", "5s")
	if r.code != 2 || !strings.Contains(r.stderr, "unknown flag: --ttl") {
		t.Errorf("leader --ttl 5s: got %d %q; want 2 and unknown flag", r.code, r.stderr)
	}
	r = ccctl(t, 20*time.Second, nil, "run", "--terminate-when-no-longer-active=maybe", "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, `--terminate-when-no-longer-active: "maybe": want true or false`) {
		t.Errorf("run --terminate-when-no-longer-active=maybe: got %d %q; want 2 and the flag named", r.code, r.stderr)
	}
	r = ccctl(t, 20*time.Second, nil, "run", "--terminate-when-no-longer-active", "--ports-when-active", "1", "--backups-last-to-keep", "unlimited", "--", "true")
	if r.code != 0 {
		t.Errorf("run --terminate-when-no-longer-active --backups-last-to-keep unlimited: got %d %q; want 0", r.code, r.stderr)
	}
}

func TestVersionStampedAtBuildTime(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ccctl")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build -ldflags -X main.version=v1.2.3: %v", err)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runAt(t, bin, 20*time.Second, nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "ccctl v1.2.3 go") {
			t.Errorf("ccctl %s: got %d %q; want 0 and ccctl v1.2.3 go...", args[0], r.code, r.stdout)
		}
	}
}
