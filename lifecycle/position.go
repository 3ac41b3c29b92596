package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// The position runner. Invariants, and where they are kept:
//
//   - One run of the position source at a time, each bounded by
//     PositionTimeout (runPositions); a command whose time is up has its
//     whole process group killed (shellPosition, through proc.Run).
//   - The record is registered again only when the position or its
//     known-ness changed, or when the last such registration failed
//     (positionChanged), so an idle member writes nothing.
//   - Registrations are serialized with the controller actor's and always
//     carry the latest record and the latest position (register), so
//     neither overwrites the other's newer fact.
//   - A failing source is logged once per change of its state (ok, or the
//     kind of failure), not once per run.

// Defaults of the position runner.
const (
	DefaultPositionInterval = time.Second
	// maxPositionOutput is how much of a position command's output is read:
	// a position is one short line.
	maxPositionOutput = 4096
)

// PositionSource tells this member's replication position: a number that
// grows as the member's data catches up (a log sequence number, a
// transaction id), comparable across the members of a cluster.
type PositionSource interface {
	// Position returns the position, a non-negative integer. It must
	// return when ctx is done.
	Position(ctx context.Context) (int64, error)
}

// PositionFunc is a PositionSource written in Go.
type PositionFunc func(ctx context.Context) (int64, error)

// Position calls f.
func (f PositionFunc) Position(ctx context.Context) (int64, error) { return f(ctx) }

// ShellPosition returns a PositionSource that runs script with /bin/sh -c,
// in its own process group, with the controller's environment, and reads
// one non-negative decimal integer from its standard output (surrounding
// white space ignored). A non-zero exit, any other output, or more than
// 4 KiB of it, is a failure. When ctx is done first, the whole group is
// killed (SIGTERM, then SIGKILL at once).
func ShellPosition(script string) PositionSource { return shellPosition{script: script} }

type shellPosition struct{ script string }

// positionError is a failure of a position source, with its kind: the
// runner logs a failure again only when the kind changes.
type positionError struct {
	kind string // "timeout", "start", "exit", "output"
	err  error
}

func (e *positionError) Error() string { return e.err.Error() }
func (e *positionError) Unwrap() error { return e.err }

func (s shellPosition) Position(ctx context.Context) (int64, error) {
	cmd := exec.Command("/bin/sh", "-c", s.script)
	cmd.Env = os.Environ()
	var out, errOut limitedBuffer
	out.limit, errOut.limit = maxPositionOutput, 512
	cmd.Stdout, cmd.Stderr = &out, &errOut
	st, err := proc.Run(ctx, cmd, 0)
	switch {
	case err != nil:
		return 0, &positionError{"start", fmt.Errorf("position command: %w", err)}
	case ctx.Err() != nil:
		return 0, &positionError{"timeout", fmt.Errorf("position command: %w (%s)", context.Cause(ctx), st)}
	case !st.Success():
		msg := firstLine(errOut.String())
		if msg != "" {
			msg = ": " + strconv.Quote(msg)
		}
		return 0, &positionError{"exit", fmt.Errorf("position command: %s%s", st, msg)}
	case out.over:
		return 0, &positionError{"output", fmt.Errorf("position command: printed more than %d bytes; want one non-negative integer", maxPositionOutput)}
	}
	return parsePosition(out.String())
}

