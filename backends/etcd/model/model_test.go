package model_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// check is one run of spin on election.pml with the given defines.
type check struct {
	name    string
	defines []string
	wantErr bool // a planted bug: spin must find a violation
}

// checks are the runs: the correct model under each fault set, and each
// planted bug. CCCTL_MODEL_LONG=1 widens the horizon (minutes, by hand).
func checks() []check {
	horizon := []string{"-DMAXT=3", "-DMAXREV=4"}
	if os.Getenv("CCCTL_MODEL_LONG") != "" {
		horizon = []string{"-DMAXT=4", "-DMAXREV=6"}
	}
	with := func(d ...string) []string { return append(append([]string{}, horizon...), d...) }
	return []check{
		{"cut-offs and expiry", with(), false},
		{"freeze", with("-DFREEZES=1"), false},
		{"crash", with("-DCRASHES=1"), false},
		{"pause, switchover and a key written by hand", with("-DOPS=1", "-DGHOSTS=1"), false},
		{"planted: campaign without the vacancy check", with("-DBUG_NO_VACANCY"), true},
		{"planted: handover to an heir with no lease", with("-DBUG_HEIR_LEASE", "-DGHOSTS=1"), true},
		{"planted: no local deadline", with("-DBUG_NO_DEADLINE"), true},
		{"planted: a term adopted again after it ended", with("-DBUG_ADOPT_ENDED"), true},
		{"planted: handover to the best candidate with a dead lease", with("-DBUG_BEST_LEASE", "-DCRASHES=1"), true},
	}
}

var errorsRE = regexp.MustCompile(`errors: (\d+)`)

func TestElectionModel(t *testing.T) {
	for _, tool := range []string{"spin", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found: CI must install it (.ci/run)", tool)
			}
			t.Skipf("%s not found (Debian: apt-get install spin gcc)", tool)
		}
	}
	src, err := os.ReadFile("election.pml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "election.pml"), src, 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(name string, args ...string) string {
				t.Helper()
				cmd := exec.Command(name, args...)
				cmd.Dir = dir
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
				}
				return out.String()
			}
			run("spin", append(append([]string{"-a"}, c.defines...), "election.pml")...)
			run("gcc", "-O2", "-w", "-DSAFETY", "-DCOLLAPSE", "-DVECTORSZ=4096", "-o", "pan", "pan.c")
			out := run("./pan", "-m1000000", "-w25")
			m := errorsRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no verdict in spin's output:\n%s", out)
			}
			n, _ := strconv.Atoi(m[1])
			switch {
			case c.wantErr && n == 0:
				t.Errorf("spin found no violation; want one: the model does not catch this bug\n%s", out)
			case !c.wantErr && n != 0:
				t.Errorf("spin found %d violation(s); want 0 (replay: spin -t -p election.pml in %s)\n%s", n, dir, out)
			case testing.Verbose():
				t.Logf("%s", regexp.MustCompile(`(?m)^.*(errors:|states, stored).*$`).FindAllString(out, -1))
			}
		})
	}
}
