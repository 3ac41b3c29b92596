// Package errreport sends the controller's errors to Sentry (SENTRY_DSN),
// with the official Go SDK (github.com/getsentry/sentry-go).
//
// A Reporter reports two kinds of errors: every slog record at level error
// or above that goes through its Handler, and the failures that Report is
// given (a hook or a job that failed). Each event carries the tags
// environment, service and member, and is sent in the background; Close
// sends what is left, waiting at most the flush timeout.
//
// What is guaranteed:
//
//   - Logging never waits for Sentry: events are queued by the SDK and sent
//     by its own goroutine; when its queue is full they are dropped.
//   - No secret is sent on purpose: attributes whose key names a secret
//     (password, secret, dsn, credential, authorization, api/private/access
//     key, ...) are replaced by "[redacted]", the user:password part of URLs
//     in messages, errors and attributes is removed, the SDK's default PII
//     collection stays off, and the DSN is never put in an error message.
//   - The SDK never starts a child process (it would run git to guess a
//     release when none is set, which would race with internal/proc's
//     reaper): New always sets the release.
//
// What is not guaranteed: that an event arrives (Sentry may be unreachable,
// or Close's bound may pass first), or that a secret written into free text
// without a URL or a telling key name is recognised.
package errreport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/getsentry/sentry-go"
)

// Defaults of a Reporter's bounds.
const (
	// DefaultFlushTimeout bounds Close's wait for queued events by default.
	DefaultFlushTimeout = 2 * time.Second
	// DefaultSendTimeout bounds one request to Sentry by default.
	DefaultSendTimeout = 5 * time.Second
)

// ErrInvalidDSN reports a DSN the SDK cannot use. The DSN itself is never
// part of the error, since it holds a key.
var ErrInvalidDSN = errors.New("errreport: invalid SENTRY_DSN")

// Config configures a Reporter.
type Config struct {
	// DSN is the Sentry DSN (SENTRY_DSN). Empty means reporting is off: the
	// Reporter then does nothing.
	DSN string
	// Environment, Service and Member name where the errors come from; they
	// become the tags environment, service and member, and Environment is
	// also the event's Sentry environment.
	Environment string
	Service     string
	Member      string
	// Release is the event's release (default "ccctl@<module version>").
	Release string
	// FlushTimeout bounds Close's wait for the queued events
	// (DefaultFlushTimeout when 0).
	FlushTimeout time.Duration
	// SendTimeout bounds one request to Sentry (DefaultSendTimeout when
	// 0). Close takes at most FlushTimeout plus SendTimeout, the time for a
	// request in flight to end.
	SendTimeout time.Duration
}

// Reporter sends errors to Sentry. A Reporter made with an empty DSN, and a
// nil *Reporter, do nothing. Its methods are safe for concurrent use.
type Reporter struct {
	hub    *sentry.Hub
	flush  time.Duration
	closed atomic.Bool
	sends  *sendCounter
}

// sendCounter counts the requests to Sentry that did not deliver their
// event: the SDK drops such an event, and its Flush reports only that the
// queue is empty.
type sendCounter struct {
	next   http.RoundTripper
	failed atomic.Int64
}

func (c *sendCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode >= 300 {
		c.failed.Add(1)
	}
	return resp, err
}

// New returns a Reporter for cfg. It does not contact Sentry.
func New(cfg Config) (*Reporter, error) {
	if cfg.FlushTimeout < 0 || cfg.SendTimeout < 0 {
		return nil, fmt.Errorf("configure error reporting: negative timeout")
	}
	if cfg.FlushTimeout == 0 {
		cfg.FlushTimeout = DefaultFlushTimeout
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	r := &Reporter{flush: cfg.FlushTimeout}
	if cfg.DSN == "" {
		return r, nil
	}
	release := cfg.Release
	if release == "" {
		release = "ccctl@unknown"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			release = "ccctl@" + bi.Main.Version
		}
	}
	tags := map[string]string{}
	for k, v := range map[string]string{"environment": cfg.Environment, "service": cfg.Service, "member": cfg.Member} {
		if v != "" {
			tags[k] = v
		}
	}
	r.sends = &sendCounter{next: http.DefaultTransport}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:            cfg.DSN,
		Environment:    cfg.Environment,
		Release:        release,
		ServerName:     cfg.Member,
		Tags:           tags,
		SendDefaultPII: false,
		BeforeSend:     beforeSend,
		HTTPClient:     &http.Client{Timeout: cfg.SendTimeout, Transport: r.sends},
	})
	if err != nil {
		var pe *sentry.DsnParseError
		if errors.As(err, &pe) && !strings.HasPrefix(pe.Message, "invalid url") {
			return nil, fmt.Errorf("configure error reporting: %w: %s", ErrInvalidDSN, pe.Message)
		}
		return nil, fmt.Errorf("configure error reporting: %w", ErrInvalidDSN)
	}
	r.hub = sentry.NewHub(client, sentry.NewScope())
	return r, nil
}

// Enabled reports whether the Reporter sends anything.
func (r *Reporter) Enabled() bool { return r != nil && r.hub != nil }

