package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ccctl/ccctl/internal/cli/config"
)

// fuzzEnv are the variables FuzzLoad may set: every setting's, and the
// secrets' _FILE forms, but not CCCTL_CONFIG, which names the fuzzed file.
func fuzzEnv() map[string]bool {
	names := map[string]bool{}
	for _, s := range config.Settings() {
		for _, e := range s.Env {
			if e == "CCCTL_CONFIG" {
				continue
			}
			names[e] = true
			if s.Secret {
				names[e+"_FILE"] = true
			}
		}
	}
	return names
}

// FuzzLoad feeds Load a YAML file and environment variables (lines of
// NAME=value in env). Load must not panic or hang, and every error must
// wrap ErrInvalid and be made of single lines of printable characters, at
// most config.MaxErrorLine bytes each. Run by hand with
// go test -run '^$' -fuzz FuzzLoad -fuzztime 10m ./internal/cli/config/
// (the seeds are in testdata/fuzz/FuzzLoad and below).
func FuzzLoad(f *testing.F) {
	f.Add([]byte("environment: production\nservice: postgres\nttl: 10s\n"), "CCCTL_INSTANCE_ID=m1")
	f.Add([]byte("hooks:\n  start: echo hi\n  stopping: [/bin/true]\n  started_as_master:\n    command: x\n    timeout: 1m\n"), "")
	f.Add([]byte("jobs:\n  - name: dump\n    schedule: '@hourly'\n    role: master\n    command: echo\n    jitter: 5s\n"), "")
	f.Add([]byte("ttl: 5s\n---\nttl: 1s\n"), "CCCTL_TTL=NaN")
	f.Add([]byte(""), "CCCTL_HTTP_ADDR=:70000\nETCD_ENDPOINTS=unix:///x")
	f.Add([]byte("etcd:\n  prefix: \"/a\\nb\"\n"), "CCCTL_ADVERTISE_ADDRESS=\x1b[2J")
	f.Add([]byte("backups:\n  timezone: Europe/Paris\n"), "ETCD_CACERT=/dev/null\nETCD_ENDPOINTS=http://e:2379")
	f.Add([]byte("ttl: [1, 2]\nbogus: 1\n"), "CCCTL_TTL=1e308\nPORTS_WHEN_ACTIVE=80,x")
	f.Add([]byte("&a [*a]"), "SUPPRESS_LOG_REGEXP=(((")
	f.Add([]byte("priority: -1\nmaximum_lag: 1e9\nfailover_wait: 1h\nposition_command: [a]\n"), "CCCTL_POSITION_INTERVAL=NaN\nCCCTL_POSITION_TIMEOUT=99999h")
	names := fuzzEnv()
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte, env string) {
		for name := range names {
			os.Unsetenv(name)
		}
		os.Setenv("CCCTL_INSTANCE_ID", "m1")
		for _, line := range strings.Split(env, "\n") {
			name, value, ok := strings.Cut(line, "=")
			if ok && names[name] && !strings.ContainsRune(value, 0) {
				os.Setenv(name, value)
			}
		}
		path := filepath.Join(dir, "ccctl.yaml")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Setenv("CCCTL_CONFIG", path)
		defer func() {
			for name := range names {
				os.Unsetenv(name)
			}
			os.Unsetenv("CCCTL_CONFIG")
		}()

		done := make(chan error, 1)
		go func() {
			_, err := config.Load(nil)
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Load: no answer within 10s for file %q env %q", file, env)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, config.ErrInvalid) {
			t.Errorf("error %q: does not wrap ErrInvalid", err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if len(line) > config.MaxErrorLine {
				t.Errorf("error line of %d bytes; want at most %d: %q", len(line), config.MaxErrorLine, line)
			}
			if !utf8.ValidString(line) {
				t.Errorf("error line is not valid UTF-8: %q", line)
			}
			for _, r := range line {
				if r != ' ' && !unicode.IsPrint(r) {
					t.Errorf("error line holds %U, not printable: %q", r, line)
					break
				}
			}
		}
		var errs config.Errors
		if errors.As(err, &errs) && len(errs) > 50 {
			t.Errorf("got %d errors; want at most 50", len(errs))
		}
	})
}
