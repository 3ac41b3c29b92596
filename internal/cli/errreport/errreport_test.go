package errreport_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/cli/errreport"
)

// ingest stands in for Sentry's ingest: it keeps the bodies posted to the
// project's envelope endpoint and the events they hold.
type ingest struct {
	srv *httptest.Server

	mu     sync.Mutex
	bodies [][]byte
	events []event
}

type event struct {
	Message     string            `json:"message"`
	Level       string            `json:"level"`
	Environment string            `json:"environment"`
	Tags        map[string]string `json:"tags"`
	Exception   json.RawMessage   `json:"exception"`
	Contexts    map[string]any    `json:"contexts"`
}

func newIngest(t *testing.T) *ingest {
	t.Helper()
	in := &ingest{}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/42/envelope/" {
			t.Errorf("request to %s; want /api/42/envelope/", r.URL.Path)
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
			return
		}
		evs, err := parseEnvelope(body)
		if err != nil {
			t.Errorf("parse envelope: %v", err)
		}
		in.mu.Lock()
		in.bodies = append(in.bodies, body)
		in.events = append(in.events, evs...)
		in.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(in.srv.Close)
	return in
}

// dsn returns a DSN that points at the server, with a public key.
func (in *ingest) dsn() string {
	return strings.Replace(in.srv.URL, "http://", "http://publickey@", 1) + "/42"
}

func (in *ingest) snapshot() ([]event, string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]event(nil), in.events...), string(bytes.Join(in.bodies, []byte("\n")))
}

// parseEnvelope returns the event items of a Sentry envelope: a header line,
// then items, each a header line and a payload (of "length" bytes, or one
// line).
func parseEnvelope(b []byte) ([]event, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	if _, err := r.ReadBytes('\n'); err != nil {
		return nil, fmt.Errorf("envelope header: %w", err)
	}
	var evs []event
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 && err != nil {
			return evs, nil
		}
		var h struct {
			Type   string `json:"type"`
			Length *int   `json:"length"`
		}
		if err := json.Unmarshal(line, &h); err != nil {
			return evs, fmt.Errorf("item header %q: %w", line, err)
		}
		var payload []byte
		if h.Length != nil {
			payload = make([]byte, *h.Length)
			if _, err := io.ReadFull(r, payload); err != nil {
				return evs, fmt.Errorf("item payload: %w", err)
			}
			r.ReadByte() // the newline after the payload, if any
		} else {
			payload, _ = r.ReadBytes('\n')
		}
		if h.Type != "event" {
			continue
		}
		var ev event
		if err := json.Unmarshal(payload, &ev); err != nil {
			return evs, fmt.Errorf("event payload: %w", err)
		}
		evs = append(evs, ev)
	}
}

