package lifecycle

import (
	"context"
	"fmt"

	"github.com/ccctl/ccctl/coordinator"
)

// The helpers below are the Go counterparts of the original
// docker-cluster-controller's get_container_id, get_members and
// get_filesystem_lock, for hooks and jobs written in Go.

// InstanceID returns this member's id (the original's get_container_id).
func (c *Controller) InstanceID() string { return c.id }

// MemberFilter selects members; a zero field matches every member.
type MemberFilter struct {
	Role  coordinator.Role
	State coordinator.State
}

// Match reports whether m passes the filter.
func (f MemberFilter) Match(m coordinator.Member) bool {
	return (f.Role == "" || m.Role == f.Role) && (f.State == "" || m.State == f.State)
}

// Members returns the registered members of this member's cluster that pass
// the filter, sorted by id (the original's get_members).
func (c *Controller) Members(ctx context.Context, f MemberFilter) ([]coordinator.Member, error) {
	coord := c.Coordinator()
	all, err := coord.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", coord.Cluster(), err)
	}
	out := make([]coordinator.Member, 0, len(all))
	for _, m := range all {
		if f.Match(m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// GetFilesystemLock reports whether this member holds the filesystem lock
// of dir (the original's get_filesystem_lock). It is false for a directory
// that is not among the configured locks, and when no locks are configured.
func (c *Controller) GetFilesystemLock(dir string) bool {
	if c.cfg.Locks == nil {
		return false
	}
	if h, ok := c.cfg.Locks.(interface{ Held(dir string) bool }); ok {
		return h.Held(dir)
	}
	return c.cfg.Locks.Locks()[dir]
}
