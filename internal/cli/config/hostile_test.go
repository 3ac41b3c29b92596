package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccctl/ccctl/internal/cli/config"
)

// loadErr loads with env and, when file is not empty, a YAML file holding
// it, and returns the error, failing when there is none or when it is not
// made of short single lines wrapping ErrInvalid.
func loadErr(t *testing.T, env map[string]string, file string) string {
	t.Helper()
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	if file != "" {
		t.Setenv("CCCTL_CONFIG", writeFile(t, file))
	}
	_, err := config.Load(nil)
	if err == nil {
		t.Fatalf("Load with %v: got no error; want one", env)
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid): got false; want true")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if len(line) > config.MaxErrorLine {
			t.Errorf("error line of %d bytes; want at most %d: %.200q", len(line), config.MaxErrorLine, line)
		}
	}
	return err.Error()
}

// TestHostileValues covers the smaller items of "nothing from outside can
// fool a member": each value passed validation before, or was reported
// with the wrong reason.
func TestHostileValues(t *testing.T) {
	tlsFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(tlsFile, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		file string
		want string
	}{
		{"http port out of range", map[string]string{"CCCTL_HTTP_ADDR": ":70000"}, "", `CCCTL_HTTP_ADDR: ":70000": want host:port or :port, with a port number from 1 to 65535`},
		{"http port zero", map[string]string{"CCCTL_HTTP_ADDR": "127.0.0.1:0"}, "", `CCCTL_HTTP_ADDR: "127.0.0.1:0": want host:port or :port, with a port number from 1 to 65535`},
		{"http port by name", map[string]string{"CCCTL_HTTP_ADDR": ":http"}, "", `CCCTL_HTTP_ADDR: ":http": want host:port or :port, with a port number`},
		{"http host with control characters", map[string]string{"CCCTL_HTTP_ADDR": "a\x07b:80"}, "", `CCCTL_HTTP_ADDR: "a\ab:80": want a host name or an IP address before the port`},
		{"unix endpoint", map[string]string{"ETCD_ENDPOINTS": "unix:///run/etcd.sock"}, "", `ETCD_ENDPOINTS: "unix:///run/etcd.sock": want http://host:port, https://host:port or host:port`},
		{"endpoint port out of range", map[string]string{"ETCD_ENDPOINTS": "http://e1:70000"}, "", `ETCD_ENDPOINTS: "http://e1:70000": want a port number from 1 to 65535`},
		{"host port out of range", map[string]string{"ETCD_HOSTS": "e1:99999"}, "", `ETCD_HOSTS: "http://e1:99999": want a port number from 1 to 65535`},
		{"ttl NaN", map[string]string{"CCCTL_TTL": "NaN"}, "", `CCCTL_TTL: "NaN": not a number; want a duration such as 10s, 1m30s or a number of seconds, from 2s to 1h`},
		{"ttl Inf", map[string]string{"CCCTL_TTL": "Inf"}, "", `CCCTL_TTL: "Inf": too large; want a duration such as 10s, 1m30s or a number of seconds, from 2s to 1h`},
		{"ttl -Inf", map[string]string{"CCCTL_TTL": "-Inf"}, "", `CCCTL_TTL: "-Inf": negative; want a duration`},
		{"ttl 1e308", map[string]string{"CCCTL_TTL": "1e308"}, "", `CCCTL_TTL: "1e308": too large; want a duration such as 10s, 1m30s or a number of seconds, from 2s to 1h`},
		{"ttl 1e400", map[string]string{"CCCTL_TTL": "1e400"}, "", `CCCTL_TTL: "1e400": too large;`},
		{"ttl hours", map[string]string{"CCCTL_TTL": "2h"}, "", `CCCTL_TTL: "2h": too large; want a duration such as 10s, 1m30s or a number of seconds, from 2s to 1h`},
		{"duration overflow", map[string]string{"CCCTL_GRACE_PERIOD": "99999999999h"}, "", `CCCTL_GRACE_PERIOD: "99999999999h": too large; want a duration such as 10s, 1m30s or a number of seconds, more than 0 and at most 8760h`},
		{"duration NaN", map[string]string{"CCCTL_HOOK_TIMEOUT": "nan"}, "", `CCCTL_HOOK_TIMEOUT: "nan": not a number;`},
		{"hook timeout NaN in file", nil, "hooks:\n  start:\n    command: echo\n    timeout: NaN\n", `hooks.start.timeout: "NaN": not a number;`},
		{"huge value cut", map[string]string{"CCCTL_LOG_FORMAT": strings.Repeat("x", 20<<20)}, "", `CCCTL_LOG_FORMAT: "` + strings.Repeat("x", 64) + `...": want one of text, json`},
		{"second document", nil, "ttl: 5s\n---\nttl: 1s\n", `ccctl.yaml: line 2: a second YAML document; want one document`},
		{"prefix with newline", map[string]string{"CCCTL_PREFIX": "/ccctl\n/x"}, "", `CCCTL_PREFIX: "/ccctl\n/x": want a key prefix of printable characters`},
		{"prefix with escape", map[string]string{"CCCTL_PREFIX": "/cc\x1b[2Jctl"}, "", `CCCTL_PREFIX: "/cc\x1b[2Jctl": want a key prefix of printable characters`},
		{"advertise escape codes", map[string]string{"CCCTL_ADVERTISE_ADDRESS": "10.0.0.1\x1b[2J"}, "", `CCCTL_ADVERTISE_ADDRESS: "10.0.0.1\x1b[2J": want a host name or an IP address`},
		{"advertise URL", map[string]string{"CCCTL_ADVERTISE_ADDRESS": "http://db1"}, "", `CCCTL_ADVERTISE_ADDRESS: "http://db1": want a host name or an IP address`},
		{"cacert with http endpoint", map[string]string{"ETCD_ENDPOINTS": "http://e1:2379", "ETCD_CACERT": tlsFile}, "", `ETCD_ENDPOINTS: "http://e1:2379": TLS files were given (ETCD_CACERT) for a plain http endpoint; want https:// endpoints, or no TLS files`},
		{"cert with http endpoint", map[string]string{"ETCD_ENDPOINTS": "https://e1:2379,http://e2:2379", "ETCD_CERT": tlsFile, "ETCD_KEY": tlsFile}, "", `ETCD_ENDPOINTS: "http://e2:2379": TLS files were given (ETCD_CERT) for a plain http endpoint`},
		{"config is a device", map[string]string{"CCCTL_CONFIG": "/dev/zero"}, "", `CCCTL_CONFIG: want a readable YAML file of at most 1 MiB`},
		{"secret file is a device", map[string]string{"ETCD_USERNAME": "u", "ETCD_PASSWORD_FILE": "/dev/zero"}, "", `ETCD_PASSWORD_FILE: want a readable file of at most 64 KiB holding ETCD_PASSWORD`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := loadErr(t, tt.env, tt.file)
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("error: got %d lines %.300q; want one", strings.Count(msg, "\n")+1, msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error: got %.300q; want it to contain %q", msg, tt.want)
			}
		})
	}
}

