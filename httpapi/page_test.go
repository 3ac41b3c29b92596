package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/httpapi"
)

// startWith runs a server configured by cfg (on a free port, with m's
// status) and stops it at the end of the test.
func startWith(t *testing.T, m *member, cfg httpapi.Config) string {
	t.Helper()
	cfg.Address, cfg.Status = "127.0.0.1:0", m.get
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Execute() }()
	t.Cleanup(func() {
		s.Interrupt(nil)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("Execute: no return within 5s of Interrupt")
		}
	})
	return "http://" + s.Addr().String()
}

// twoTerms returns a memory cluster whose history holds a's term, ended by
// a resignation, and b's, by handover.
func twoTerms(t *testing.T) *memory.Coordinator {
	t.Helper()
	store := memory.NewStore()
	var cs []*memory.Coordinator
	for _, id := range []string{"a", "b"} {
		c, err := memory.New(store, memory.Config{Cluster: coordinator.Cluster{Environment: "test", Service: "db"}, ID: id})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Register(context.Background(), coordinator.Member{State: coordinator.StateRunning}); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	la, err := cs[0].Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := la.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs[1].Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	return cs[1]
}

func TestHistoryJSON(t *testing.T) {
	b := twoTerms(t)
	base := startWith(t, &member{}, httpapi.Config{History: b.History})
	code, body := get(t, base+"/history")
	var terms []map[string]any
	if err := json.Unmarshal([]byte(body), &terms); err != nil {
		t.Fatalf("GET /history: %v in %q", err, body)
	}
	if code != 200 || len(terms) != 2 || terms[0]["member"] != "a" || terms[0]["end_reason"] != "resigned" ||
		terms[1]["member"] != "b" || terms[1]["reason"] != "handover" {
		t.Errorf("GET /history: got %d %v; want a (resigned) then b (handover)", code, terms)
	}
	for _, k := range []string{"token", "member", "began", "ended", "reason", "end_reason"} {
		if _, ok := terms[1][k]; !ok {
			t.Errorf("GET /history: term without %q: %v", k, terms[1])
		}
	}
	if code, body := get(t, base+"/history?limit=1"); code != 200 || strings.Count(body, `"token"`) != 1 || !strings.Contains(body, `"member":"b"`) {
		t.Errorf("GET /history?limit=1: got %d %s; want b's term alone", code, body)
	}
	if code, body := get(t, base+"/history?limit=x"); code != 400 || !strings.Contains(body, `limit \"x\": want a whole number`) {
		t.Errorf("GET /history?limit=x: got %d %s; want 400 naming the limit", code, body)
	}
}

func TestHistoryAndClusterOff(t *testing.T) {
	base := startWith(t, &member{}, httpapi.Config{})
	for _, path := range []string{"/history", "/cluster"} {
		if code, _ := get(t, base+path); code != http.StatusNotFound {
			t.Errorf("GET %s without a source: got %d; want 404", path, code)
		}
	}
}

func TestHistoryBackendError(t *testing.T) {
	fail := func(context.Context, int) ([]coordinator.Term, error) { return nil, errors.New("etcd: no leader") }
	base := startWith(t, &member{}, httpapi.Config{History: fail})
	if code, body := get(t, base+"/history"); code != 503 || !strings.Contains(body, "no leader") {
		t.Errorf("GET /history with a failing backend: got %d %s; want 503 with the error", code, body)
	}
}

// TestPage: / is the embedded page, loads nothing from elsewhere, and is
// read-only: every route answers GET only.
func TestPage(t *testing.T) {
	b := twoTerms(t)
	cluster := func(context.Context) (any, error) { return map[string]any{"members": []any{}}, nil }
	base := startWith(t, &member{}, httpapi.Config{History: b.History, Cluster: cluster})
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("GET /: got %d, %q, CSP %q; want 200, text/html and a CSP that loads nothing from elsewhere",
			resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
	_, page := get(t, base+"/")
	if ext := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(`).FindString(page); ext != "" {
		t.Errorf("page refers to something outside itself: %q", ext)
	}
	for _, want := range []string{`get("status")`, `get("cluster")`, `get("history?limit=40")`} {
		if !strings.Contains(page, want) {
			t.Errorf("page does not read %s", want)
		}
	}
	if code, _ := get(t, base+"/nothing-here"); code != 404 {
		t.Errorf("GET /nothing-here: got %d; want 404 (the page is at / only)", code)
	}
	for _, path := range []string{"/", "/history", "/cluster", "/status", "/health"} {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: got %d; want 405", method, path, resp.StatusCode)
			}
		}
	}
}
