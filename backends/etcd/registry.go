package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// Register creates or replaces this member's record (JSON at
// members/<id>), bound to the session's lease. The record's priority is
// Config.Ranking's effective one, whatever m says. While this member
// leads, a record with a position also puts that position at
// last_position (no lease), in the same transaction and only while the
// term's leader key is in place, so that it outlives the master
// (LastPosition).
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
	m.Priority = c.cfg.Ranking.EffectivePriority()
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("register %s: %w", c.cfg.ID, err)
	}
	ops := []clientv3.Op{clientv3.OpPut(c.keys.members+m.ID, string(b), clientv3.WithLease(c.s.lease))}
	c.mu.Lock()
	l := c.leader
	c.mu.Unlock()
	if l != nil && m.Position != nil {
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(c.keys.leaderOf(c.cfg.ID)), "=", l.token)},
			[]clientv3.Op{clientv3.OpPut(c.keys.lastPos, strconv.FormatInt(*m.Position, 10))}, nil))
	}
	if _, err := c.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
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

// Switchover asks the leader to hand over to member to: it writes
// control/switchover bound to the target's lease, so the request vanishes
// with the target. With to empty, the target is the best eligible
// candidate by the ranking (rank.go, switchoverTarget); none is an error
// wrapping coordinator.ErrIneligible. A target of priority 0 is refused
// (coordinator.ErrIneligible): Failover forces one. A request naming the
// sitting leader is fulfilled already and writes nothing.
func (c *Coordinator) Switchover(ctx context.Context, to string) (string, error) {
	return c.request(ctx, "switchover", to, false)
}

// Failover asks that member to lead next whatever the ranking says
// (priority 0, too far behind): it writes control/switchover as
// Switchover does, its value "force:<id>", which the member fulfils even
// at a vacancy that the ranking would not let it take. Watch reports it
// as coordinator.EventSwitchover with Forced set.
func (c *Coordinator) Failover(ctx context.Context, to string) error {
	if to == "" {
		return fmt.Errorf("failover: no member named: name the member to lead (ccctl failover --to ID): %w", coordinator.ErrUnknownMember)
	}
	_, err := c.request(ctx, "failover", to, true)
	return err
}

// request writes a switchover request for to (forced: by Failover).
func (c *Coordinator) request(ctx context.Context, op, to string, forced bool) (string, error) {
	if err := c.check(op); err != nil {
		return "", err
	}
	for attempt := 0; attempt < 5; attempt++ {
		target := to
		leader, err := c.Leader(ctx)
		if err != nil && !errors.Is(err, coordinator.ErrNoLeader) {
			return "", err
		}
		if target == "" {
			st, r, err := c.readRanking(ctx)
			if err != nil {
				return "", c.sessionErr(op, err)
			}
			if len(r.records) == 0 || (len(r.records) == 1 && r.records[0].ID == leader.ID) {
				return "", fmt.Errorf("%s: no member to hand over to: %w", op, coordinator.ErrUnknownMember)
			}
			if target = r.switchoverTarget(leader.ID, st.heirID, c.cfg.Ranking); target == "" {
				return "", fmt.Errorf("%s: no eligible member to hand over to (priority 0, too far behind or stopping): name one with ccctl failover --to ID --force: %w",
					op, coordinator.ErrIneligible)
			}
		}
		if target == leader.ID {
			return target, nil
		}
		if err := coordinator.ValidateName("member id", target); err != nil {
			return "", fmt.Errorf("%s: %v: %w", op, err, coordinator.ErrUnknownMember)
		}
		resp, err := c.cli.Get(ctx, c.keys.members+target)
		if err != nil {
			return "", c.sessionErr(op, err)
		}
		if len(resp.Kvs) == 0 {
			return "", fmt.Errorf("%s to %q: %w", op, target, coordinator.ErrUnknownMember)
		}
		d := c.decodeKV(resp.Kvs[0])
		if d.err != nil {
			return "", fmt.Errorf("%s to %q: %w", op, target, coordinator.ErrUnknownMember)
		}
		if d.member.Priority == 0 && !forced {
			return "", fmt.Errorf("%s to %s: it has priority 0 and never leads unless forced: ccctl failover --to %s --force: %w",
				op, target, target, coordinator.ErrIneligible)
		}
		kv := resp.Kvs[0]
		value := target
		if forced {
			value = forcedPrefix + target
		}
		tresp, err := c.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision),
		).Then(clientv3.OpPut(c.keys.switchover, value, clientv3.WithLease(clientv3.LeaseID(kv.Lease)))).Commit()
		if err != nil {
			if c.check(op) == nil && isLeaseNotFound(err) {
				continue // the target left meanwhile; look again
			}
			return "", c.sessionErr(op, err)
		}
		if tresp.Succeeded {
			c.log.Info(op+" requested", "to", target, "forced", forced)
			return target, nil
		}
	}
	return "", fmt.Errorf("%s: members kept changing: %w", op, coordinator.ErrUnknownMember)
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
