package etcd

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// slotLeases are the leases that bound the slot claims: one per job, used
// for the claims of one retention period and then replaced, so that a claim
// lives between one and two retention periods and a job costs at most two
// leases at a time, however often it runs (a lease per claim cost a 2 s job
// some 1 800 leases). They are never kept alive: they expire on their own,
// whatever becomes of the member.
type slotLeases struct {
	mu   sync.Mutex
	jobs map[string]slotLease
}

type slotLease struct {
	id      clientv3.LeaseID
	granted time.Time // on the monotonic clock
	ttl     time.Duration
}

// get returns job's current lease, granting a new one when there is none,
// when it is older than retention, or when stale names the lease a claim
// just found gone.
func (l *slotLeases) get(ctx context.Context, cli *clientv3.Client, job string, retention time.Duration, stale clientv3.LeaseID) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.jobs[job]
	if ok && cur.id != stale && cur.ttl == 2*retention && time.Since(cur.granted) < retention {
		return cur.id, nil
	}
	ttl := int64(math.Ceil((2 * retention).Seconds()))
	granted := time.Now()
	resp, err := cli.Grant(ctx, ttl)
	if err != nil {
		return 0, err
	}
	if l.jobs == nil {
		l.jobs = map[string]slotLease{}
	}
	l.jobs[job] = slotLease{id: resp.ID, granted: granted, ttl: 2 * retention}
	return resp.ID, nil
}

// ClaimSlot records (job, slot) as taken by this member at
// slots/<job>/<slot in RFC 3339, UTC> if nobody has, and reports whether
// this call took it. The record is bound to the job's slot lease (see
// slotLeases), so that it is kept for at least retention and at most twice
// that.
func (c *Coordinator) ClaimSlot(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error) {
	if err := c.check("claim slot"); err != nil {
		return false, err
	}
	if err := coordinator.ValidateName("job", job); err != nil {
		return false, fmt.Errorf("claim slot: %w", err)
	}
	if retention <= 0 {
		return false, fmt.Errorf("claim slot %s: retention %v: want > 0", job, retention)
	}
	key := c.keys.slots + job + "/" + slot.UTC().Format(time.RFC3339Nano)
	var stale clientv3.LeaseID
	for attempt := 0; ; attempt++ {
		lease, err := c.slotLeases.get(ctx, c.cli, job, retention, stale)
		if err != nil {
			return false, fmt.Errorf("claim slot %s: grant lease: %w", job, err)
		}
		resp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, c.cfg.ID, clientv3.WithLease(lease))).Commit()
		if isLeaseNotFound(err) && attempt == 0 {
			stale = lease // expired or revoked under us: take a new one
			continue
		}
		if err != nil {
			return false, fmt.Errorf("claim slot %s: %w", job, err)
		}
		return resp.Succeeded, nil
	}
}
