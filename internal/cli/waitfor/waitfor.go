// Package waitfor holds a member's start-up until other services of its
// environment are up: wait_for / WAIT_FOR_SERVICES, the original's
// wait_for_service.
//
// A service is up when it has an active master: its cluster has a leader
// and the leader's member record has state active. Wait looks at each
// awaited cluster at once and then every poll interval, until every one is
// up, the timeout passes (ErrTimeout; ccctl run then exits with code 3), or
// its context is done. While it waits it logs, every log interval, which
// services it still awaits.
//
// What is guaranteed: Wait returns nil only after it saw, for each service,
// a leader whose record said active at that moment; it returns by the
// timeout on its clock, plus at most one round of looks; each look at one
// cluster is bounded by the poll interval. A service once seen up is not
// looked at again.
//
// What is not guaranteed: that the services are still up when Wait returns
// (a master may fail right after), or that a service that was up only
// between two looks is seen.
package waitfor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
)

// Defaults of a Waiter.
const (
	// DefaultTimeout is how long Wait waits by default (wait_for_timeout).
	DefaultTimeout = 60 * time.Second
	// DefaultPollInterval is how often each awaited cluster is looked at.
	DefaultPollInterval = time.Second
	// DefaultLogInterval is how often Wait logs what it still awaits.
	DefaultLogInterval = 5 * time.Second
)

// ErrTimeout reports that the timeout passed before every service was up.
var ErrTimeout = errors.New("waitfor: timed out")

// Cluster is the read-only view of an awaited cluster that Wait needs. A
// coordinator.Coordinator is one.
type Cluster interface {
	// Leader returns the cluster's leader, or an error wrapping
	// coordinator.ErrNoLeader.
	Leader(ctx context.Context) (coordinator.Leader, error)
	// Members returns the cluster's member records.
	Members(ctx context.Context) ([]coordinator.Member, error)
}

// OpenFunc opens a view of the cluster of service in the waiter's
// environment. Wait calls it again at the next look when it fails. When the
// returned Cluster has a Close() error method, Wait calls it before it
// returns.
type OpenFunc func(ctx context.Context, service string) (Cluster, error)

// Config configures a Waiter.
type Config struct {
	// Services are the awaited services (WAIT_FOR_SERVICES), in the
	// waiter's environment. Empty means nothing to wait for.
	Services []string
	// Open opens a view of one awaited cluster. Required when Services is
	// not empty.
	Open OpenFunc
	// Timeout bounds the whole wait (DefaultTimeout when 0).
	Timeout time.Duration
	// PollInterval is how often each awaited cluster is looked at
	// (DefaultPollInterval when 0). It must not exceed Timeout.
	PollInterval time.Duration
	// LogInterval is how often the awaited services are logged
	// (DefaultLogInterval when 0). It must not be shorter than PollInterval.
	LogInterval time.Duration
	// Clock tells time (clock.Real() when nil).
	Clock clock.Clock
	// Logger receives the progress lines (slog.Default() when nil).
	Logger *slog.Logger
}

// Waiter waits for services. Make it with New.
type Waiter struct {
	cfg Config
}

// New validates cfg and returns a Waiter.
func New(cfg Config) (*Waiter, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = min(DefaultPollInterval, cfg.Timeout)
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = max(DefaultLogInterval, cfg.PollInterval)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("wait for services: timeout %v: want > 0", cfg.Timeout)
	case cfg.PollInterval < 0 || cfg.PollInterval > cfg.Timeout:
		return nil, fmt.Errorf("wait for services: poll interval %v: want > 0 and at most the timeout %v", cfg.PollInterval, cfg.Timeout)
	case cfg.LogInterval < cfg.PollInterval:
		return nil, fmt.Errorf("wait for services: log interval %v: want at least the poll interval %v", cfg.LogInterval, cfg.PollInterval)
	case len(cfg.Services) > 0 && cfg.Open == nil:
		return nil, fmt.Errorf("wait for services: no way to open a cluster")
	}
	seen := make(map[string]bool)
	for _, s := range cfg.Services {
		if err := coordinator.ValidateName("service", s); err != nil {
			return nil, fmt.Errorf("wait for services: %w", err)
		}
		if seen[s] {
			return nil, fmt.Errorf("wait for services: service %q listed twice", s)
		}
		seen[s] = true
	}
	cfg.Services = slices.Clone(cfg.Services)
	return &Waiter{cfg: cfg}, nil
}

