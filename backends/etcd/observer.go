package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// Observer is a handle on one cluster for those who only look and steer
// (the CLI): it reads the members, the leader and the control keys and
// watches them, and it sends the requests that need no lease of the
// sender's (Pause, Resume, Switchover). It holds no session and no lease,
// so an etcd outage does not end it: while etcd is away its reads fail and
// its watch waits, and when etcd is back the watch resumes from the current
// state. It never registers and never campaigns.
type Observer struct {
	c *Coordinator // with no lease: only the methods below are used
}

// NewObserver returns an observer of cfg.Cluster under cfg.Prefix on cli,
// which the caller owns and closes after Close. cfg.ID names the observer
// in log lines only; the connection, TTL and renewal fields are ignored.
// Errors wrap coordinator.ErrInvalidConfig.
func NewObserver(cli *clientv3.Client, cfg Config) (*Observer, error) {
	if cli == nil {
		return nil, invalid("nil client")
	}
	if cfg.ID == "" {
		cfg.ID = "observer"
	}
	cfg.TTL, cfg.RenewInterval, cfg.Margin = 0, 0, 0
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:  cfg,
		cli:  cli,
		log:  cfg.Logger.With("observer", cfg.ID, "cluster", cfg.Cluster.String()),
		clk:  cfg.Clock,
		keys: newKeys(cfg.Prefix, cfg.Cluster),
	}
	c.s = newSession(cfg, c.log)
	return &Observer{c: c}, nil
}

// Cluster returns the cluster observed.
func (o *Observer) Cluster() coordinator.Cluster { return o.c.cfg.Cluster }

// Members returns every registered member's record, sorted by id.
func (o *Observer) Members(ctx context.Context) ([]coordinator.Member, error) {
	return o.c.Members(ctx)
}

// Leader returns the current leader, or an error wrapping
// coordinator.ErrNoLeader.
func (o *Observer) Leader(ctx context.Context) (coordinator.Leader, error) {
	return o.c.Leader(ctx)
}

// History returns the last limit master terms (all that are kept when
// limit is 0), oldest first (see Coordinator.History).
func (o *Observer) History(ctx context.Context, limit int) ([]coordinator.Term, error) {
	return o.c.History(ctx, limit)
}

// Paused reports whether the cluster is paused.
func (o *Observer) Paused(ctx context.Context) (bool, error) { return o.c.Paused(ctx) }

// Pause suspends automatic takeover (see Coordinator.Pause).
func (o *Observer) Pause(ctx context.Context) error { return o.c.Pause(ctx) }

// Resume allows automatic takeover again.
func (o *Observer) Resume(ctx context.Context) error { return o.c.Resume(ctx) }

// Switchover asks the leader to hand over (see Coordinator.Switchover).
func (o *Observer) Switchover(ctx context.Context, to string) (string, error) {
	return o.c.Switchover(ctx, to)
}

// Watch streams the cluster's events as Coordinator.Watch does, through
// etcd outages; the channel is closed when ctx is done or the observer is
// closed.
func (o *Observer) Watch(ctx context.Context) (<-chan coordinator.Event, error) {
	return o.c.Watch(ctx)
}

// Close ends the observer's watches and waits for them. It is idempotent.
func (o *Observer) Close() error {
	c := o.c
	c.closeOnce.Do(func() {
		c.s.beginClose()
		c.s.end(fmt.Errorf("observer %s: %w", c.cfg.ID, coordinator.ErrSessionClosed))
		c.s.wg.Wait()
	})
	return nil
}
