package lifecycle_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/lifecycle"
)

// TestTermMetrics: a member counts the terms that began while it watched,
// by reason, and exports when the current term began.
func TestTermMetrics(t *testing.T) {
	h := newHarness(t)
	regA, regB := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	a := h.start(h.newMember("a", func(c *lifecycle.Config) { c.Registerer = regA }))
	a.waitLines(t, 2)
	b := h.start(h.newMember("b", func(c *lifecycle.Config) { c.Registerer = regB }))
	b.waitLines(t, 2)
	// a's own election was the first term: a counts it; b joined later.
	waitFor(t, "a to count its election", func() bool { return gather(t, regA)[`ccctl_terms_total{reason="election"} 1`] })
	began := float64(h.clk.Now().UnixNano()) / 1e9
	waitFor(t, "b to know when a's term began", func() bool {
		return gather(t, regB)[fmt.Sprintf("ccctl_last_term_change_timestamp_seconds %v", began)]
	})
	if got := gather(t, regB); got["ccctl_terms_total"] {
		t.Errorf("b counted a term that began before it watched: %v", got)
	}
	a.stop(t)
	waitFor(t, "b to count the handover", func() bool { return gather(t, regB)[`ccctl_terms_total{reason="handover"} 1`] })
	b.stop(t)
}
