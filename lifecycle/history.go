package lifecycle

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/coordinator"
)

// Reading a new term's record for the metrics: the backend may record a
// term's beginning a moment after the term began, so the record is asked
// for up to termReadTries times, termReadPause apart.
const (
	termReadTries = 20
	termReadPause = 250 * time.Millisecond
)

// termMetrics are the collectors of the cluster's terms, as this member
// saw them begin.
type termMetrics struct {
	terms      *prometheus.CounterVec
	lastChange prometheus.Gauge
}

func newTermMetrics() termMetrics {
	return termMetrics{
		terms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ccctl_terms_total", Help: "Master terms of the cluster that began while this member watched, by why they began (election, handover, switchover, failover).",
		}, []string{"reason"}),
		lastChange: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ccctl_last_term_change_timestamp_seconds", Help: "Unix time at which the cluster's current master term began, as its history records it (0 when unknown).",
		}),
	}
}

// observeTerm reads the history record of the term with token, which this
// member's watch reported, in the background: it sets the time of the
// last term change, and counts the term by reason unless it began before
// the watch did (initial: it is part of the watch's initial state). A
// backend without a history leaves the metrics at zero.
func (l *loop) observeTerm(token int64, initial bool) {
	c := l.c
	h, ok := c.coord.(coordinator.Historian)
	if !ok || token <= l.observed {
		return
	}
	l.observed = token
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for try := 0; try < termReadTries; try++ {
			if try > 0 {
				t := c.cfg.Clock.NewTimer(termReadPause)
				select {
				case <-l.quit:
					t.Stop()
					return
				case <-t.C():
				}
			}
			ctx, cancel := context.WithTimeout(l.bctx, publishTimeout)
			terms, err := h.History(ctx, 3)
			cancel()
			if err != nil {
				continue
			}
			for _, t := range terms {
				if t.Token != token {
					continue
				}
				c.metrics.termsSeen.lastChange.Set(float64(t.Began.Time.UnixNano()) / 1e9)
				if !initial {
					c.metrics.termsSeen.terms.WithLabelValues(t.Reason).Inc()
				}
				return
			}
		}
		c.log.Debug("history: no record of the term", "token", token)
	}()
}
