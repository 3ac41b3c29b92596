// Package logfilter drops the lines of a service's output that match a
// regular expression (the original's SUPPRESS_LOG_REGEXP) and passes the
// rest on, without ever making the service wait for a slow destination.
//
// A Filter is an io.WriteCloser to be given to internal/sys/proc as a child's
// Stdout or Stderr (one Filter per stream). proc copies the child's pipe into
// Write; Write splits the bytes into lines, drops the matching ones, and
// queues the others for a goroutine that writes them to the destination.
//
// What is guaranteed:
//
//   - Write never blocks on the destination and never returns an error, so
//     the copy from the child's pipe never stops and the child's write(2)
//     never blocks for longer than it takes to match its lines.
//   - The queue is bounded (MaxBuffer bytes). When the destination is slower
//     than the service for so long that the queue is full, whole lines (or
//     whole pieces of long lines) are dropped and counted in Stats; nothing
//     is ever reordered, and a line is never cut except at MaxLine.
//   - A line is matched without its line terminator ("\n" or "\r\n"). The
//     bytes passed on are exactly the input's bytes minus the suppressed and
//     dropped lines: no newline is added or removed.
//   - A line longer than MaxLine is passed on in pieces of MaxLine bytes as
//     they arrive. The regular expression sees only the first piece, and the
//     whole line shares that piece's fate.
//   - Close flushes a partial last line and waits, at most DrainTimeout, for
//     the queue to reach the destination.
//
// What is not guaranteed: that every line that is not suppressed arrives
// (lines are dropped, and counted, when the queue is full, or when the
// destination is still blocked at the end of Close's bound); and that a
// write to a destination stuck forever returns (the writing goroutine is
// then left blocked in it when Close gives up).
package logfilter

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"
)

// Defaults of the Filter's bounds.
const (
	// DefaultMaxBuffer is the default bound of the queue, in bytes.
	DefaultMaxBuffer = 1 << 20
	// DefaultMaxLine is the default length at which a line is cut.
	DefaultMaxLine = 64 << 10
	// DefaultDrainTimeout is how long Close waits by default for the queue
	// to reach the destination.
	DefaultDrainTimeout = 2 * time.Second
)

// Options tune a Filter. The zero value means every default.
type Options struct {
	// MaxBuffer bounds the bytes queued for the destination
	// (DefaultMaxBuffer when 0).
	MaxBuffer int
	// MaxLine is the length at which a line without a newline is cut and
	// passed on in pieces (DefaultMaxLine when 0). It must not exceed
	// MaxBuffer.
	MaxLine int
	// DrainTimeout bounds how long Close waits for the queue to be written
	// (DefaultDrainTimeout when 0).
	DrainTimeout time.Duration
	// Logger receives one warning at Close when lines were dropped (none
	// when nil).
	Logger *slog.Logger
	// Name names the stream in that warning, e.g. "stdout".
	Name string
}

// Stats counts what a Filter did.
type Stats struct {
	// Lines is the number of lines seen, suppressed or not.
	Lines int64
	// Suppressed is the number of lines that matched the expression.
	Suppressed int64
	// Dropped is the number of lines, or pieces of long lines, dropped
	// because the queue was full, the destination failed, or they were
	// written after Close.
	Dropped int64
	// DroppedBytes is the number of bytes in the dropped lines.
	DroppedBytes int64
}

// Filter is an io.WriteCloser that drops matching lines and passes the rest
// to a destination without blocking. It is safe for concurrent use, but
// lines from concurrent writers are only kept whole when each Write carries
// whole lines. Make it with New.
type Filter struct {
	dst  io.Writer
	re   *regexp.Regexp
	opts Options

	mu       sync.Mutex
	partial  []byte // the start of the current line, not yet queued
	inLine   bool   // the current line already had pieces decided on
	dropLine bool   // fate of the current line's later pieces
	queue    [][]byte
	queued   int
	closed   bool
	stats    Stats
	wake     chan struct{}
	finished chan struct{} // closed when the writer goroutine has returned
}

// New returns a Filter that writes to dst the lines that do not match re.
// A nil re passes every line. The Filter starts a goroutine that Close
// ends; call Close once the stream is done.
func New(dst io.Writer, re *regexp.Regexp, opts Options) (*Filter, error) {
	if dst == nil {
		return nil, fmt.Errorf("new log filter: nil destination")
	}
	if opts.MaxBuffer < 0 || opts.MaxLine < 0 || opts.DrainTimeout < 0 {
		return nil, fmt.Errorf("new log filter: negative bound")
	}
	if opts.MaxBuffer == 0 {
		opts.MaxBuffer = DefaultMaxBuffer
	}
	if opts.MaxLine == 0 {
		opts.MaxLine = min(DefaultMaxLine, opts.MaxBuffer)
	}
	if opts.MaxLine > opts.MaxBuffer {
		return nil, fmt.Errorf("new log filter: max line %d exceeds max buffer %d", opts.MaxLine, opts.MaxBuffer)
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	f := &Filter{
		dst:      dst,
		re:       re,
		opts:     opts,
		wake:     make(chan struct{}, 1),
		finished: make(chan struct{}),
	}
	go f.pump()
	return f, nil
}

// Compile compiles a SUPPRESS_LOG_REGEXP value. An empty expression returns
// nil (suppress nothing).
func Compile(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("compile SUPPRESS_LOG_REGEXP: %w", err)
	}
	return re, nil
}