// parsePosition reads a position as a position command prints it: one
// non-negative decimal integer, surrounding white space ignored.
func parsePosition(s string) (int64, error) {
	t := strings.TrimSpace(s)
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || t == "" || t[0] < '0' || t[0] > '9' {
		if len(t) > 64 {
			t = t[:64] + "..."
		}
		return 0, &positionError{"output", fmt.Errorf("position command printed %q; want one non-negative integer", t)}
	}
	return n, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// limitedBuffer keeps the first limit bytes written to it, and whether
// more came.
type limitedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); len(p) > room {
		b.over = true
		b.buf.Write(p[:max(room, 0)])
	} else {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ErrPositionTimeout is the cause of a position source's context when
// PositionTimeout passed.
var ErrPositionTimeout = errors.New("lifecycle: position command timed out")

// position is the member's latest position as the runner read it.
type position struct {
	value *int64    // nil: unknown
	at    time.Time // when value was first read; zero when unknown
}

// currentPosition returns the latest position.
func (l *loop) currentPosition() position {
	l.posMu.Lock()
	defer l.posMu.Unlock()
	return l.pos
}

// startPositions starts the position runner, when there is a source.
func (l *loop) startPositions() {
	c := l.c
	if c.cfg.PositionSource == nil || l.posCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(l.bctx)
	done := make(chan struct{})
	l.posCancel, l.posDone = cancel, done
	go func() {
		defer close(done)
		l.runPositions(ctx)
	}()
}

// stopPositions stops the position runner and waits for it: the record
// keeps the last position read (a service that stops makes the source
// fail, which must not erase the position a stopping master leaves).
func (l *loop) stopPositions() {
	if l.posCancel == nil {
		return
	}
	l.posCancel()
	<-l.posDone
}

// kickPositions makes the runner read the position again at once (or as
// soon as the run under way ends): the leadership is vacant, and the
// members rank one another by it.
func (l *loop) kickPositions() {
	select {
	case l.posKick <- struct{}{}:
	default:
	}
}

// runPositions reads the position every PositionInterval (start to start)
// and when kicked, until ctx is done, and publishes each change.
func (l *loop) runPositions(ctx context.Context) {
	c := l.c
	state := "" // "ok" or the kind of the last failure; "" before the first run
	dirty := false
	for {
		start := c.cfg.Clock.Now()
		rctx, cancel := clockTimeoutCause(ctx, c.cfg.Clock, c.cfg.PositionTimeout, ErrPositionTimeout)
		v, err := c.cfg.PositionSource.Position(rctx)
		timedOut := errors.Is(context.Cause(rctx), ErrPositionTimeout)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil && v < 0 {
			err = &positionError{"output", fmt.Errorf("position %d: want a non-negative integer", v)}
		}
		if err != nil && timedOut {
			err = &positionError{"timeout", fmt.Errorf("position: no answer within %s (position_timeout); stopped", c.cfg.PositionTimeout)}
		}
		next := "ok"
		if err != nil {
			next = "failed"
			var pe *positionError
			if errors.As(err, &pe) {
				next = pe.kind
			}
		}
		if next != state {
			switch {
			case err != nil:
				c.log.Warn("position unknown", "err", err)
			case state != "":
				c.log.Info("position known again", "position", v)
			}
			state = next
		}
		var p *int64
		if err == nil {
			p = &v
		}
		if l.positionChanged(p, start, dirty) {
			dirty = !l.publishPosition(ctx)
		}
		wait := c.cfg.PositionInterval - c.cfg.Clock.Since(start)
		t := c.cfg.Clock.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.posKick:
			t.Stop()
		case <-t.C():
		}
	}
}

// positionChanged records p, read at at, as the latest position, and
// reports whether the record must be registered again: the value or its
// known-ness changed, or force.
func (l *loop) positionChanged(p *int64, at time.Time, force bool) bool {
	l.posMu.Lock()
	defer l.posMu.Unlock()
	old := l.pos.value
	same := (old == nil) == (p == nil) && (p == nil || *old == *p)
	if same {
		return force
	}
	if p == nil {
		l.pos = position{}
	} else {
		l.pos = position{value: p, at: at}
	}
	return true
}

// register registers, with the latest position, rec (nil: the record the
// controller actor last gave, if it gave one), one registration at a time,
// so that the last one always carries the latest of both.
func (l *loop) register(ctx context.Context, coord registrar, rec *coordinator.Member) error {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	if rec != nil {
		l.published, l.registered = *rec, true
	} else if !l.registered {
		return nil // the first registration will carry the position
	}
	m := l.published
	p := l.currentPosition()
	m.Position, m.PositionAt = p.value, p.at
	return coord.Register(ctx, m)
}

// registrar is what register registers through.
type registrar interface {
	Register(ctx context.Context, m coordinator.Member) error
}

// publishPosition registers the record with the latest position, and
// reports whether it did or need not (the session has ended: the new one
// registers the latest record anyway).
func (l *loop) publishPosition(ctx context.Context) bool {
	coord := l.c.Coordinator()
	if coord.Err() != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := l.register(ctx, coord, nil); err != nil {
		if coord.Err() == nil && ctx.Err() == nil {
			l.c.log.Warn("publish position", "err", err)
		}
		return false
	}
	return true
}
