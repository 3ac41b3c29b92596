// Package testutil holds the helpers that the tests of several ccctl
// packages share: bounded polls, a count of the zombies among the
// process's children for the reaping tests, and whether a process is alive.
//
// It is imported by tests only. Every wait it offers is bounded, so a
// condition that never holds fails the test instead of hanging it. What it
// does not do: wait for time to pass (a poll returns as soon as its
// condition holds), or count zombies anywhere but on Linux (/proc).
package testutil

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PollInterval is how long Poll waits between two calls of its condition.
const PollInterval = 5 * time.Millisecond

// Poll calls cond every PollInterval until it returns true or timeout has
// passed, and reports whether cond held. It serves the helper processes of
// TestMain, which have no *testing.T.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// Eventually fails t unless cond holds within timeout; what names the
// condition in the failure.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("waiting for %s: not within %v", what, timeout)
	}
}

// WaitFile fails t unless path exists within timeout.
func WaitFile(t testing.TB, path string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, path, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// Buffer is a bytes.Buffer safe for concurrent writes and reads: a log
// destination, or a child's output read while the child writes. Its zero
// value is empty and ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Zombies counts the zombies among this process's children, read from
// /proc; it returns 0 where /proc cannot be read.
func Zombies() int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 > len(s) {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) > 1 && f[0] == "Z" && f[1] == me {
			n++
		}
	}
	return n
}

// Alive reports whether process pid exists and is not a zombie (read from
// /proc where it can be).
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
