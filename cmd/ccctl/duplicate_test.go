package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestRunDuplicateIDExits2: a second ccctl run with the id of a running
// member is refused with exit 2 and one line naming the id and the
// member's host; its service never starts, and the member stays master.
func TestRunDuplicateIDExits2(t *testing.T) {
	tc := newTestCluster(t)
	tc.add(t, "web1", "master", "active")
	dir := t.TempDir()
	env := append(tc.env, "CCCTL_INSTANCE_ID=web1")
	r := ccctl(t, 30*time.Second, env, "run", "--", "touch", dir+"/started")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != 2 || !strings.Contains(last, "web1") || !strings.Contains(last, "host-web1") || !strings.Contains(last, "in use") {
		t.Errorf("got %d %q; want 2 and a line naming web1 and host-web1", r.code, r.stderr)
	}
	if _, err := os.Stat(dir + "/started"); err == nil {
		t.Errorf("the service ran; want it never started")
	}
	if r := ccctl(t, 30*time.Second, tc.env, "leader"); r.stdout != "web1\n" {
		t.Errorf("leader after the refusal: %q; want web1", r.stdout)
	}
}
