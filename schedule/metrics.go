package schedule

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are supercronic's metrics under the ccctl namespace, labelled by
// job name.
type metrics struct {
	running    *prometheus.GaugeVec
	executions *prometheus.CounterVec
	successful *prometheus.CounterVec
	failed     *prometheus.CounterVec
	deadline   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"job"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ccctl", Name: name, Help: help}, labels)
	}
	m := &metrics{
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ccctl", Name: "currently_running", Help: "Scheduled job runs in progress.",
		}, labels),
		executions: counter("executions", "Scheduled job runs started."),
		successful: counter("successful_executions", "Scheduled job runs that succeeded."),
		failed:     counter("failed_executions", "Scheduled job runs that failed, timed out or were cancelled."),
		deadline:   counter("deadline_exceeded", "Scheduled job runs stopped by their timeout."),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ccctl", Name: "cron_execution_time_seconds", Help: "Duration of scheduled job runs.",
			Buckets: []float64{1, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, labels),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.running, m.executions, m.successful, m.failed, m.deadline, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) started(j *job) {
	m.executions.WithLabelValues(j.Name).Inc()
	m.running.WithLabelValues(j.Name).Inc()
}

func (m *metrics) finished(j *job, res Result, d time.Duration) {
	m.running.WithLabelValues(j.Name).Dec()
	m.duration.WithLabelValues(j.Name).Observe(d.Seconds())
	if res == ResultSuccess {
		m.successful.WithLabelValues(j.Name).Inc()
		return
	}
	m.failed.WithLabelValues(j.Name).Inc()
	if res == ResultDeadlineExceeded {
		m.deadline.WithLabelValues(j.Name).Inc()
	}
}
