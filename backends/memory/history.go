package memory

import (
	"context"
	"errors"
	"fmt"

	"github.com/ccctl/ccctl/coordinator"
)

var _ coordinator.Historian = (*Coordinator)(nil)

// History returns the cluster's recorded terms, oldest first: the last
// limit of them (all kept when limit <= 0).
func (c *Coordinator) History(ctx context.Context, limit int) ([]coordinator.Term, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("history %s: %w", c.id, err)
	}
	s := c.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.checkLocked("history"); err != nil {
		return nil, err
	}
	h := c.cl.history
	if limit > 0 && len(h) > limit {
		h = h[len(h)-limit:]
	}
	out := make([]coordinator.Term, len(h))
	for i, t := range h {
		out[i] = copyTerm(t)
	}
	return out, nil
}

func copyTerm(t coordinator.Term) coordinator.Term {
	if t.Ended != nil {
		e := *t.Ended
		t.Ended = &e
	}
	return t
}

// beginTermLocked records the term t as begun (handedOver: the previous
// master's resignation granted it; switchover: a switchover request named
// its member), closes the previous term if its end was not recorded, and
// keeps the last HistorySize terms of the winner's configuration.
func (s *Store) beginTermLocked(cl *cluster, t *term, handedOver, switchover bool) {
	now := s.clock.Now()
	var prev *coordinator.Term
	if n := len(cl.history); n > 0 {
		prev = &cl.history[n-1]
		if prev.Ended == nil {
			prev.Ended = &coordinator.Moment{Revision: t.token, Time: now}
			prev.EndReason = coordinator.EndLeaseExpired
		}
	}
	cl.history = append(cl.history, coordinator.Term{
		Token:  t.token,
		Member: t.c.id,
		Began:  coordinator.Moment{Revision: t.token, Time: now},
		Reason: coordinator.BeginReason(prev, handedOver, switchover),
	})
	if size := t.c.cfg.HistorySize; len(cl.history) > size {
		n := copy(cl.history, cl.history[len(cl.history)-size:])
		clear(cl.history[n:])
		cl.history = cl.history[:n]
	}
}

// endTermLocked records the end of term t for why (the error that ended
// the lease or the term) at the store's current revision.
func (s *Store) endTermLocked(cl *cluster, t *term, why error) {
	reason := coordinator.EndResigned
	switch {
	case errors.Is(why, coordinator.ErrSessionExpired) && errors.Is(t.err, coordinator.ErrLeaseDeadline) && !t.c.crashed:
		reason = coordinator.EndFenced
	case errors.Is(why, coordinator.ErrSessionExpired):
		reason = coordinator.EndLeaseExpired
	case cl.paused:
		reason = coordinator.EndPaused
	case cl.switchTo != "":
		reason = coordinator.EndSwitchover
	}
	for i := len(cl.history) - 1; i >= 0; i-- {
		h := &cl.history[i]
		if h.Token != t.token {
			continue
		}
		if h.Ended == nil {
			h.Ended = &coordinator.Moment{Revision: s.rev, Time: s.clock.Now()}
			h.EndReason = reason
		}
		return
	}
}