// TestHostileValuesAccepted: what the checks above must still let through.
func TestHostileValuesAccepted(t *testing.T) {
	tlsFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(tlsFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []map[string]string{
		{"CCCTL_HTTP_ADDR": ":65535"},
		{"CCCTL_HTTP_ADDR": "[::1]:8008"},
		{"CCCTL_HTTP_ADDR": "localhost:8008"},
		{"CCCTL_TTL": "3600"},
		{"CCCTL_TTL": "1h"},
		{"CCCTL_GRACE_PERIOD": "8760h"},
		{"CCCTL_ADVERTISE_ADDRESS": "10.0.0.5"},
		{"CCCTL_ADVERTISE_ADDRESS": "fd00::5"},
		{"CCCTL_ADVERTISE_ADDRESS": "db-1.example.com"},
		{"CCCTL_ADVERTISE_ADDRESS": "tasks.db_1"},
		{"CCCTL_PREFIX": "/team-a/ccctl"},
		{"ETCD_ENDPOINTS": "e1:2379", "ETCD_CACERT": tlsFile},
		{"ETCD_HOSTS": "e1,e2", "ETCD_CACERT": tlsFile},
	} {
		clearEnv(t)
		for k, v := range env {
			t.Setenv(k, v)
		}
		if _, err := config.Load(nil); err != nil {
			t.Errorf("Load with %v: %v; want no error", env, err)
		}
	}
	clearEnv(t)
	t.Setenv("CCCTL_CONFIG", writeFile(t, "---\nttl: 5s\n"))
	if c, err := config.Load(nil); err != nil || c.TTL.Seconds() != 5 {
		t.Errorf("one document after ---: got %v; want ttl 5s", err)
	}
}

// TestTooManyErrors: a list of a hundred thousand bad ports are not as many lines.
func TestTooManyErrors(t *testing.T) {
	msg := loadErr(t, map[string]string{"PORTS_WHEN_ACTIVE": strings.Repeat("x,", 100000)}, "")
	lines := strings.Split(msg, "\n")
	if len(lines) > 50 {
		t.Errorf("got %d lines; want at most 50", len(lines))
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "and 99951 more errors") {
		t.Errorf("last line: got %q; want it to count the errors left out", last)
	}
}
