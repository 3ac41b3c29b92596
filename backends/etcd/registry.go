package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// Register creates or replaces this member's record (JSON at
// members/<id>), bound to the session's lease.
func (c *Coordinator) Register(ctx context.Context, m coordinator.Member) error {
	if err := c.check("register"); err != nil {
		return err
	}
	if m.ID == "" {
		m.ID = c.cfg.ID
	}
	if m.ID != c.cfg.ID {
		return fmt.Errorf("register %s: record of member %q: want this handle's own id", c.cfg.ID, m.ID)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("register %s: %w", c.cfg.ID, err)
	}
	if _, err := c.cli.Put(ctx, c.keys.members+m.ID, string(b), clientv3.WithLease(c.lease)); err != nil {
		return c.sessionErr("register", err)
	}
	return nil
}

// Members returns every registered member's record, sorted by id. Keys
// that are not a member's record (see Layout.DecodeMember) are skipped and
// logged.
func (c *Coordinator) Members(ctx context.Context) ([]coordinator.Member, error) {
	if err := c.check("members"); err != nil {
		return nil, err
	}
	resp, err := c.cli.Get(ctx, c.keys.members, clientv3.WithPrefix())
	if err != nil {
		return nil, c.sessionErr("members", err)
	}
	ms := make([]coordinator.Member, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if d := c.decodeKV(kv); d.err == nil {
			ms = append(ms, d.member)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms, nil
}

// Leader returns the current leader, or an error wrapping
// coordinator.ErrNoLeader. Keys under election/ that are not a leader's
// (see Layout.DecodeLeader) are skipped and logged.
func (c *Coordinator) Leader(ctx context.Context) (coordinator.Leader, error) {
	if err := c.check("leader"); err != nil {
		return coordinator.Leader{}, err
	}
	// At most one leader key exists under election/; the oldest, as
	// etcdctl elect -l reads it, if a bug made another.
	resp, err := c.cli.Get(ctx, c.keys.leaders, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return coordinator.Leader{}, c.sessionErr("leader", err)
	}
	for _, kv := range resp.Kvs {
		if d := c.decodeKV(kv); d.err == nil {
			return d.leader, nil
		}
	}
	return coordinator.Leader{}, fmt.Errorf("leader of %s: %w", c.cfg.Cluster, coordinator.ErrNoLeader)
}

// Pause suspends automatic takeover: it creates control/pause (not bound to
// any lease, so it outlives this member).
func (c *Coordinator) Pause(ctx context.Context) error {
	if err := c.check("pause"); err != nil {
		return err
	}
	b, _ := json.Marshal(struct {
		By string    `json:"by"`
		At time.Time `json:"at"`
	}{c.cfg.ID, time.Now().UTC()})
	_, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(c.keys.pause), "=", 0)).
		Then(clientv3.OpPut(c.keys.pause, string(b))).Commit()
	if err != nil {
		return c.sessionErr("pause", err)
	}
	c.log.Info("cluster paused")
	return nil
}

// Resume allows automatic takeover again: it deletes control/pause.
func (c *Coordinator) Resume(ctx context.Context) error {
	if err := c.check("resume"); err != nil {
		return err
	}
	if _, err := c.cli.Delete(ctx, c.keys.pause); err != nil {
		return c.sessionErr("resume", err)
	}
	c.log.Info("cluster resumed")
	return nil
}

// Paused reports whether control/pause exists.
func (c *Coordinator) Paused(ctx context.Context) (bool, error) {
	if err := c.check("paused"); err != nil {
		return false, err
	}
	resp, err := c.cli.Get(ctx, c.keys.pause, clientv3.WithCountOnly())
	if err != nil {
		return false, c.sessionErr("paused", err)
	}
	return resp.Count > 0, nil
}

// Switchover asks the leader to hand over to member to (chosen with
// coordinator.PickSwitchoverTarget when empty): it writes control/switchover
// bound to the target's lease, so the request vanishes with the target. A
// request naming the sitting leader is fulfilled already and writes
// nothing.
func (c *Coordinator) Switchover(ctx context.Context, to string) (string, error) {
	if err := c.check("switchover"); err != nil {
		return "", err
	}
	for attempt := 0; attempt < 5; attempt++ {
		target := to
		leader, err := c.Leader(ctx)
		if err != nil && !errors.Is(err, coordinator.ErrNoLeader) {
			return "", err
		}
		if target == "" {
			ms, err := c.Members(ctx)
			if err != nil {
				return "", err
			}
			if target = coordinator.PickSwitchoverTarget(ms, leader.ID); target == "" {
				return "", fmt.Errorf("switchover: no member to hand over to: %w", coordinator.ErrUnknownMember)
			}
		}
		if target == leader.ID {
			return target, nil
		}
		if err := coordinator.ValidateName("member id", target); err != nil {
			return "", fmt.Errorf("switchover: %v: %w", err, coordinator.ErrUnknownMember)
		}
		resp, err := c.cli.Get(ctx, c.keys.members+target)
		if err != nil {
			return "", c.sessionErr("switchover", err)
		}
		if len(resp.Kvs) == 0 || c.decodeKV(resp.Kvs[0]).err != nil {
			return "", fmt.Errorf("switchover to %q: %w", target, coordinator.ErrUnknownMember)
		}
		kv := resp.Kvs[0]
		tresp, err := c.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision),
		).Then(clientv3.OpPut(c.keys.switchover, target, clientv3.WithLease(clientv3.LeaseID(kv.Lease)))).Commit()
		if err != nil {
			if c.check("switchover") == nil && isLeaseNotFound(err) {
				continue // the target left meanwhile; look again
			}
			return "", c.sessionErr("switchover", err)
		}
		if tresp.Succeeded {
			c.log.Info("switchover requested", "to", target)
			return target, nil
		}
	}
	return "", fmt.Errorf("switchover: members kept changing: %w", coordinator.ErrUnknownMember)
}