func newReporter(t *testing.T, dsn string) *errreport.Reporter {
	t.Helper()
	r, err := errreport.New(errreport.Config{
		DSN: dsn, Environment: "prod", Service: "db", Member: "db-1",
		Release: "ccctl@test", FlushTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantTags(t *testing.T, ev event, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := ev.Tags[k]; got != v {
			t.Errorf("tag %s = %q; want %q (tags %v)", k, got, v, ev.Tags)
		}
	}
}

func TestErrorLogReachesSentry(t *testing.T) {
	in := newIngest(t)
	r := newReporter(t, in.dsn())
	var local bytes.Buffer
	log := slog.New(r.Handler(slog.NewTextHandler(&local, nil))).With("member", "db-1")

	log.Info("member registered")
	log.Error("backup failed",
		"err", errors.New("dial postgres://admin:hunter2@db:5432/app: connection refused"),
		"password", "hunter2", "hook", "stopping", "attempt", 3)
	if !r.Close() {
		t.Fatal("Close = false; want every event sent")
	}

	evs, raw := in.snapshot()
	if len(evs) != 1 {
		t.Fatalf("events = %d; want 1 (the error record only)", len(evs))
	}
	ev := evs[0]
	if ev.Message != "backup failed" {
		t.Errorf("message = %q; want %q", ev.Message, "backup failed")
	}
	if ev.Level != "error" || ev.Environment != "prod" {
		t.Errorf("level, environment = %q, %q; want error, prod", ev.Level, ev.Environment)
	}
	wantTags(t, ev, map[string]string{"environment": "prod", "service": "db", "member": "db-1", "hook": "stopping"})
	if !strings.Contains(string(ev.Exception), "postgres://[redacted]@db:5432") {
		t.Errorf("exception = %s; want the error with its URL's password removed", ev.Exception)
	}
	if strings.Contains(raw, "hunter2") {
		t.Errorf("the secret was sent: %s", raw)
	}
	if got := strings.Count(local.String(), "\n"); got != 2 {
		t.Errorf("local log has %d lines; want 2 (every record passes through):\n%s", got, local.String())
	}
}

func TestReportHookFailure(t *testing.T) {
	in := newIngest(t)
	r := newReporter(t, in.dsn())
	r.Report(errors.New("exit status 4"), "hook failed", slog.String("hook", "started_as_master"), slog.String("api_key", "k3y"))
	if !r.Close() {
		t.Fatal("Close = false; want every event sent")
	}
	evs, raw := in.snapshot()
	if len(evs) != 1 {
		t.Fatalf("events = %d; want 1", len(evs))
	}
	if evs[0].Message != "hook failed" {
		t.Errorf("message = %q; want %q", evs[0].Message, "hook failed")
	}
	wantTags(t, evs[0], map[string]string{"hook": "started_as_master", "member": "db-1", "service": "db", "environment": "prod"})
	if !strings.Contains(string(evs[0].Exception), "exit status 4") {
		t.Errorf("exception = %s; want the hook's error", evs[0].Exception)
	}
	if strings.Contains(raw, "k3y") {
		t.Errorf("the secret was sent: %s", raw)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     errreport.Config
		wantErr error
		secret  string
	}{
		{"bad scheme", errreport.Config{DSN: "ftp://key@host/1"}, errreport.ErrInvalidDSN, "key@"},
		{"unparsable", errreport.Config{DSN: "http://s3cr3t@host:port/1"}, errreport.ErrInvalidDSN, "s3cr3t"},
		{"negative flush", errreport.Config{DSN: "http://k@host/1", FlushTimeout: -1}, nil, ""},
		{"negative send", errreport.Config{DSN: "http://k@host/1", SendTimeout: -1}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := errreport.New(tt.cfg)
			if err == nil {
				t.Fatal("New = nil error; want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v; want %v", err, tt.wantErr)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error = %q; want it without the DSN's key", err)
			}
		})
	}
}

func TestEmptyDSNDoesNothing(t *testing.T) {
	r, err := errreport.New(errreport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Enabled() {
		t.Error("Enabled = true; want false without a DSN")
	}
	next := slog.NewTextHandler(io.Discard, nil)
	if got := r.Handler(next); got != slog.Handler(next) {
		t.Errorf("Handler = %T; want the next handler itself", got)
	}
	r.Report(errors.New("x"), "ignored")
	if !r.Close() {
		t.Error("Close = false; want true")
	}
	var nilR *errreport.Reporter
	nilR.Report(errors.New("x"), "ignored")
	if !nilR.Close() {
		t.Error("nil Close = false; want true")
	}
}

// TestCloseIsBounded: an ingest that never answers does not hold Close past
// its bound.
func TestCloseIsBounded(t *testing.T) {
	stuck := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stuck) })
	r, err := errreport.New(errreport.Config{
		DSN: strings.Replace(srv.URL, "http://", "http://k@", 1) + "/42", FlushTimeout: 200 * time.Millisecond, SendTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Report(errors.New("boom"), "job failed")
	done := make(chan bool, 1)
	start := time.Now()
	go func() { done <- r.Close() }()
	select {
	case ok := <-done:
		if ok {
			t.Error("Close = true; want false: the event could not be sent")
		}
		t.Logf("Close returned after %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s; want at most flush + send timeout (0.7s)")
	}
}

// TestCloseReportsRejectedEvent: an event the ingest refuses is not
// delivered, even though the SDK's queue is empty when Close flushes.
func TestCloseReportsRejectedEvent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	r := newReporter(t, strings.Replace(srv.URL, "http://", "http://k@", 1)+"/42")
	r.Report(errors.New("boom"), "job failed")
	if r.Close() {
		t.Error("Close = true; want false: the ingest answered 500")
	}
}

func TestNothingSentAfterClose(t *testing.T) {
	in := newIngest(t)
	r := newReporter(t, in.dsn())
	log := slog.New(r.Handler(slog.NewTextHandler(io.Discard, nil)))
	if !r.Close() {
		t.Fatal("Close = false; want true")
	}
	log.Error("after close")
	r.Report(errors.New("x"), "after close")
	if !r.Close() {
		t.Error("second Close = false; want true")
	}
	if evs, _ := in.snapshot(); len(evs) != 0 {
		t.Errorf("events = %d; want 0 after Close", len(evs))
	}
}
