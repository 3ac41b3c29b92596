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
	if _, err := c.cli.Put(ctx, c.keys.members+m.ID, string(b), clientv3.WithLease(c.s.lease)); err != nil {
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

// claimWait is the pause between two looks at the lease of a record that
// holds this member's id.
const claimWait = 200 * time.Millisecond

// claimID checks, as a session opens, that no live member holds its id.
// A record of the id bound to a lease that is still renewed is a live
// member's: it fails, wrapping coordinator.ErrInvalidConfig, naming the
// id and the record's host. A record whose lease is not renewed (a
// restarted container that reuses its host name) is waited out, at most
// until that lease expires (one TTL), and logged. A record bound to no
// lease, to this session's or to Config.PreviousLease is taken over at
// once.
func (c *Coordinator) claimID(ctx context.Context) error {
	key := c.keys.members + c.cfg.ID
	for {
		resp, err := c.cli.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("open session of %s: read its record: %w", c.cfg.ID, unavailable(c.cli.Endpoints(), err))
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		kv := resp.Kvs[0]
		lease := clientv3.LeaseID(kv.Lease)
		if lease == 0 || lease == c.s.lease || (c.cfg.PreviousLease != 0 && lease == c.cfg.PreviousLease) {
			return nil
		}
		var rec struct {
			Host string `json:"host"`
		}
		_ = json.Unmarshal(kv.Value, &rec) // the host is for the message only
		host := rec.Host
		if len(host) > 64 {
			host = host[:64] + "..."
		}
		renewed, err := c.renewed(ctx, lease, host)
		if err != nil {
			return fmt.Errorf("open session of %s: watch the lease of its record: %w", c.cfg.ID, unavailable(c.cli.Endpoints(), err))
		}
		if renewed {
			return fmt.Errorf("member id %s is in use by a running member on host %q (the lease of its record is renewed): give each member its own id (CCCTL_INSTANCE_ID): %w",
				c.cfg.ID, host, coordinator.ErrInvalidConfig)
		}
		c.log.Info("the record of an earlier process with this id expired; taking the id over", "host", host)
	}
}

// renewed follows lease until it is gone (false) or seen renewed twice
// (true: a renewal sent just before its process died is seen at most
// once). etcd reports the time left in whole seconds, rounded down: the
// lease was renewed once the expiry that an answer implies is past the
// latest one an earlier answer allows.
func (c *Coordinator) renewed(ctx context.Context, lease clientv3.LeaseID, host string) (bool, error) {
	var latest time.Time // the latest expiry the answer before allows
	renewals := 0
	for {
		sent := c.clk.Now()
		r, err := c.cli.TimeToLive(ctx, lease)
		got := c.clk.Now()
		if isLeaseNotFound(err) || (err == nil && r.TTL < 0) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		left := time.Duration(r.TTL) * time.Second
		switch {
		case latest.IsZero():
			latest = got.Add(left + time.Second)
			c.log.Warn("a record with this member's id is in place; waiting until its lease expires, or is seen renewed (then the id is in use)",
				"host", host, "lease", fmt.Sprintf("%x", int64(lease)), "ttl_left", left)
		case sent.Add(left).After(latest):
			if renewals++; renewals == 2 {
				return true, nil
			}
			latest = got.Add(left + time.Second)
		case got.After(latest.Add(c.cfg.DialTimeout)):
			return false, nil // past its expiry: etcd is revoking it
		}
		if err := c.backoff(ctx, claimWait); err != nil {
			return false, err
		}
	}
}
