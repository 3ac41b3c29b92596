package lifecycle

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/coordinator"
)

// Status is a snapshot of the controller, served by the HTTP server as
// /status.
type Status struct {
	ID          string               `json:"id"`
	Environment string               `json:"environment"`
	Service     string               `json:"service"`
	Role        coordinator.Role     `json:"role"`
	State       coordinator.State    `json:"state"`
	Master      string               `json:"master"`
	Token       int64                `json:"token"`
	Paused      bool                 `json:"paused"`
	Locks       map[string]bool      `json:"locks"`
	Jobs        map[string]JobStatus `json:"jobs"`
}

// JobStatus is the last run of a scheduled job. LastRun is zero, and left
// out of the JSON, for a job that never ran.
type JobStatus struct {
	LastRun time.Time `json:"last_run,omitzero"`
	Result  string    `json:"result"`
}

// JobReporter is implemented by extensions that run jobs; Status merges
// what every such extension reports.
type JobReporter interface {
	// Jobs returns the last run of each job, by name.
	Jobs() map[string]JobStatus
}

// LockReporter reports filesystem locks for Status.
type LockReporter interface {
	// Locks returns, for each lock path, whether this member holds it.
	Locks() map[string]bool
}

// Status returns a snapshot of the controller. It is safe to call at any
// time, from any goroutine.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	st.Locks = map[string]bool{}
	if c.cfg.Locks != nil {
		for k, v := range c.cfg.Locks.Locks() {
			st.Locks[k] = v
		}
	}
	st.Jobs = map[string]JobStatus{}
	for _, e := range c.cfg.Extensions {
		if r, ok := e.(JobReporter); ok {
			for k, v := range r.Jobs() {
				st.Jobs[k] = v
			}
		}
	}
	return st
}

func (c *Controller) setStatus(f func(*Status)) {
	c.mu.Lock()
	f(&c.status)
	c.mu.Unlock()
}

// metrics are the controller's Prometheus collectors.
type metrics struct {
	isMaster     prometheus.Gauge
	token        prometheus.Gauge
	transitions  prometheus.Counter
	hookRuns     *prometheus.CounterVec
	hookFailures *prometheus.CounterVec
	reopened     prometheus.Counter
	leaseLeft    prometheus.Collector
	termsSeen    termMetrics
}

// newMetrics makes the collectors; current returns the member's current
// handle, for the lease left.
func newMetrics(current func() coordinator.Coordinator) *metrics {
	m := &metrics{
		isMaster: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ccctl_is_master", Help: "1 when this member is master, else 0.",
		}),
		token: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ccctl_fencing_token", Help: "Fencing token of the current master's term, 0 when none is known.",
		}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ccctl_transitions_total", Help: "Role transitions of this member (slave to master and master to slave).",
		}),
		hookRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ccctl_hook_runs_total", Help: "Hooks run, by hook name.",
		}, []string{"hook"}),
		hookFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ccctl_hook_failures_total", Help: "Hooks that failed or timed out, by hook name.",
		}, []string{"hook"}),
		reopened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ccctl_sessions_reopened_total", Help: "New sessions opened after a session was lost (outages ridden through).",
		}),
		termsSeen: newTermMetrics(),
	}
	if _, ok := current().(coordinator.LeaseReporter); ok {
		m.leaseLeft = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ccctl_lease_seconds_left", Help: "Seconds the session's lease is known to last without another renewal.",
		}, func() float64 {
			if lr, ok := current().(coordinator.LeaseReporter); ok {
				return lr.LeaseRemaining().Seconds()
			}
			return 0
		})
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.isMaster, m.token, m.transitions, m.hookRuns, m.hookFailures, m.reopened,
		m.termsSeen.terms, m.termsSeen.lastChange}
	if m.leaseLeft != nil {
		cs = append(cs, m.leaseLeft)
	}
	return cs
}
