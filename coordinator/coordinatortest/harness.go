// Package coordinatortest is the conformance suite of the coordinator
// contract. Every backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		coordinatortest.Run(t, func(t *testing.T) coordinatortest.Harness { ... })
//	}
//
// Each property is a subtest with a fresh cluster (a new Harness) and a
// bounded wait, so a hang fails instead of freezing the run.
//
// What it does not check: faults beyond what Harness.Expire simulates (a
// partition that heals, a slow or compacting server; each backend tests
// those itself), and what must not happen beyond a short quiet period (a
// window cannot prove a negative).
package coordinatortest

import (
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

// Harness gives the suite independent member handles on one fresh cluster,
// as separate processes would hold them.
type Harness interface {
	// New opens a handle for member id on the harness's cluster. The handle
	// is not registered yet. The harness closes it in t.Cleanup; the suite
	// may close it earlier.
	New(t *testing.T, id string) coordinator.Coordinator
	// Expire makes c's member fail as a crashed or cut-off process would:
	// its renewals stop reaching the backend and its lease is not revoked.
	// It returns once the backend has expired the lease, taking whatever
	// time that needs (a fake clock advanced past the TTL, or a real wait
	// bounded by the TTL plus a few seconds).
	Expire(t *testing.T, c coordinator.Coordinator)
}

// Healer is implemented by harnesses that can end what Expire did, so that
// the suite can check coordinator.Reopener: the member's calls reach the
// backend again, as a process that was cut off and is connected again (its
// ended session stays ended). Without it the Reopen properties are skipped.
type Healer interface {
	// Heal reconnects c's member after Expire.
	Heal(t *testing.T, c coordinator.Coordinator)
}

// RankedHarness is implemented by harnesses whose members can be given a
// Ranking, so that the suite can check the ranking at a vacancy, at a
// handover and at a switchover. Without it the ranking properties are
// skipped.
type RankedHarness interface {
	// NewRanked opens a handle for member id with ranking r, as New does.
	NewRanked(t *testing.T, id string, r coordinator.Ranking) coordinator.Coordinator
}

// TimeMover is implemented by harnesses whose backend tells time with a
// clock the test controls (a fake clock), so that the suite can see a
// failover wait end without waiting for it. Without it the suite waits in
// real time, bounded.
type TimeMover interface {
	// Pass makes d pass on the backend's clock, as it would for living
	// members (their renewals keep their sessions).
	Pass(t *testing.T, d time.Duration)
}
