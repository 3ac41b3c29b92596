package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccctl/ccctl/coordinator"
)

func newHistoryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history [-o table|json] [--limit N]",
		Short: "Show the last master terms of a cluster and why each began and ended",
		Long: "history lists the recorded master terms of the cluster named by ENVIRONMENT\n" +
			"and SERVICE, oldest first: fencing token, member, when the term began and\n" +
			"ended, why it began (election, handover, switchover, failover) and why it\n" +
			"ended (resigned, switchover, paused, lease expired, fenced). The cluster\n" +
			"keeps the last history_size terms. -o json prints a JSON array of terms.",
		Args: usageArgs(cobra.NoArgs),
	}
	output := cmd.Flags().StringP("output", "o", "table", "output format: table or json")
	limit := cmd.Flags().Int("limit", 0, "only the last N terms (0: every recorded term)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *output != "table" && *output != "json" {
			return withCode(exitUsage, fmt.Errorf("history: -o %q: want table or json", *output))
		}
		if *limit < 0 {
			return withCode(exitUsage, fmt.Errorf("history: --limit %d: want 0 or more", *limit))
		}
		return onCluster(cmd, func(ctx context.Context, h *clusterHandle) error {
			terms, err := h.coord.History(ctx, *limit)
			if err != nil {
				return fmt.Errorf("history: %w", err)
			}
			out := cmd.OutOrStdout()
			if *output == "json" {
				return json.NewEncoder(out).Encode(terms)
			}
			return printHistory(out, terms, time.Now())
		})
	}
	return cmd
}

// printHistory writes terms as a table, oldest first; a term that lasts
// shows how long it has lasted until now.
func printHistory(w io.Writer, terms []coordinator.Term, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tMEMBER\tBEGAN\tREASON\tENDED\tEND REASON\tLASTED")
	for _, t := range terms {
		ended, lasted := "-", now.Sub(t.Began.Time)
		if t.Ended != nil && !t.Ended.Time.IsZero() {
			ended = t.Ended.Time.UTC().Format(time.RFC3339)
			lasted = t.Ended.Time.Sub(t.Began.Time)
		}
		endReason := t.EndReason
		if endReason == "" {
			endReason = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strconv.FormatInt(t.Token, 10), shown(dash(t.Member)),
			t.Began.Time.UTC().Format(time.RFC3339), shown(dash(t.Reason)), ended, shown(endReason), lasted.Round(time.Millisecond))
	}
	return tw.Flush()
}

// history reads the member's cluster's history, for /history and the page.
func (m *member) history(ctx context.Context, limit int) ([]coordinator.Term, error) {
	h, ok := m.coord.(coordinator.Historian)
	if !ok {
		return nil, fmt.Errorf("history: the backend keeps none")
	}
	return h.History(ctx, limit)
}

// pageView is what /cluster serves: the view of `ccctl status -o json`
// and the session TTL (the page scales the lease bars by it).
type pageView struct {
	clusterView
	TTLSeconds float64 `json:"ttl_seconds"`
}

// clusterPage reads the member's cluster for /cluster and the page: with
// etcd, every member's lease as etcd reports it; with the memory backend,
// this member's own.
func (m *member) clusterPage(ctx context.Context) (any, error) {
	leases := func(ctx context.Context) map[string]int64 {
		if m.cli != nil {
			return leasesOf(ctx, m.cli, m.cfg)
		}
		out := map[string]int64{}
		if lr, ok := m.coord.(coordinator.LeaseReporter); ok {
			out[m.cfg.InstanceID] = int64(lr.LeaseRemaining() / time.Second)
		}
		return out
	}
	v, err := readView(ctx, m.cfg, m.coord, leases, "", "")
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return pageView{clusterView: v, TTLSeconds: m.cfg.TTL.Seconds()}, nil
}
