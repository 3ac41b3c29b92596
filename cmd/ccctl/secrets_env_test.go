package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunStripsSecretsFromChildren: ccctl's own secrets (ETCD_USERNAME,
// ETCD_PASSWORD and their _FILE forms) reach neither the service, nor a
// hook, nor a job, while the other variables and the CC_* context do; the
// service does not find them in ccctl's /proc/<pid>/environ either.
func TestRunStripsSecretsFromChildren(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(dir string) []string
	}{
		{"variables", func(string) []string {
			return []string{"ETCD_USERNAME=user-7f3a", "ETCD_PASSWORD=pass-9c1e"}
		}},
		{"files", func(dir string) []string {
			for name, v := range map[string]string{"user": "user-7f3a", "pass": "pass-9c1e"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return []string{"ETCD_USERNAME_FILE=" + filepath.Join(dir, "user"), "ETCD_PASSWORD_FILE=" + filepath.Join(dir, "pass")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			yaml := "hooks:\n" +
				"  start: env > " + dir + "/start.env\n" +
				"  started_as_master: env > " + dir + "/started_as_master.env\n" +
				"  stopping: env > " + dir + "/stopping.env\n" +
				"jobs:\n" +
				"  - name: dump\n    schedule: '@every 1s'\n    role: any\n    command: env > " + dir + "/job.tmp && mv " + dir + "/job.tmp " + dir + "/job.env\n"
			cfgPath := filepath.Join(dir, "ccctl.yaml")
			if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			// The service waits for the job's first run, then prints its
			// environment and exits, which stops ccctl.
			service := "while [ ! -f " + dir + "/job.env ]; do sleep 0.1; done; env; echo @@@; tr '\\0' '\\n' < /proc/$PPID/environ"
			env := append(tc.env(dir), "CCCTL_CONFIG="+cfgPath, "SERVICE=web", "CCCTL_INSTANCE_ID=m1")
			r := ccctl(t, 60*time.Second, env, "run", "--", "sh", "-c", service)
			if r.code != 0 {
				t.Fatalf("ccctl run: exit %d; want 0 (stderr %q)", r.code, r.stderr)
			}
			own, proc, ok := strings.Cut(r.stdout, "@@@\n")
			if !ok {
				t.Fatalf("service output %q: want its environment, @@@, then ccctl's /proc/<pid>/environ", r.stdout)
			}
			dumps := map[string]string{"service": own, "/proc/<ccctl>/environ": proc}
			for _, name := range []string{"start", "started_as_master", "stopping", "job"} {
				b, err := os.ReadFile(filepath.Join(dir, name+".env"))
				if err != nil {
					t.Fatalf("%s: %v (stderr %q)", name, err, r.stderr)
				}
				dumps[name] = string(b)
			}
			for who, dump := range dumps {
				vars := map[string]bool{}
				for _, line := range strings.Split(dump, "\n") {
					if name, _, ok := strings.Cut(line, "="); ok {
						vars[name] = true
					}
				}
				for _, secret := range []string{"ETCD_USERNAME", "ETCD_PASSWORD", "ETCD_USERNAME_FILE", "ETCD_PASSWORD_FILE"} {
					if vars[secret] {
						t.Errorf("%s: got %s in its environment; want it removed", who, secret)
					}
				}
				for _, value := range []string{"user-7f3a", "pass-9c1e"} {
					if strings.Contains(dump, value) {
						t.Errorf("%s: its environment holds the secret %q", who, value)
					}
				}
				if !vars["SERVICE"] || !vars["PATH"] {
					t.Errorf("%s: SERVICE and PATH missing from its environment %q; want the other variables passed on", who, dump)
				}
				if who != "job" && who != "/proc/<ccctl>/environ" && !vars["CC_ROLE"] {
					t.Errorf("%s: CC_ROLE missing from its environment; want the CC_* context", who)
				}
			}
		})
	}
}
