package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/testkit/etcdtest"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// chromium returns the path of Debian's chromium (CCCTL_CHROMIUM
// overrides it), or skips the test when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CCCTL_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium (Debian's package chromium; CCCTL_CHROMIUM names another)")
	}
	return p
}

// headless runs chromium headless on url with args, bounded, and returns
// its stdout. The page's scripts run until the virtual time budget is
// spent, so that their first poll has been drawn.
func headless(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000", "--hide-scrollbars"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(argv, url)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v; stderr %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// TestPageDrill runs three members with `ccctl run` on a real etcd, makes
// terms of every graceful kind (an election, a switchover, a handover),
// then opens the live page of a member in headless chromium: the DOM, once
// the page's script ran, shows every member and every term, and a
// screenshot is taken (CCCTL_PAGE_SCREENSHOT=path keeps a copy, as
// docs/page.png was made).
func TestPageDrill(t *testing.T) {
	bin := chromium(t)
	e := etcdtest.Start(t)
	conf := hooksFile(t)
	base := []string{"ETCD_ENDPOINTS=" + e.Endpoint(0), "ENVIRONMENT=prod", "SERVICE=db", "CCCTL_TTL=3", "CCCTL_CONFIG=" + conf, "CCCTL_GRACE_PERIOD=2s"}
	env := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	service := []string{"run", "--", "sleep", "600"}

	pg1 := background(t, env("CCCTL_INSTANCE_ID=pg1"), service...)
	testutil.Eventually(t, 30*time.Second, "pg1 master", func() bool {
		return strings.Contains(pg1.stdout.String(), "hook started_as_master pg1")
	})
	addr := freeAddr(t)
	pg2 := background(t, env("CCCTL_INSTANCE_ID=pg2"), service...)
	pg3 := background(t, env("CCCTL_INSTANCE_ID=pg3", "CCCTL_HTTP_ADDR="+addr), service...)
	for _, m := range []*running{pg2, pg3} {
		testutil.Eventually(t, 30*time.Second, "slave init hook", func() bool {
			return strings.Contains(m.stdout.String(), "hook started_as_slave")
		})
	}
	if r := ccctl(t, 40*time.Second, base, "switchover", "--to", "pg2", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("switchover --to pg2: got %d %q %q", r.code, r.stdout, r.stderr)
	}
	testutil.Eventually(t, 30*time.Second, "pg2 master", func() bool {
		return strings.Contains(pg2.stdout.String(), "hook transition_slave_to_master pg2")
	})
	pg2.stop(t, syscall.SIGTERM, 30*time.Second) // hands over to pg1 or pg3

	var terms []coordinator.Term
	testutil.Eventually(t, 30*time.Second, "three terms on /history", func() bool {
		resp, err := http.Get("http://" + addr + "/history")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		terms = nil
		return json.NewDecoder(resp.Body).Decode(&terms) == nil && len(terms) == 3
	})
	wantReasons := []string{"election-switchover", "switchover-resigned", "handover-"}
	for i, term := range terms {
		if got := term.Reason + "-" + term.EndReason; got != wantReasons[i] {
			t.Errorf("term %d (%s): got %s; want %s", term.Token, term.Member, got, wantReasons[i])
		}
	}

	url := "http://" + addr + "/"
	dom := headless(t, bin, url, "--dump-dom")
	for _, id := range []string{"pg1", "pg3"} { // pg2 stopped: its record is gone
		if !strings.Contains(dom, `<tr class="member" data-id="`+id+`">`) {
			t.Errorf("page DOM: no row of member %s", id)
		}
	}
	for _, term := range terms {
		if !strings.Contains(dom, fmt.Sprintf(`<tr class="term" data-token="%d">`, term.Token)) {
			t.Errorf("page DOM: no row of term %d (%s)", term.Token, term.Member)
		}
	}
	for _, reason := range []string{"election", "switchover", "handover", "resigned"} {
		if !strings.Contains(dom, ">"+reason+"<") {
			t.Errorf("page DOM: reason %q not shown", reason)
		}
	}
	if !strings.Contains(dom, `<span id="paused" class="pill paused" hidden="">`) {
		t.Errorf("page DOM: the paused mark is not hidden in a cluster that is not paused")
	}
	if strings.Count(dom, `<span class="lease">`) != 2 {
		t.Errorf("page DOM: want a lease bar for each of the 2 members")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	headless(t, bin, url, "--screenshot="+shot, "--window-size=1280,760")
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 10000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot: %d bytes; want a PNG of more than 10 kB", len(png))
	}
	if keep := os.Getenv("CCCTL_PAGE_SCREENSHOT"); keep != "" {
		if err := os.WriteFile(keep, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
