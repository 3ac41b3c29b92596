package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccctl/ccctl/coordinator"
)

func newFailoverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "failover --to ID [--force]",
		Short: "Make a named member master when the master is gone",
		Long: "failover makes the member --to names master when the cluster has none and\n" +
			"that member may lead by the ranking (priority above 0, no further behind the\n" +
			"highest known position than maximum_lag). It refuses, with exit code 1, while\n" +
			"a master leads (use switchover) or when the member may not lead; --force\n" +
			"overrides both, at the price of the writes the member has not received. It\n" +
			"waits until that member is master, up to --timeout; --wait=false returns at once.",
		Args: usageArgs(cobra.NoArgs),
	}
	to := cmd.Flags().String("to", "", "id of the member that should become master (required)")
	cmd.RegisterFlagCompletionFunc("to", completeMembers)
	force := cmd.Flags().Bool("force", false, "lead that member even past maximum_lag or with priority 0, or while a master leads; it may lose committed writes")
	wait := cmd.Flags().Bool("wait", true, "wait until the member is master")
	timeout := cmd.Flags().Duration("timeout", 60*time.Second, "how long to wait")
	addSettingFlags(cmd.Flags(), rankingKeys()...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *to == "" {
			return withCode(exitUsage, errors.New("failover: --to ID is required: name the member that should lead (ccctl status lists them)"))
		}
		return onCluster(cmd, func(ctx context.Context, h *clusterHandle) error {
			return failover(ctx, h.coord, h.cfg.MaximumLag, failoverRequest{
				to: *to, force: *force, wait: *wait, timeout: *timeout,
				out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(),
			})
		})
	}
	return cmd
}

// failoverRequest is what ccctl failover was asked.
type failoverRequest struct {
	to          string
	force, wait bool
	timeout     time.Duration
	out, errOut io.Writer
}

// failover checks the request against the cluster as coord reads it, with
// maxLag as the ranking's maximum lag, then forces the member to lead
// (coordinator.Failoverer) and waits, if asked, until it does. Its
// refusals exit with 1 and say what overrides them.
func failover(ctx context.Context, coord clusterReader, maxLag int64, r failoverRequest) error {
	refuse := func(format string, args ...any) error {
		return withCode(exitFailure, fmt.Errorf("failover: "+format, args...))
	}
	to := shown(r.to)
	if paused, err := coord.Paused(ctx); err != nil {
		return fmt.Errorf("failover: %w", err)
	} else if paused {
		return refuse("the cluster is paused; run ccctl resume first")
	}
	ms, err := coord.Members(ctx)
	if err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	known := false
	for _, m := range ms {
		known = known || m.ID == r.to
	}
	if !known {
		return refuse("no member %s in the cluster; ccctl status lists the members", to)
	}
	leader, err := coord.Leader(ctx)
	switch {
	case errors.Is(err, coordinator.ErrNoLeader):
	case err != nil:
		return fmt.Errorf("failover: %w", err)
	case leader.ID == r.to:
		_, err := fmt.Fprintf(r.out, "%s is master (token %d)\n", to, leader.Token)
		return err
	case !r.force:
		return refuse("%s is master; use ccctl switchover --to %s for a handover (--force overrides)", shown(leader.ID), to)
	}
	var standing coordinator.Standing
	for _, st := range coordinator.Rank(ms, "", lastPosition(ctx, coord), coordinator.Ranking{MaxLag: maxLag}) {
		if st.ID == r.to {
			standing = st
		}
	}
	if !standing.Eligible && !r.force {
		return refuse("%s may not lead: %s; --force overrides, and loses the writes %s has not received", to, standing.Reason, to)
	}
	if err := forceLeader(ctx, "failover", coord, r.to, r.errOut); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "failover to %s requested\n", to)
	if !r.wait {
		return nil
	}
	return waitLeader(ctx, "failover", coord, r.to, r.timeout, r.out)
}

// forceLeader warns on errOut, then asks the backend to make to lead next
// whatever the ranking says (coordinator.Failoverer).
func forceLeader(ctx context.Context, op string, coord clusterReader, to string, errOut io.Writer) error {
	fo, ok := coord.(coordinator.Failoverer)
	if !ok {
		return withCode(exitFailure, fmt.Errorf("%s: this backend cannot force a member to lead (it does not implement forced failover)", op))
	}
	fmt.Fprintf(errOut, "ccctl: warning: forcing %s to lead whatever its priority and position: a member behind the others (past maximum_lag) loses the writes it has not received, which clients may have seen committed\n", shown(to))
	err := fo.Failover(ctx, to)
	switch {
	case errors.Is(err, coordinator.ErrUnknownMember):
		return withCode(exitFailure, fmt.Errorf("%s: no member %s in the cluster; ccctl status lists the members", op, shown(to)))
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
