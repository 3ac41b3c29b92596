package bench

import (
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(ds)
	if s.N != 100 || s.Min != time.Millisecond || s.Median != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Errorf("Summarize(1..100 ms): got %+v; want n 100, min 1ms, median 50ms, p99 99ms, max 100ms", s)
	}
	if s := Summarize(ds[:50]); s.P99 != s.Max {
		t.Errorf("Summarize of 50 values: got p99 %v; want the maximum %v", s.P99, s.Max)
	}
	if s := Summarize(nil); s != (Summary{}) {
		t.Errorf("Summarize(nil): got %+v; want zero", s)
	}
}

func TestTable(t *testing.T) {
	got := Table([]Row{{What: "handover", System: "ccctl", N: "50", Measured: "12.0 ms", Target: "<= 100 ms", Met: Verdict(true)}})
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 {
		t.Fatalf("Table: got %d lines; want 3:\n%s", len(lines), got)
	}
	for _, l := range lines {
		if len(l) != len(lines[0]) {
			t.Errorf("Table: got line %q of width %d; want width %d", l, len(l), len(lines[0]))
		}
	}
	if !strings.Contains(lines[2], "| yes |") {
		t.Errorf("Table row: got %q; want the verdict yes", lines[2])
	}
}
