package lifecycle

import (
	"os"
	"slices"
	"syscall"
	"testing"
)

// TestSignalSets pins the signals the controller forwards, drops and
// catches: the README lists the same.
func TestSignalSets(t *testing.T) {
	wantForwarded := []syscall.Signal{
		syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM,
		syscall.SIGSTKFLT, syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGVTALRM, syscall.SIGWINCH,
		syscall.SIGIO, syscall.SIGPWR,
	}
	wantOwn := []syscall.Signal{syscall.SIGPIPE, syscall.SIGXFSZ, syscall.SIGXCPU}
	var gotForwarded, gotOwn []syscall.Signal
	for s := syscall.Signal(0); s <= 64; s++ {
		if forwarded(s) {
			gotForwarded = append(gotForwarded, s)
		}
		if ownSignal(s) {
			gotOwn = append(gotOwn, s)
		}
	}
	slices.Sort(wantForwarded)
	slices.Sort(wantOwn)
	if !slices.Equal(gotForwarded, wantForwarded) {
		t.Errorf("forwarded: got %v; want %v", gotForwarded, wantForwarded)
	}
	if !slices.Equal(gotOwn, wantOwn) {
		t.Errorf("own signals: got %v; want %v", gotOwn, wantOwn)
	}
	var wantCaught []os.Signal
	for _, s := range append(append([]syscall.Signal{syscall.SIGTERM, syscall.SIGINT}, wantOwn...), wantForwarded...) {
		wantCaught = append(wantCaught, s)
	}
	got := caught()
	for _, s := range wantCaught {
		if !slices.Contains(got, s) {
			t.Errorf("caught: %v missing from %v", s, got)
		}
	}
	if len(got) != len(wantCaught) {
		t.Errorf("caught: got %d signals %v; want %d", len(got), got, len(wantCaught))
	}
}
