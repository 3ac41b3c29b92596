package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/fslock"
	"github.com/ccctl/ccctl/httpapi"
	"github.com/ccctl/ccctl/internal/cli/config"
	"github.com/ccctl/ccctl/internal/cli/errreport"
	"github.com/ccctl/ccctl/internal/cli/logfilter"
	"github.com/ccctl/ccctl/internal/cli/render"
	"github.com/ccctl/ccctl/internal/cli/waitfor"
	"github.com/ccctl/ccctl/lifecycle"
	"github.com/ccctl/ccctl/schedule"
)

// runMember runs one member and returns the exit code of ccctl run.
func runMember(cmd *cobra.Command, cfg *config.Config, argv []string, standalone bool) (int, error) {
	reporter, err := errreport.New(errreport.Config{
		DSN: cfg.SentryDSN, Environment: cfg.Cluster.Environment, Service: cfg.Cluster.Service, Member: cfg.InstanceID,
		Release: "ccctl@" + Version(),
	})
	if err != nil {
		return exitUsage, fmt.Errorf("run: SENTRY_DSN: %w", err)
	}
	defer reporter.Close()
	base := slog.New(reporter.Handler(newBaseLogger(cmd.ErrOrStderr(), cfg).Handler()))
	log := base.With("member", cfg.InstanceID)

	if standalone {
		log.Info("standalone: running the service with no coordination")
		return superviseService(cmd, cfg, argv, base)
	}
	// Signals that come while connecting or waiting end the start-up.
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	m := &member{cfg: cfg, base: base, log: log, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()}
	defer m.close()
	if code, err := m.openBackend(ctx); err != nil {
		return code, err
	}
	if code, err := m.waitFor(ctx); err != nil {
		return code, err
	}
	if code, err := m.lock(ctx); err != nil {
		return code, err
	}
	stop() // from here on the controller owns the signals
	return m.run(context.WithoutCancel(ctx), argv)
}

// member holds what one ccctl run opened, closed in reverse order.
type member struct {
	cfg         *config.Config
	base        *slog.Logger // for the parts that add the member id
	log         *slog.Logger // with the member id
	out, errOut io.Writer

	cli     *clientv3.Client // nil on the memory backend
	coord   coordinator.Coordinator
	address string
	locks   *fslock.Manager // nil without filesystem_locks
	closers []func()
}

func (m *member) close() {
	for i := len(m.closers) - 1; i >= 0; i-- {
		m.closers[i]()
	}
}

// openBackend opens this member's session: the memory backend when no etcd
// is configured, else etcd, retried until the connect timeout.
func (m *member) openBackend(ctx context.Context) (int, error) {
	cfg := m.cfg
	if !cfg.UsesEtcd() {
		m.log.Info("no etcd configured: memory backend, single member, always master",
			"environment", cfg.Cluster.Environment, "service", cfg.Cluster.Service)
		if cfg.Priority == 0 {
			m.log.Warn("priority 0 on the memory backend: this member never leads, and no other member can")
		}
		c, err := memory.New(memory.NewStore(), memory.Config{Cluster: cfg.Cluster, ID: cfg.InstanceID, TTL: cfg.TTL, HistorySize: cfg.HistorySize, Ranking: cfg.Ranking(), Logger: m.base})
		if err != nil {
			return exitUsage, fmt.Errorf("run: %w", err)
		}
		m.coord = c
		m.closers = append(m.closers, func() { c.Close() })
		return 0, nil
	}
	ecfg := etcdConfig(cfg, m.base)
	deadline := time.Now().Add(cfg.Etcd.ConnectTimeout)
	// Each attempt ends at the deadline: CCCTL_ETCD_CONNECT_TIMEOUT bounds
	// the whole start-up, not only the start of the last attempt.
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for attempt := 1; ; attempt++ {
		cli, err := etcd.NewClient(dctx, ecfg)
		if err == nil {
			m.cli = cli
			break
		}
		if errors.Is(err, coordinator.ErrInvalidConfig) {
			return exitUsage, fmt.Errorf("run: %w", err)
		}
		if dctx.Err() != nil {
			return exitBackend, fmt.Errorf("run: %w (gave up after %s)", err, cfg.Etcd.ConnectTimeout)
		}
		m.log.Warn("etcd not reachable yet; retrying", "endpoints", cfg.Etcd.Endpoints, "attempt", attempt, "err", err)
		pause := time.NewTimer(time.Second)
		select {
		case <-dctx.Done():
			pause.Stop()
			return exitBackend, fmt.Errorf("run: %w (gave up after %s)", err, cfg.Etcd.ConnectTimeout)
		case <-pause.C:
		}
	}
	m.closers = append(m.closers, func() { m.cli.Close() })
	c, err := etcd.NewWithClient(ctx, m.cli, ecfg)
	if err != nil {
		return backendCode(err), fmt.Errorf("run: %w", err)
	}
	m.coord = c
	m.closers = append(m.closers, func() { c.Close() })
	m.address = cfg.AdvertiseAddress
	if m.address == "" {
		m.address = localAddress(cfg.Etcd.Endpoints[0])
	}
	m.log.Info("connected to etcd", "endpoints", cfg.Etcd.Endpoints, "environment", cfg.Cluster.Environment, "service", cfg.Cluster.Service)
	return 0, nil
}

