package logfilter_test

import (
	"bytes"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/cli/logfilter"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// recorder is a destination that keeps every write, safe for concurrent use.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes []int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, len(p))
	return r.buf.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func (r *recorder) maxWrite() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := 0
	for _, n := range r.writes {
		m = max(m, n)
	}
	return m
}

func newFilter(t *testing.T, dst *recorder, expr string, opts logfilter.Options) *logfilter.Filter {
	t.Helper()
	re, err := logfilter.Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := logfilter.New(dst, re, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFilterLines(t *testing.T) {
	tests := []struct {
		name   string
		expr   string
		chunks []string
		want   string
	}{
		{"no expression passes all", "", []string{"a\nb\n"}, "a\nb\n"},
		{"drops matching", "^health", []string{"GET /\nhealth ok\nGET /x\n"}, "GET /\nGET /x\n"},
		{"line split across writes", "^health", []string{"hea", "lth ok\nkeep", " me\n"}, "keep me\n"},
		{"crlf matched without terminator", "ok$", []string{"health ok\r\nother\r\n"}, "other\r\n"},
		{"partial last line flushed", "^drop", []string{"keep\nlast"}, "keep\nlast"},
		{"partial last line suppressed", "^drop", []string{"keep\ndrop this"}, "keep\n"},
		{"empty lines kept", "^x", []string{"\n\nx\n\n"}, "\n\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := &recorder{}
			f := newFilter(t, dst, tt.expr, logfilter.Options{})
			for _, c := range tt.chunks {
				n, err := f.Write([]byte(c))
				if n != len(c) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", c, n, err, len(c))
				}
			}
			f.Close()
			if got := dst.String(); got != tt.want {
				t.Errorf("output = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestLongLinesPassInPieces(t *testing.T) {
	dst := &recorder{}
	f := newFilter(t, dst, "^secret", logfilter.Options{MaxLine: 8, MaxBuffer: 64})
	long := strings.Repeat("abcdefghij", 3) + "\n"
	f.Write([]byte(long[:5]))
	f.Write([]byte(long[5:]))
	// A long suppressed line is dropped whole, although its later pieces
	// do not match on their own.
	f.Write([]byte("secret" + strings.Repeat("z", 20) + "\nshort\n"))
	f.Close()
	if got, want := dst.String(), long+"short\n"; got != want {
		t.Errorf("output = %q; want %q", got, want)
	}
	if got := dst.maxWrite(); got > 8 {
		t.Errorf("largest write = %d bytes; want at most 8 (MaxLine)", got)
	}
	st := f.Stats()
	if st.Lines != 2+1 || st.Suppressed != 1 || st.Dropped != 0 {
		t.Errorf("stats = %+v; want 3 lines, 1 suppressed, 0 dropped", st)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts logfilter.Options
	}{
		{"negative buffer", logfilter.Options{MaxBuffer: -1}},
		{"negative line", logfilter.Options{MaxLine: -1}},
		{"negative drain", logfilter.Options{DrainTimeout: -1}},
		{"line above buffer", logfilter.Options{MaxLine: 10, MaxBuffer: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := logfilter.New(&recorder{}, nil, tt.opts); err == nil {
				f.Close()
				t.Errorf("New(%+v) = nil error; want an error", tt.opts)
			}
		})
	}
	if _, err := logfilter.Compile("("); err == nil || !strings.Contains(err.Error(), "SUPPRESS_LOG_REGEXP") {
		t.Errorf("Compile(%q) error = %v; want one naming SUPPRESS_LOG_REGEXP", "(", err)
	}
}

func TestWriteAfterCloseIsDroppedNotFailed(t *testing.T) {
	dst := &recorder{}
	f := newFilter(t, dst, "", logfilter.Options{})
	f.Close()
	if n, err := f.Write([]byte("late\n")); n != 5 || err != nil {
		t.Errorf("Write after Close = %d, %v; want 5, nil", n, err)
	}
	if got := f.Stats().Dropped; got != 1 {
		t.Errorf("dropped = %d; want 1", got)
	}
	if got := dst.String(); got != "" {
		t.Errorf("output = %q; want nothing", got)
	}
}

// TestRealProcessStdoutAndStderr filters both streams of a real child that
// writes fast.
func TestRealProcessStdoutAndStderr(t *testing.T) {
	const n = 5000
	script := `i=0; while [ $i -lt 5000 ]; do
		echo "GET /health $i"; echo "request $i"; echo "GET /health $i" >&2; echo "error $i" >&2
		i=$((i+1)); done; printf 'no newline'`
	out, errOut := &recorder{}, &recorder{}
	fo := newFilter(t, out, `/health`, logfilter.Options{})
	fe := newFilter(t, errOut, `/health`, logfilter.Options{})
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = fo, fe
	p, err := proc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		p.Stop(time.Second)
		t.Fatal("child did not exit within 30s")
	}
	if st := p.Wait(); !st.Success() {
		t.Fatalf("child: %v; want success", st)
	}
	fo.Close()
	fe.Close()

	var wantOut, wantErr strings.Builder
	for i := range n {
		wantOut.WriteString("request " + strconv.Itoa(i) + "\n")
		wantErr.WriteString("error " + strconv.Itoa(i) + "\n")
	}
	wantOut.WriteString("no newline")
	if got := out.String(); got != wantOut.String() {
		t.Errorf("stdout: got %d bytes; want %d bytes (the request lines and the partial last line)", len(got), wantOut.Len())
	}
	if got := errOut.String(); got != wantErr.String() {
		t.Errorf("stderr: got %d bytes; want %d bytes (the error lines)", len(got), wantErr.Len())
	}
	if st := fo.Stats(); st.Suppressed != n || st.Dropped != 0 {
		t.Errorf("stdout stats = %+v; want %d suppressed, 0 dropped", st, n)
	}
}

// blocked is a destination that blocks every write until released.
type blocked struct {
	release chan struct{}
	rec     recorder
}

func (b *blocked) Write(p []byte) (int, error) {
	<-b.release
	return b.rec.Write(p)
}

// TestSlowDestinationNeverBlocksService: a child writing megabytes to a
// destination that does not accept a single write still runs to its end;
// what did not fit in the queue is dropped and counted, in whole lines.
func TestSlowDestinationNeverBlocksService(t *testing.T) {
	dst := &blocked{release: make(chan struct{})}
	re := regexp.MustCompile("^never")
	f, err := logfilter.New(dst, re, logfilter.Options{MaxBuffer: 64 << 10, MaxLine: 1 << 10, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "yes 'a line of service output' | head -n 400000")
	cmd.Stdout = f
	p, err := proc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		p.Stop(time.Second)
		close(dst.release)
		f.Close()
		t.Fatal("child blocked: did not exit within 30s while the destination was stuck")
	}
	if st := p.Wait(); !st.Success() {
		t.Fatalf("child: %v; want success", st)
	}
	close(dst.release)
	f.Close()

	st := f.Stats()
	if st.Lines != 400000 {
		t.Errorf("lines seen = %d; want 400000", st.Lines)
	}
	if st.Dropped == 0 {
		t.Errorf("dropped = 0; want lines dropped while the destination was stuck")
	}
	got := dst.rec.String()
	const line = "a line of service output\n"
	if len(got)%len(line) != 0 || strings.ReplaceAll(got, line, "") != "" {
		t.Errorf("output is not whole lines: %d bytes", len(got))
	}
	if kept := int64(len(got) / len(line)); kept+st.Dropped != 400000 {
		t.Errorf("kept %d + dropped %d = %d; want 400000", kept, st.Dropped, kept+st.Dropped)
	}
}
