package etcd

import "time"

// HerdWindow returns the window of the delay before a campaign's attempt
// with the package's constants.
func HerdWindow(members int64) time.Duration {
	return herdWindow(members, herdPerMember, herdMaxWindow)
}

// SetHerdWindow changes how c sizes the delay before a campaign's attempt:
// perMember per other member, at most maxWindow. Call it before Campaign.
func SetHerdWindow(c *Coordinator, perMember, maxWindow time.Duration) {
	c.herdPerMember, c.herdMax = perMember, maxWindow
}

// SetRecount changes the bounds of the time between two counts of the
// member records by c's waiting campaigns. Call it before Campaign.
func SetRecount(c *Coordinator, minDelay, maxDelay time.Duration) {
	c.recountMin, c.recountMax = minDelay, maxDelay
}

// MembersCounted returns the latest count of member records c's campaigns
// made.
func MembersCounted(c *Coordinator) int64 { return c.counted.Load() }

// RenewedBy returns the id of the etcd member that answered c's latest
// keep-alive request.
func RenewedBy(c *Coordinator) uint64 { return c.s.renewedBy.Load() }

// LeaderViewRevision returns the revision up to which the monitor of c's
// current term has seen the election and control keys (0: no term, or
// not yet).
func LeaderViewRevision(c *Coordinator) int64 {
	c.mu.Lock()
	l := c.leader
	c.mu.Unlock()
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.view.rev
}

// SetPlainRule turns c's ranking off (the rule before it), for a
// comparison. Call it before Campaign.
func SetPlainRule(c *Coordinator) { c.plainRule = true }