func backendCode(err error) int {
	if errors.Is(err, coordinator.ErrInvalidConfig) {
		return exitUsage
	}
	return exitBackend
}

// localAddress returns the local IP address of a connection to endpoint:
// the address other members can reach this one at, on a host with several
// interfaces. It returns "" when it cannot tell.
func localAddress(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// waitFor holds the start-up until every service of WAIT_FOR_SERVICES has
// an active master.
func (m *member) waitFor(ctx context.Context) (int, error) {
	cfg := m.cfg
	if len(cfg.WaitFor) == 0 {
		return 0, nil
	}
	if m.cli == nil {
		return exitUsage, errors.New("run: WAIT_FOR_SERVICES: needs etcd; want ETCD_ENDPOINTS or ETCD_HOST(S) set")
	}
	w, err := waitfor.New(waitfor.Config{
		Services: cfg.WaitFor,
		Timeout:  cfg.WaitForTimeout,
		Logger:   m.log,
		Open: func(ctx context.Context, service string) (waitfor.Cluster, error) {
			ecfg := etcdConfig(cfg, m.base)
			ecfg.Cluster.Service = service
			ecfg.ID = cliID()
			return etcd.NewWithClient(ctx, m.cli, ecfg)
		},
	})
	if err != nil {
		return exitUsage, fmt.Errorf("run: %w", err)
	}
	if err := w.Wait(ctx); err != nil {
		return exitBackend, fmt.Errorf("run: %w", err)
	}
	return 0, nil
}

// lock makes the manager of the filesystem locks: it takes what it can at
// once (with filesystem_locks_required, it waits for them all, in order)
// and waits for the others while the member runs (an actor of the
// controller); the locks are released after the service stopped.
func (m *member) lock(ctx context.Context) (int, error) {
	if len(m.cfg.FilesystemLocks) == 0 {
		return 0, nil
	}
	host, _ := os.Hostname()
	mgr, err := fslock.NewManager(m.cfg.FilesystemLocks, fslock.ManagerOptions{
		Owner:  fslock.Owner{ID: m.cfg.InstanceID, Host: host, PID: os.Getpid(), AcquiredAt: time.Now().UTC()},
		Logger: m.log,
	})
	if err != nil {
		return exitUsage, fmt.Errorf("run: %w", err)
	}
	m.locks = mgr
	m.closers = append(m.closers, func() { mgr.Close() })
	if !m.cfg.FilesystemLocksRequired {
		mgr.Attempt() // what is free now is held before anything starts
		return 0, nil
	}
	if err := mgr.Wait(ctx); err != nil {
		return exitFailure, fmt.Errorf("run: filesystem_locks_required: %w", err)
	}
	return 0, nil
}

// Locks reports the filesystem locks for the controller's status.
func (m *member) Locks() map[string]bool {
	if m.locks == nil {
		return map[string]bool{}
	}
	return m.locks.Status()
}

// run builds the controller and runs it to the end.
func (m *member) run(ctx context.Context, argv []string) (int, error) {
	cfg := m.cfg
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	hooks := map[lifecycle.HookName][]lifecycle.Hook{}
	for name, h := range cfg.Hooks { // names and values checked by config.Load
		hooks[name] = []lifecycle.Hook{lifecycle.WithTimeout(lifecycle.Command(h.Command), h.Timeout)}
	}
	if len(cfg.Templates) > 0 {
		ts := make([]render.Template, len(cfg.Templates))
		for i, t := range cfg.Templates {
			ts[i] = render.Template{Source: t.Source, Destination: t.Destination, Reload: t.Reload}
		}
		r, err := render.New(ts, render.WithLogger(m.log), render.WithReloadOutput(m.out, m.errOut), render.WithReloadGrace(cfg.GracePeriod))
		if err != nil {
			return exitUsage, fmt.Errorf("run: templates: %w", err)
		}
		hooks = r.Install(hooks)
	}

	var ctrl *lifecycle.Controller
	var exts []lifecycle.Extension
	if len(cfg.Jobs) > 0 {
		jobs := make([]schedule.Job, len(cfg.Jobs))
		for i, j := range cfg.Jobs {
			jobs[i] = schedule.Job{Name: j.Name, Schedule: j.Schedule, Role: schedule.Role(j.Role), Command: j.Command,
				Timeout: j.Timeout, Overlap: schedule.Overlap(j.Overlap), Jitter: j.Jitter}
		}
		var claimer coordinator.SlotClaimer
		if _, ok := m.coord.(coordinator.SlotClaimer); ok {
			// The controller's handle, which is replaced after an outage.
			claimer = currentClaimer(func() coordinator.Coordinator { return ctrl.Coordinator() })
		}
		s, err := schedule.New(schedule.Config{Jobs: jobs, Location: cfg.JobsLocation, Claimer: claimer, MemberID: cfg.InstanceID, Logger: m.base,
			Registerer: reg, GracePeriod: cfg.GracePeriod})
		if err != nil {
			return exitUsage, fmt.Errorf("run: %w", err)
		}
		exts = append(exts, jobReporter{s})
	}

	stdout, stderr := m.out, m.errOut
	if cfg.SuppressLogRegexp != nil {
		for _, w := range []*io.Writer{&stdout, &stderr} {
			f, err := logfilter.New(*w, cfg.SuppressLogRegexp, logfilter.Options{Logger: m.log})
			if err != nil {
				return exitFailure, fmt.Errorf("run: %w", err)
			}
			*w = f
			m.closers = append(m.closers, func() { f.Close() })
		}
	}

	host, _ := os.Hostname()
	lc := lifecycle.Config{
		Coordinator: m.coord,
		Member: coordinator.Member{
			Host: host, Address: m.address, Ports: cfg.PortsWhenActive, Version: Version(),
			Priority: cfg.Ranking().EffectivePriority(),
		},
		PositionInterval:            cfg.PositionInterval,
		PositionTimeout:             cfg.PositionTimeout,
		Service:                     lifecycle.Service{Argv: argv},
		Hooks:                       hooks,
		HookTimeout:                 cfg.HookTimeout,
		GracePeriod:                 cfg.GracePeriod,
		PortsWhenActive:             cfg.PortsWhenActive,
		TerminateWhenNoLongerActive: cfg.TerminateWhenNoLongerActive,
		OnLeadershipLost:            cfg.LeadershipLostAction,
		Extensions:                  exts,
		Locks:                       m,
		Registerer:                  reg,
		Logger:                      m.base,
		Stdout:                      stdout,
		Stderr:                      stderr,
		Reap:                        true,
	}
	if m.locks != nil {
		lctx, cancel := context.WithCancel(ctx)
		lc.Actors = append(lc.Actors, lifecycle.Actor{
			Execute:   func() error { return m.locks.Run(lctx) },
			Interrupt: func(error) { cancel() },
		})
	}
	if cfg.HTTPAddress != "" {
		srv, err := httpapi.New(httpapi.Config{
			Address:        cfg.HTTPAddress,
			MaxConnections: cfg.HTTPMaxConnections,
			Gatherer:       reg,
			Logger:         m.log,
			Status: func() httpapi.Status {
				st := ctrl.Status()
				return httpapi.Status{Role: st.Role, State: st.State, Body: st}
			},
			History: m.history,
			Cluster: m.clusterPage,
		})
		if err != nil {
			return exitUsage, fmt.Errorf("run: CCCTL_HTTP_ADDR: %w", err)
		}
		lc.Actors = append(lc.Actors, lifecycle.Actor{Execute: srv.Execute, Interrupt: srv.Interrupt})
		m.closers = append(m.closers, func() { srv.Interrupt(nil) }) // also when New fails
	}
	if cfg.PositionCommand != "" {
		lc.PositionSource = lifecycle.ShellPosition(cfg.PositionCommand)
	} else if cfg.MaximumLag > 0 {
		m.log.Warn("maximum_lag without position_command: this member publishes no position, and may not take over a crash while others publish one")
	}
	ctrl, err := lifecycle.New(lc)
	if err != nil {
		return exitUsage, fmt.Errorf("run: %w", err)
	}
	code, _ := ctrl.Run(ctx) // the controller logs why it stopped
	return code, nil
}

// currentClaimer claims job slots through the member's current handle.
type currentClaimer func() coordinator.Coordinator

// ClaimSlot claims the slot through the current handle.
func (f currentClaimer) ClaimSlot(ctx context.Context, job string, slot time.Time, retention time.Duration) (bool, error) {
	sc, ok := f().(coordinator.SlotClaimer)
	if !ok {
		return false, fmt.Errorf("claim slot %s: the backend cannot claim slots", job)
	}
	return sc.ClaimSlot(ctx, job, slot, retention)
}

// jobReporter adapts the scheduler to the controller: an Extension that
// also reports its jobs for /status.
type jobReporter struct{ *schedule.Scheduler }

// Jobs returns the last run of each job.
func (j jobReporter) Jobs() map[string]lifecycle.JobStatus {
	out := map[string]lifecycle.JobStatus{}
	for name, st := range j.Status() {
		out[name] = lifecycle.JobStatus{LastRun: st.LastRun, Result: string(st.Result)}
	}
	return out
}