// ParseServices splits a WAIT_FOR_SERVICES value: names separated by commas
// or white space; empty names are skipped.
func ParseServices(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// Wait blocks until every service has an active master (nil), the timeout
// passes (an error wrapping ErrTimeout that names the services still
// awaited), or ctx is done (ctx.Err(), wrapped).
func (w *Waiter) Wait(ctx context.Context) error {
	cfg := w.cfg
	if len(cfg.Services) == 0 {
		return nil
	}
	log := cfg.Logger
	start := cfg.Clock.Now()
	views := make(map[string]Cluster)
	defer func() {
		for _, v := range views {
			closeView(v)
		}
	}()
	pending := slices.Clone(cfg.Services)

	timeout := cfg.Clock.NewTimer(cfg.Timeout)
	defer timeout.Stop()
	poll := cfg.Clock.NewTimer(cfg.PollInterval)
	defer poll.Stop()
	logTick := cfg.Clock.NewTimer(cfg.LogInterval)
	defer logTick.Stop()

	log.Info("waiting for services to have an active master", "services", strings.Join(pending, ","), "timeout", cfg.Timeout)
	for {
		pending = w.look(ctx, views, pending)
		if len(pending) == 0 {
			log.Info("every awaited service has an active master", "services", strings.Join(cfg.Services, ","), "waited", cfg.Clock.Since(start))
			return nil
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for services %s: %w", strings.Join(pending, ","), ctx.Err())
			case <-timeout.C():
				log.Error("services still without an active master at the timeout", "awaiting", strings.Join(pending, ","), "timeout", cfg.Timeout)
				return fmt.Errorf("wait for services %s: %w after %v", strings.Join(pending, ","), ErrTimeout, cfg.Timeout)
			case <-logTick.C():
				log.Info("still waiting for services", "awaiting", strings.Join(pending, ","), "waited", cfg.Clock.Since(start))
				logTick.Reset(cfg.LogInterval)
			case <-poll.C():
				poll.Reset(cfg.PollInterval)
				break wait
			}
		}
	}
}

// look checks each pending service once and returns those not up yet.
func (w *Waiter) look(ctx context.Context, views map[string]Cluster, pending []string) []string {
	var still []string
	for _, s := range pending {
		ok, err := w.up(ctx, views, s)
		if err != nil {
			w.cfg.Logger.Debug("cannot look at awaited service", "service", s, "err", err)
		}
		if ok {
			w.cfg.Logger.Info("awaited service has an active master", "service", s)
			continue
		}
		still = append(still, s)
	}
	return still
}

// up reports whether service has a leader whose record says active.
func (w *Waiter) up(ctx context.Context, views map[string]Cluster, service string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.PollInterval)
	defer cancel()
	v, ok := views[service]
	if !ok {
		var err error
		v, err = w.cfg.Open(ctx, service)
		if err != nil {
			return false, fmt.Errorf("open %s: %w", service, err)
		}
		views[service] = v
	}
	leader, err := v.Leader(ctx)
	if errors.Is(err, coordinator.ErrNoLeader) {
		return false, nil
	}
	if err != nil {
		w.drop(views, service)
		return false, fmt.Errorf("leader of %s: %w", service, err)
	}
	members, err := v.Members(ctx)
	if err != nil {
		w.drop(views, service)
		return false, fmt.Errorf("members of %s: %w", service, err)
	}
	for _, m := range members {
		if m.ID == leader.ID {
			return m.State == coordinator.StateActive, nil
		}
	}
	return false, nil
}

// drop closes and forgets the view of service, so that the next look opens
// a new one (its session may have ended).
func (w *Waiter) drop(views map[string]Cluster, service string) {
	closeView(views[service])
	delete(views, service)
}

func closeView(v Cluster) {
	if c, ok := v.(interface{ Close() error }); ok {
		c.Close()
	}
}