// Write takes p's lines. It never blocks on the destination and always
// returns len(p), nil; after Close the bytes are dropped and counted.
func (f *Filter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.stats.Dropped++
		f.stats.DroppedBytes += int64(len(p))
		return len(p), nil
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.partial = append(f.partial, p...)
			p = nil
			for len(f.partial) >= f.opts.MaxLine {
				piece := f.partial[:f.opts.MaxLine]
				f.piece(piece)
				f.partial = append([]byte(nil), f.partial[f.opts.MaxLine:]...)
			}
			break
		}
		var line []byte
		if len(f.partial) > 0 {
			line = append(f.partial, p[:i+1]...)
			f.partial = nil
		} else {
			line = p[:i+1]
		}
		p = p[i+1:]
		// A line completed by this write may itself exceed MaxLine:
		// cut it as if it had arrived in pieces.
		for len(line) > f.opts.MaxLine {
			f.piece(line[:f.opts.MaxLine])
			line = line[f.opts.MaxLine:]
		}
		f.end(line)
	}
	f.signal()
	return n, nil
}

// piece decides on a piece of a line that goes on; the caller holds mu.
func (f *Filter) piece(b []byte) {
	if !f.inLine {
		f.inLine = true
		f.stats.Lines++
		f.dropLine = f.matches(b)
		if f.dropLine {
			f.stats.Suppressed++
		}
	}
	if !f.dropLine {
		f.enqueue(b)
	}
}

// end decides on the last piece of a line (ending with "\n", or the partial
// last line at Close); the caller holds mu.
func (f *Filter) end(b []byte) {
	f.piece(b)
	f.inLine = false
	f.dropLine = false
}

func (f *Filter) matches(line []byte) bool {
	if f.re == nil {
		return false
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return f.re.Match(line)
}

// enqueue queues a copy of b, or drops it when the queue is full; the
// caller holds mu.
func (f *Filter) enqueue(b []byte) {
	if len(b) == 0 {
		return
	}
	if f.queued+len(b) > f.opts.MaxBuffer {
		f.stats.Dropped++
		f.stats.DroppedBytes += int64(len(b))
		return
	}
	f.queue = append(f.queue, bytes.Clone(b))
	f.queued += len(b)
}

func (f *Filter) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// pump writes the queue to the destination, oldest first, until Close and
// the queue is empty.
func (f *Filter) pump() {
	defer close(f.finished)
	for {
		f.mu.Lock()
		if len(f.queue) == 0 {
			closed := f.closed
			f.mu.Unlock()
			if closed {
				return
			}
			<-f.wake
			continue
		}
		b := f.queue[0]
		f.queue[0] = nil
		f.queue = f.queue[1:]
		f.mu.Unlock()

		_, err := f.dst.Write(b)

		f.mu.Lock()
		f.queued -= len(b)
		if err != nil {
			f.stats.Dropped++
			f.stats.DroppedBytes += int64(len(b))
		}
		f.mu.Unlock()
	}
}

// Stats returns what the Filter did so far.
func (f *Filter) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Close passes on the partial last line, if any and not suppressed, and
// waits at most DrainTimeout for the queue to reach the destination. Lines
// still queued then are counted as dropped. Close is idempotent and always
// returns nil.
func (f *Filter) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	if len(f.partial) > 0 || f.inLine {
		f.end(f.partial)
		f.partial = nil
	}
	f.closed = true
	f.signal()
	f.mu.Unlock()

	t := time.NewTimer(f.opts.DrainTimeout)
	defer t.Stop()
	select {
	case <-f.finished:
	case <-t.C:
		f.mu.Lock()
		for _, b := range f.queue {
			f.stats.Dropped++
			f.stats.DroppedBytes += int64(len(b))
			f.queued -= len(b)
		}
		f.queue = nil
		f.mu.Unlock()
	}
	st := f.Stats()
	if st.Dropped > 0 && f.opts.Logger != nil {
		f.opts.Logger.Warn("service output dropped: destination too slow or failing",
			"stream", f.opts.Name, "lines", st.Dropped, "bytes", st.DroppedBytes)
	}
	return nil
}
