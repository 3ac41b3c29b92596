package clock_test

import (
	"testing"
	"time"

	"github.com/ccctl/ccctl/clock"
)

func TestFakeFiresInOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := clock.NewFake(start)
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	fired := make(chan string, 2)
	f.AfterFunc(3*time.Second, func() { fired <- "func" })

	f.Advance(1500 * time.Millisecond)
	select {
	case got := <-b.C():
		if want := start.Add(time.Second); !got.Equal(want) {
			t.Errorf("b fired at %v; want %v", got, want)
		}
	default:
		t.Fatal("b did not fire after 1.5s")
	}
	select {
	case <-a.C():
		t.Fatal("a fired early")
	default:
	}
	if a.Stop() != true {
		t.Error("Stop of a pending timer: got false; want true")
	}
	f.Advance(2 * time.Second)
	select {
	case <-a.C():
		t.Fatal("stopped timer fired")
	default:
	}
	select {
	case got := <-fired:
		if got != "func" {
			t.Fatalf("got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not run")
	}
	if got, want := f.Now(), start.Add(3500*time.Millisecond); !got.Equal(want) {
		t.Errorf("Now() = %v; want %v", got, want)
	}
}

func TestFakeResetZeroFiresAtOnce(t *testing.T) {
	f := clock.NewFake(time.Unix(0, 0))
	tm := f.NewTimer(0)
	select {
	case <-tm.C():
	default:
		t.Fatal("a timer of 0 did not fire at once")
	}
	if f.Timers() != 0 {
		t.Errorf("Timers() = %d; want 0", f.Timers())
	}
}