// Report sends a failure that is not a log record, such as a hook or a job
// that failed. msg says what failed ("hook failed"); attrs add context, and
// the attributes hook, job, event and role also become tags.
func (r *Reporter) Report(err error, msg string, attrs ...slog.Attr) {
	if !r.Enabled() {
		return
	}
	r.capture(sentry.LevelError, msg, err, attrs)
}

// Close sends the events still queued, waiting at most the flush timeout,
// and releases the SDK's resources, waiting at most the send timeout more
// for a request in flight. It reports whether every event was delivered:
// the queue emptied within the flush timeout and no request failed.
// The Reporter does nothing after Close; a second Close returns true.
func (r *Reporter) Close() bool {
	if !r.Enabled() || r.closed.Swap(true) {
		return true
	}
	client := r.hub.Client()
	start := time.Now()
	// The SDK's Flush may still report success when its timeout and the
	// end of a slow request come together, so the bound is checked here.
	ok := client.Flush(r.flush) && time.Since(start) < r.flush
	client.Close()
	return ok && r.sends.failed.Load() == 0
}

// promoted are the attribute keys that also become tags.
var promoted = map[string]bool{"hook": true, "job": true, "event": true, "role": true}

func (r *Reporter) capture(level sentry.Level, msg string, err error, attrs []slog.Attr) {
	if r.closed.Load() {
		return
	}
	ev := sentry.NewEvent()
	ev.Level = level
	ev.Message = scrubText(msg)
	ev.Logger = "ccctl"
	ev.Tags = map[string]string{}
	extra := map[string]any{}
	for _, a := range attrs {
		addAttr(extra, "", a, &err)
		if v := a.Value.Resolve(); promoted[a.Key] && v.Kind() != slog.KindGroup {
			ev.Tags[a.Key] = scrubText(v.String())
		}
	}
	if err != nil {
		ev.Exception = []sentry.Exception{{Type: fmt.Sprintf("%T", err), Value: scrubText(err.Error())}}
		extra["error"] = scrubText(err.Error())
	}
	if len(extra) > 0 {
		ev.Contexts = map[string]sentry.Context{"ccctl": extra}
	}
	r.hub.CaptureEvent(ev)
}

// addAttr flattens a into extra, redacting secrets; the first error value
// seen is stored in *err when *err is nil.
func addAttr(extra map[string]any, prefix string, a slog.Attr, err *error) {
	v := a.Value.Resolve()
	key := a.Key
	if prefix != "" {
		key = prefix + "." + key
	}
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			addAttr(extra, key, g, err)
		}
		return
	}
	if key == "" {
		return
	}
	if secretKey.MatchString(a.Key) {
		extra[key] = "[redacted]"
		return
	}
	if e, ok := v.Any().(error); ok && v.Kind() == slog.KindAny {
		if *err == nil {
			*err = e
			return
		}
	}
	extra[key] = scrubText(v.String())
}

var (
	secretKey = regexp.MustCompile(`(?i)pass|secret|dsn|credential|authoriz|cookie|session_?key|(api|private|access|secret)_?key|(auth|bearer|access|refresh|api)_?token`)
	urlUser   = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@`)
)

// scrubText removes the user information (user:password) of URLs in s.
func scrubText(s string) string {
	return urlUser.ReplaceAllString(s, "${1}[redacted]@")
}

// beforeSend drops what the SDK could add that may hold a secret.
func beforeSend(ev *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	ev.Request = nil
	ev.User = sentry.User{}
	for i := range ev.Exception {
		ev.Exception[i].Value = scrubText(ev.Exception[i].Value)
	}
	return ev
}

// Handler returns a slog.Handler that passes every record to next and also
// reports the records at level error or above. Attributes added with
// WithAttrs and WithGroup are reported too.
func (r *Reporter) Handler(next slog.Handler) slog.Handler {
	if !r.Enabled() {
		return next
	}
	return &handler{r: r, next: next}
}

type handler struct {
	r      *Reporter
	next   slog.Handler
	attrs  []slog.Attr // with groups applied
	groups []string
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	var err error
	if h.next.Enabled(ctx, rec.Level) {
		err = h.next.Handle(ctx, rec)
	}
	if rec.Level >= slog.LevelError {
		attrs := append([]slog.Attr(nil), h.attrs...)
		var own []slog.Attr
		rec.Attrs(func(a slog.Attr) bool {
			own = append(own, a)
			return true
		})
		attrs = append(attrs, h.grouped(own)...)
		level := sentry.LevelError
		if rec.Level > slog.LevelError {
			level = sentry.LevelFatal
		}
		h.r.capture(level, rec.Message, nil, attrs)
	}
	return err
}

// grouped nests attrs in the handler's open groups.
func (h *handler) grouped(attrs []slog.Attr) []slog.Attr {
	for i := len(h.groups) - 1; i >= 0; i-- {
		attrs = []slog.Attr{{Key: h.groups[i], Value: slog.GroupValue(attrs...)}}
	}
	return attrs
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), h.grouped(attrs)...)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}
