package memory

import (
	"context"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

func history(t *testing.T, c *Coordinator) []coordinator.Term {
	t.Helper()
	h, err := c.History(context.Background(), 0)
	if err != nil {
		t.Fatalf("History(): %v", err)
	}
	return h
}

// TestHistoryTrimmed: the history keeps the last HistorySize terms of the
// member whose term begins.
func TestHistoryTrimmed(t *testing.T) {
	e := newEnv(t)
	e.cfg.HistorySize = 3
	a := e.member("a")
	var tokens []int64
	for i := 0; i < 5; i++ {
		l := mustLead(t, a)
		tokens = append(tokens, l.Token())
		if err := l.Resign(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	h := history(t, a)
	if len(h) != 3 {
		t.Fatalf("history of 5 terms with size 3: got %s; want 3 terms", describe(h))
	}
	for i, term := range h {
		if want := tokens[2+i]; term.Token != want || term.EndReason != coordinator.EndResigned {
			t.Errorf("term %d: got token %d ended for %q; want %d resigned", i, term.Token, term.EndReason, want)
		}
	}
}

// TestHistoryFenced: a cut-off master that fenced itself ends its term as
// fenced, not as a crash.
func TestHistoryFenced(t *testing.T) {
	e := newEnv(t)
	a, b := e.member("a"), e.member("b")
	la := mustLead(t, a)
	chB := campaignAsync(t, b)
	waitingFor(t, e.store, b)
	a.partition(true)
	e.advanceTo(epoch.Add(e.cfg.TTL - e.cfg.Margin))
	waitClosed(t, la.Done(), "Done of the cut-off leader")
	e.advanceTo(epoch.Add(e.cfg.TTL))
	select {
	case r := <-chB:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("b did not take over")
	}
	h := history(t, b)
	if len(h) != 2 || h[0].EndReason != coordinator.EndFenced || h[1].Reason != coordinator.BeganFailover {
		t.Errorf("history: got %s; want a fenced, then b by failover", describe(h))
	}
}

func describe(h []coordinator.Term) string {
	s := ""
	for _, t := range h {
		s += "[" + t.Member + " " + t.Reason + "-" + t.EndReason + "]"
	}
	return s
}
