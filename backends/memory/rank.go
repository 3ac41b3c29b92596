package memory

import (
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

// The ranking of the memory backend: who may take a vacant leadership, and
// when. It only chooses among the waiting campaigns which one the store
// grants; the one-leader rule is kept by electLocked alone (a grant only
// when cl.leader is nil, under the store's lock), whatever decide answers.
//
// The rules, the same as the etcd backend's:
//   - While a switchover request stands, only its target may win, and a
//     target of priority 0 only when the request is forced (Failover).
//   - Otherwise each waiting member ranks the members with its own Ranking
//     (coordinator.Rank; the heir is the first waiting member of priority
//     above 0, the one the plain rule would pick). The best wins at once;
//     an eligible member that is not the best wins only once its failover
//     wait has passed since it saw the vacancy; an ineligible one never.
//   - The decision is taken again whenever the cluster changes during the
//     vacancy (a campaign, a record, a departure) and when a failover wait
//     ends.
//   - A handover (Resign) grants the leadership to coordinator.Best of the
//     resigning leader's Ranking when that member is waiting; otherwise the
//     vacancy rules apply.

// candidate is one waiting campaign as the ranking sees it.
type candidate struct {
	id       string
	priority int                 // the member's effective priority
	ranking  coordinator.Ranking // the member's own ranking
	wait     time.Duration       // its failover wait: ranking.Wait(ttl)
	since    time.Time           // when it saw the vacancy
	target   bool                // named by the standing switchover request
}

// vacancy is what decide needs to know about a vacant leadership.
type vacancy struct {
	members  []coordinator.Member // the records, and a bare one per candidate without
	waiters  []candidate          // in the order the campaigns started
	last     *int64               // the last master's position
	switchTo string               // the standing switchover request's target
	forced   bool                 // the request is forced (Failover)
	now      time.Time
}

// decide returns the index in v.waiters of the campaign to grant the
// leadership to, or -1 and the earliest time at which a failover wait ends
// (zero when none is pending).
func decide(v vacancy) (int, time.Time) {
	if v.switchTo != "" {
		for i, w := range v.waiters {
			if w.target && (v.forced || w.priority > 0) {
				return i, time.Time{}
			}
		}
		return -1, time.Time{}
	}
	heir := heirOf(v.waiters, "")
	grant, grantPlace := -1, 0
	var retry time.Time
	for i, w := range v.waiters {
		place, eligible := standing(coordinator.Rank(v.members, heir, v.last, w.ranking), w.id)
		if !eligible {
			continue
		}
		if place == 0 {
			return i, time.Time{}
		}
		if due := w.since.Add(w.wait); v.now.Before(due) {
			if retry.IsZero() || due.Before(retry) {
				retry = due
			}
			continue
		}
		if grant < 0 || place < grantPlace {
			grant, grantPlace = i, place
		}
	}
	if grant >= 0 {
		return grant, time.Time{}
	}
	return -1, retry
}

// heirOf returns the member the plain rule would pick: the first waiting
// member of priority above 0 other than exclude, or "".
func heirOf(waiters []candidate, exclude string) string {
	for _, w := range waiters {
		if w.priority > 0 && w.id != exclude {
			return w.id
		}
	}
	return ""
}

// standing returns the place of id in ranking and whether it is eligible.
func standing(ranking []coordinator.Standing, id string) (int, bool) {
	for i, st := range ranking {
		if st.ID == id {
			return i, st.Eligible
		}
	}
	return -1, false
}

// reason returns why id is not eligible in ranking ("" when it is).
func reason(ranking []coordinator.Standing, id string) string {
	for _, st := range ranking {
		if st.ID == id {
			return st.Reason
		}
	}
	return "not registered"
}

// vacancyLocked returns the ranking's view of cl's waiting campaigns.
func (s *Store) vacancyLocked(cl *cluster) vacancy {
	v := vacancy{
		members:  membersLocked(cl),
		waiters:  make([]candidate, 0, len(cl.waiters)),
		last:     cl.lastPosition,
		switchTo: cl.switchTo,
		forced:   cl.switchForced,
		now:      s.clock.Now(),
	}
	seen := make(map[string]bool, len(v.members))
	for _, m := range v.members {
		seen[m.ID] = true
	}
	for _, w := range cl.waiters {
		c := w.c
		since := w.at
		if since.Before(cl.vacantSince) {
			since = cl.vacantSince
		}
		cd := candidate{
			id:       c.id,
			priority: c.cfg.Ranking.EffectivePriority(),
			ranking:  c.cfg.Ranking,
			wait:     c.cfg.Ranking.Wait(c.cfg.TTL),
			since:    since,
			target:   c.id == cl.switchTo && c.lease == cl.switchLease,
		}
		v.waiters = append(v.waiters, cd)
		if !seen[c.id] {
			// A campaign without a record ranks with what is known of it.
			seen[c.id] = true
			v.members = append(v.members, coordinator.Member{ID: c.id, Priority: cd.priority})
		}
	}
	return v
}

// handoverLocked returns the index of the waiting campaign a leader that
// resigns hands over to: coordinator.Best of its Ranking among the other
// members, when that member is waiting; -1 when it is not, when none is
// eligible, or when a pause or a switchover request decides instead.
func (s *Store) handoverLocked(cl *cluster, from *Coordinator) int {
	if cl.paused || cl.switchTo != "" {
		return -1
	}
	v := s.vacancyLocked(cl)
	best := coordinator.Best(v.members, from.id, heirOf(v.waiters, from.id), v.last, from.cfg.Ranking)
	if best == "" {
		return -1
	}
	for i, w := range cl.waiters {
		if w.c.id == best && w.c != from {
			return i
		}
	}
	return -1
}

// armRankTimerLocked makes the store decide again at at (zero: never).
func (s *Store) armRankTimerLocked(cl *cluster, at time.Time) {
	if at.IsZero() {
		if cl.rankTimer != nil {
			cl.rankTimer.Stop()
		}
		return
	}
	d := at.Sub(s.clock.Now())
	if cl.rankTimer == nil {
		cl.rankTimer = s.clock.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.expireDueLocked()
			s.electLocked(cl)
		})
		return
	}
	cl.rankTimer.Reset(d)
}
