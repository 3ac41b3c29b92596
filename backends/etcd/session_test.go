package etcd

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// TestSessionEndOrder: a session's end runs onEnd (where the term ends)
// before Done closes, once, and from then on no goroutine is added and
// check fails.
func TestSessionEndOrder(t *testing.T) {
	s := newSession(Config{ID: "a", Clock: clock.Real()}, slog.New(slog.DiscardHandler))
	calls := 0
	s.onEnd = func(err error, why string) {
		calls++
		select {
		case <-s.done:
			t.Error("Done closed before onEnd ran")
		default:
		}
		if s.ctx.Err() != nil {
			t.Error("the session's context cancelled before onEnd ran")
		}
		if !errors.Is(err, coordinator.ErrLeaseDeadline) {
			t.Errorf("onEnd: got %v; want ErrLeaseDeadline", err)
		}
	}
	if !s.add() {
		t.Fatal("add on a live session: got false; want true")
	}
	s.wg.Done()
	s.lose(coordinator.ErrLeaseDeadline, "test")
	s.lose(coordinator.ErrSessionExpired, "again")
	select {
	case <-s.done:
	default:
		t.Fatal("Done not closed after lose")
	}
	if calls != 1 {
		t.Errorf("onEnd ran %d times; want 1", calls)
	}
	if err := s.Err(); !errors.Is(err, coordinator.ErrLeaseDeadline) {
		t.Errorf("Err: got %v; want the first end's ErrLeaseDeadline", err)
	}
	if s.add() {
		t.Error("add after the end: got true; want false (no term is granted then)")
	}
	if err := s.check("campaign"); !errors.Is(err, coordinator.ErrSessionClosed) {
		t.Errorf("check: got %v; want ErrSessionClosed", err)
	}
}

// TestSessionClosingIsAClose: a loss reported while the session closes
// ends it as closed, not lost, and nothing is added once closing began.
func TestSessionClosingIsAClose(t *testing.T) {
	s := newSession(Config{ID: "a", Clock: clock.Real()}, slog.New(slog.DiscardHandler))
	var got error
	s.onEnd = func(err error, why string) { got = err }
	if ended := s.beginClose(); ended {
		t.Fatal("beginClose on a live session: got ended; want not")
	}
	if s.add() {
		t.Error("add while closing: got true; want false")
	}
	s.lose(coordinator.ErrSessionExpired, "test")
	if !errors.Is(got, coordinator.ErrSessionClosed) || !errors.Is(s.Err(), coordinator.ErrSessionClosed) {
		t.Errorf("end while closing: onEnd got %v, Err %v; want ErrSessionClosed", got, s.Err())
	}
}
