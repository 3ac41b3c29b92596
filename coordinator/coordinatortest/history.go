package coordinatortest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ccctl/ccctl/coordinator"
)

// historian returns m as a coordinator.Historian, or skips the test.
func historian(t *testing.T, m coordinator.Coordinator) coordinator.Historian {
	t.Helper()
	h, ok := m.(coordinator.Historian)
	if !ok {
		t.Skip("backend is not a coordinator.Historian")
	}
	return h
}

// wantTerm is one expected term of a history.
type wantTerm struct {
	token            int64
	member           string
	reason, endedFor string
}

func (w wantTerm) String() string {
	return fmt.Sprintf("%d:%s:%s-%s", w.token, w.member, w.reason, w.endedFor)
}

func describeTerms(ts []coordinator.Term) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "[%d:%s:%s-%s]", t.Token, t.Member, t.Reason, t.EndReason)
	}
	return b.String()
}

// wantHistory waits until h's history is exactly want (a backend may
// record a term's beginning a moment after the term began), and checks
// what every term must hold: a valid record, Began.Revision the token,
// an end after the beginning exactly when an end reason is given.
func wantHistory(t *testing.T, h coordinator.Historian, want ...wantTerm) []coordinator.Term {
	t.Helper()
	var got []coordinator.Term
	eventually(t, "history "+fmt.Sprint(want), func() (bool, string) {
		var err error
		got, err = h.History(testContext(t), 0)
		if err != nil {
			return false, err.Error()
		}
		if len(got) != len(want) {
			return false, describeTerms(got)
		}
		for i, w := range want {
			g := got[i]
			if g.Token != w.token || g.Member != w.member || g.Reason != w.reason || g.EndReason != w.endedFor {
				return false, describeTerms(got)
			}
		}
		return true, ""
	})
	for _, g := range got {
		if err := g.Validate(); err != nil {
			t.Errorf("term %d: %v", g.Token, err)
		}
		if g.Began.Revision != g.Token || g.Began.Time.IsZero() {
			t.Errorf("term %d began %+v; want the token as revision and a time", g.Token, g.Began)
		}
		switch {
		case g.EndReason == "" && g.Ended != nil:
			t.Errorf("term %d: ended %+v with no end reason", g.Token, *g.Ended)
		case g.EndReason != "" && (g.Ended == nil || g.Ended.Revision < g.Token || g.Ended.Time.Before(g.Began.Time)):
			t.Errorf("term %d: ended %v for %q; want a revision >= the token and a time after the beginning", g.Token, g.Ended, g.EndReason)
		}
	}
	return got
}

// historyReasons walks a cluster through every way a term begins and
// ends, and checks the history after each step.
func (s suite) historyReasons(t *testing.T) {
	c := s.cluster(t)
	a, b, d := c.member("a"), c.member("b"), c.member("d")
	h := historian(t, a)
	if got, err := h.History(testContext(t), 0); err != nil || len(got) != 0 {
		t.Fatalf("History() of a new cluster = %s, %v; want none, nil", describeTerms(got), err)
	}

	la := lead(t, a) // the first term: an election
	terms := []wantTerm{{la.Token(), "a", coordinator.BeganElection, ""}}
	wantHistory(t, h, terms...)

	// a resigns while b waits: a handover.
	chB, ctxB, _ := campaignWatched(t, testContext(t), b)
	waiting(t, ctxB, "b")
	if err := la.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	terms[0].endedFor = coordinator.EndResigned
	terms = append(terms, wantTerm{lb.Token(), "b", coordinator.BeganHandover, ""})
	wantHistory(t, h, terms...)

	// A switchover to d: b hands over to the named member.
	chD := campaign(t, testContext(t), d)
	if _, err := a.Switchover(testContext(t), "d"); err != nil {
		t.Fatal(err)
	}
	if err := lb.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	ld := waitWon(t, chD, "d", waitTimeout)
	terms[1].endedFor = coordinator.EndSwitchover
	terms = append(terms, wantTerm{ld.Token(), "d", coordinator.BeganSwitchover, ""})
	wantHistory(t, h, terms...)

	// d crashes while a waits: its lease expires, a fails over.
	chA := campaign(t, testContext(t), a)
	c.h.Expire(t, d)
	la2 := waitWon(t, chA, "a", waitTimeout)
	terms[2].endedFor = coordinator.EndLeaseExpired
	terms = append(terms, wantTerm{la2.Token(), "a", coordinator.BeganFailover, ""})
	wantHistory(t, h, terms...)

	// a resigns while the cluster is paused: nobody takes over until the
	// resume, and the next term is an election.
	if err := b.Pause(testContext(t)); err != nil {
		t.Fatal(err)
	}
	chB = campaign(t, testContext(t), b)
	if err := la2.Resign(testContext(t)); err != nil {
		t.Fatal(err)
	}
	terms[3].endedFor = coordinator.EndPaused
	wantHistory(t, h, terms...)
	notReturned(t, chB, "while paused")
	if err := b.Resume(testContext(t)); err != nil {
		t.Fatal(err)
	}
	lb2 := waitWon(t, chB, "b", waitTimeout)
	terms = append(terms, wantTerm{lb2.Token(), "b", coordinator.BeganElection, ""})
	got := wantHistory(t, h, terms...)
	for i := 1; i < len(got); i++ {
		if got[i].Began.Revision < got[i-1].Ended.Revision {
			t.Errorf("term %d began at revision %d, before term %d ended (%d)", got[i].Token, got[i].Began.Revision, got[i-1].Token, got[i-1].Ended.Revision)
		}
	}

	// Every member reads the same history; a limit keeps the newest.
	last, err := historian(t, b).History(testContext(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 2 || last[0].Token != terms[3].token || last[1].Token != terms[4].token {
		t.Errorf("History(2) = %s; want the terms %d and %d", describeTerms(last), terms[3].token, terms[4].token)
	}
}

// historyCloseResigns checks that Close of a leader records its end as a
// resignation, so that the next term is not taken for a failover.
func (s suite) historyCloseResigns(t *testing.T) {
	c := s.cluster(t)
	a, b := c.member("a"), c.member("b")
	h := historian(t, b)
	la := lead(t, a)
	wantHistory(t, h, wantTerm{la.Token(), "a", coordinator.BeganElection, ""})
	chB := campaign(t, testContext(t), b)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lb := waitWon(t, chB, "b", waitTimeout)
	wantHistory(t, h,
		wantTerm{la.Token(), "a", coordinator.BeganElection, coordinator.EndResigned},
		wantTerm{lb.Token(), "b", coordinator.BeganHandover, ""})
}
