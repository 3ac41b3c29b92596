package bench

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Summary holds order statistics of a sample of durations.
type Summary struct {
	N                     int
	Min, Median, P99, Max time.Duration
}

// Summarize returns the order statistics of ds. P99 is the nearest-rank
// 99th percentile: with fewer than 100 values it is the maximum.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return Summary{
		N:      len(s),
		Min:    s[0],
		Median: s[(len(s)-1)/2],
		P99:    s[rank(len(s), 0.99)],
		Max:    s[len(s)-1],
	}
}

// rank returns the index of the nearest-rank q-quantile of n sorted values.
func rank(n int, q float64) int {
	r := int(q*float64(n)+0.999999) - 1
	return min(max(r, 0), n-1)
}

// Ms formats d in milliseconds with one decimal.
func Ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// Row is one line of the report.
type Row struct {
	What     string // what is measured
	System   string // ccctl, concurrency.Election, a reference
	N        string // sample size
	Measured string // the figure
	Target   string // the target, if any
	Met      string // yes, NO, or empty when there is no target
}

// Verdict returns "yes" when ok, "NO" otherwise.
func Verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// Table formats rows as a Markdown table, columns padded to their widths.
func Table(rows []Row) string {
	head := Row{"measure", "system", "n", "measured", "target", "met"}
	cells := func(r Row) []string { return []string{r.What, r.System, r.N, r.Measured, r.Target, r.Met} }
	w := make([]int, 6)
	for _, r := range append([]Row{head}, rows...) {
		for i, c := range cells(r) {
			w[i] = max(w[i], len(c))
		}
	}
	var b strings.Builder
	line := func(cs []string) {
		b.WriteString("|")
		for i, c := range cs {
			fmt.Fprintf(&b, " %-*s |", w[i], c)
		}
		b.WriteString("\n")
	}
	line(cells(head))
	sep := make([]string, 6)
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	line(sep)
	for _, r := range rows {
		line(cells(r))
	}
	return b.String()
}
