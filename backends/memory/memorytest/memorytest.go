// Package memorytest injects faults into members of the memory backend, for
// tests: the death of a member's process and a cut-off from the store. They
// are kept off memory.Coordinator so that production code cannot call them.
package memorytest

import (
	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/backends/memory/internal/faults"
)

// Crash simulates the death of c's process: renewals stop and nothing
// reaches the store any more, but the lease is not revoked. The store
// expires it TTL after the last renewal, deleting the record and releasing
// the leadership; c's own Leadership.Done and Done close at the latest
// TTL - Margin after the last renewal, as a living member's would. Close
// after Crash releases c's goroutines without touching the store.
func Crash(c *memory.Coordinator) { faults.Crash(c) }

// Partition cuts c off from the store (cut true) or reconnects it (cut
// false). While cut off, renewals and calls do not reach the store (calls
// fail with coordinator.ErrUnavailable) and the member keeps running: it
// fences itself TTL - Margin after its last acknowledged renewal. A session
// that ended meanwhile stays ended after reconnection; a leadership
// resigned while cut off is released in the store on reconnection.
// Partition does nothing after Crash.
func Partition(c *memory.Coordinator, cut bool) { faults.Partition(c, cut) }
