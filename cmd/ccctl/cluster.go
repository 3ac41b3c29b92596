package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/backends/etcd"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/config"
)

// clusterHandle is the CLI's own handle on a cluster: an observer, with no
// session and no lease (the CLI only reads, and writes what needs no lease
// of its own), so that an etcd outage does not end it.
type clusterHandle struct {
	cfg   *config.Config
	cli   *clientv3.Client
	coord *etcd.Observer
}

// openCluster connects to the configured etcd. A missing etcd configuration
// exits with 2, an etcd that does not answer in time with 3.
func openCluster(ctx context.Context, cmd *cobra.Command) (*clusterHandle, error) {
	cfg, err := loadConfig(cmd.Flags())
	if err != nil {
		return nil, err
	}
	name := cmd.Name()
	if !cfg.UsesEtcd() {
		return nil, withCode(exitUsage, fmt.Errorf("%s: no etcd configured; want ETCD_ENDPOINTS or ETCD_HOST(S)", name))
	}
	// The backend's routine lines (session opened, switchover requested)
	// are not the command's output: only warnings and errors are shown.
	quiet := *cfg
	quiet.LogLevel = max(cfg.LogLevel, slog.LevelWarn)
	ecfg := etcdConfig(cfg, newBaseLogger(cmd.ErrOrStderr(), &quiet))
	ecfg.ID = cliID()
	cli, err := etcd.NewClient(ctx, ecfg)
	if err != nil {
		return nil, backendError(name, err)
	}
	coord, err := etcd.NewObserver(cli, ecfg)
	if err != nil {
		cli.Close()
		return nil, backendError(name, err)
	}
	return &clusterHandle{cfg: cfg, cli: cli, coord: coord}, nil
}

// etcdConfig maps the settings to the etcd backend's configuration.
func etcdConfig(cfg *config.Config, log *slog.Logger) etcd.Config {
	return etcd.Config{
		Endpoints:   cfg.Etcd.Endpoints,
		DialTimeout: cfg.Etcd.DialTimeout,
		CACert:      cfg.Etcd.CACert,
		Cert:        cfg.Etcd.Cert,
		Key:         cfg.Etcd.Key,
		Username:    cfg.Etcd.Username,
		Password:    cfg.Etcd.Password,
		Prefix:      cfg.Etcd.Prefix,
		Cluster:     cfg.Cluster,
		ID:          cfg.InstanceID,
		TTL:         cfg.TTL,
		HistorySize: cfg.HistorySize,
		Ranking:     cfg.Ranking(),
		Logger:      log,
	}
}

func backendError(op string, err error) error {
	switch {
	case errors.Is(err, coordinator.ErrInvalidConfig):
		return withCode(exitUsage, fmt.Errorf("%s: %w", op, err))
	case errors.Is(err, coordinator.ErrUnavailable):
		return withCode(exitBackend, fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// cliID is the id of the CLI's handle in log lines: never a member's.
func cliID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "ccctl-cli-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
}

// Close ends the CLI's watches and its connection.
func (h *clusterHandle) Close() {
	h.coord.Close()
	h.cli.Close()
}

// onCluster opens the configured cluster with cmd's context, cancelled on
// SIGINT or SIGTERM, runs f with them, and closes the cluster.
func onCluster(cmd *cobra.Command, f func(ctx context.Context, h *clusterHandle) error) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	h, err := openCluster(ctx, cmd)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(ctx, h)
}

// commandContext is the command's context, cancelled on SIGINT or SIGTERM.
func commandContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
}

// memberView is one member as status shows it.
type memberView struct {
	coordinator.Member
	Master      bool    `json:"master"`
	UptimeSec   float64 `json:"uptime_seconds"`
	LeaseLeftSc int64   `json:"lease_seconds_left"`
}

// clusterView is what status shows.
type clusterView struct {
	Environment string       `json:"environment"`
	Service     string       `json:"service"`
	Master      string       `json:"master"`
	Token       int64        `json:"token"`
	Paused      bool         `json:"paused"`
	Members     []memberView `json:"members"`
	// Vacancy says, when there is no master, who takes over or why
	// nobody does; Standings are the members as coordinator.Rank orders
	// them for the vacancy, with the configured maximum_lag.
	Vacancy   string                 `json:"vacancy,omitempty"`
	Standings []coordinator.Standing `json:"standings,omitempty"`
}

// view reads the cluster, keeping the members that pass the filters.
func (h *clusterHandle) view(ctx context.Context, role, state string) (clusterView, error) {
	return readView(ctx, h.cfg, h.coord, func(ctx context.Context) map[string]int64 { return leasesOf(ctx, h.cli, h.cfg) }, role, state)
}

// clusterReader is what readView reads a cluster through: a member's
// coordinator or an observer with no lease.
type clusterReader interface {
	Leader(ctx context.Context) (coordinator.Leader, error)
	Paused(ctx context.Context) (bool, error)
	Members(ctx context.Context) ([]coordinator.Member, error)
}

// readView reads the cluster through coord, with the seconds left on each
// member's lease from leases, keeping the members that pass the filters.
func readView(ctx context.Context, cfg *config.Config, coord clusterReader, leases func(context.Context) map[string]int64, role, state string) (clusterView, error) {
	v := clusterView{Environment: cfg.Cluster.Environment, Service: cfg.Cluster.Service, Members: []memberView{}}
	leader, err := coord.Leader(ctx)
	if err != nil && !errors.Is(err, coordinator.ErrNoLeader) {
		return v, err
	}
	v.Master, v.Token = leader.ID, leader.Token
	if v.Paused, err = coord.Paused(ctx); err != nil {
		return v, err
	}
	ms, err := coord.Members(ctx)
	if err != nil {
		return v, err
	}
	if v.Master == "" {
		v.Standings = coordinator.Rank(ms, "", lastPosition(ctx, coord), coordinator.Ranking{MaxLag: cfg.MaximumLag})
		v.Vacancy = vacancy(v.Standings, v.Paused)
	}
	left := leases(ctx)
	now := time.Now()
	for _, m := range ms {
		if role != "" && string(m.Role) != role || state != "" && string(m.State) != state {
			continue
		}
		if m.Ports == nil {
			m.Ports = []int{} // "ports":[], whoever wrote the record
		}
		mv := memberView{Member: m, Master: m.ID == leader.ID, LeaseLeftSc: -1}
		if !m.StartedAt.IsZero() {
			mv.UptimeSec = now.Sub(m.StartedAt).Truncate(time.Second).Seconds()
		}
		if ttl, ok := left[m.ID]; ok {
			mv.LeaseLeftSc = ttl
		}
		v.Members = append(v.Members, mv)
	}
	return v, nil
}

// lastPosition returns the position the last master published, when the
// backend keeps it (coordinator.LastPositioner), else nil.
func lastPosition(ctx context.Context, coord any) *int64 {
	lp, ok := coord.(coordinator.LastPositioner)
	if !ok {
		return nil
	}
	p, err := lp.LastPosition(ctx)
	if err != nil {
		return nil
	}
	return p
}

// vacancy says who takes over a vacancy, as standings rank the members,
// or why nobody does.
func vacancy(standings []coordinator.Standing, paused bool) string {
	var eligible, others []string
	for _, st := range standings {
		if st.Eligible {
			eligible = append(eligible, st.ID)
		} else {
			others = append(others, st.ID+": "+st.Reason)
		}
	}
	switch {
	case len(standings) == 0:
		return "no master: no member is registered"
	case paused:
		return "no master: the cluster is paused; ccctl resume lets a member take over"
	case len(eligible) == 0:
		return "no master: no eligible member (" + strings.Join(others, "; ") + "); ccctl failover --to ID to force one"
	}
	s := "no master yet: " + eligible[0] + " is the best candidate"
	if len(eligible) > 1 {
		s += " (then " + strings.Join(eligible[1:], ", ") + ")"
	}
	if len(others) > 0 {
		s += "; not eligible: " + strings.Join(others, "; ")
	}
	return s
}

// leasesOf returns the seconds left on each member record's lease, as etcd
// reports them; members whose lease could not be read, or whose record is
// not one (etcd.Layout.DecodeMember), are missing.
func leasesOf(ctx context.Context, cli *clientv3.Client, cfg *config.Config) map[string]int64 {
	out := map[string]int64{}
	layout, err := etcd.NewLayout(cfg.Etcd.Prefix, cfg.Cluster)
	if err != nil {
		return out
	}
	resp, err := cli.Get(ctx, layout.Members(), clientv3.WithPrefix())
	if err != nil {
		return out
	}
	for _, kv := range resp.Kvs {
		m, err := layout.DecodeMember(kv)
		if err != nil {
			continue
		}
		t, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
		if err == nil && t.TTL >= 0 {
			out[m.ID] = t.TTL
		}
	}
	return out
}

func newStatusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [-o table|json] [--watch] [--service S] [--role R] [--state S]",
		Short: "Show the members of a cluster",
		Long: "status lists the members of the cluster named by ENVIRONMENT and SERVICE (or\n" +
			"--environment and --service): id, host, role, state, ports, fencing token,\n" +
			"uptime and lease left. --watch redraws whenever the cluster changes and every\n" +
			"--interval, and rides through etcd outages.",
		Args: usageArgs(cobra.NoArgs),
	}
	output := cmd.Flags().StringP("output", "o", "table", "output format: table or json")
	watch := cmd.Flags().BoolP("watch", "w", false, "redraw on every change until interrupted")
	role := cmd.Flags().String("role", "", "only members of this role: master or slave")
	state := cmd.Flags().String("state", "", "only members in this state")
	interval := cmd.Flags().Duration("interval", time.Second, "with --watch, redraw at least this often")
	addSettingFlags(cmd.Flags(), rankingKeys()...)
	completeWords(cmd, "output", "table", "json")
	completeWords(cmd, "role", string(coordinator.RoleMaster), string(coordinator.RoleSlave))
	completeWords(cmd, "state", states()...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *output != "table" && *output != "json" {
			return withCode(exitUsage, fmt.Errorf("status: -o %q: want table or json", *output))
		}
		if *role != "" && *role != string(coordinator.RoleMaster) && *role != string(coordinator.RoleSlave) {
			return withCode(exitUsage, fmt.Errorf("status: --role %q: want master or slave", *role))
		}
		if *state != "" && !knownState(*state) {
			return withCode(exitUsage, fmt.Errorf("status: --state %q: want one of starting, initializing, running, active, stopping, stopped, failed", *state))
		}
		if *interval <= 0 {
			return withCode(exitUsage, fmt.Errorf("status: --interval %s: want more than 0", *interval))
		}
		return onCluster(cmd, func(ctx context.Context, h *clusterHandle) error {
			out := cmd.OutOrStdout()
			show := func(ctx context.Context) error {
				v, err := h.view(ctx, *role, *state)
				if err != nil {
					return fmt.Errorf("status: %w", err)
				}
				if *output == "json" {
					return json.NewEncoder(out).Encode(v)
				}
				return printTable(out, v, time.Now())
			}
			if !*watch {
				return show(ctx)
			}
			return watchCluster(ctx, h, out, *output == "table", *interval, h.cfg.Etcd.DialTimeout, show)
		})
	}
	return cmd
}

func knownState(s string) bool {
	for _, st := range states() {
		if s == st {
			return true
		}
	}
	return false
}

// states are the states a member can be in, in lifecycle order.
func states() []string {
	return []string{
		string(coordinator.StateStarting), string(coordinator.StateInitializing), string(coordinator.StateRunning),
		string(coordinator.StateActive), string(coordinator.StateStopping), string(coordinator.StateStopped),
		string(coordinator.StateFailed),
	}
}

// completeWords makes the shell complete the value of cmd's flag name with
// words.
func completeWords(cmd *cobra.Command, name string, words ...string) {
	cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
}

// completeMembers completes a member id: the ids registered in the cluster
// the command's settings name, none when they cannot be read in time.
func completeMembers(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd.SetContext(ctx) // a shell waits for its completions: bounded
	var ids []cobra.Completion
	onCluster(cmd, func(ctx context.Context, h *clusterHandle) error {
		ms, err := h.coord.Members(ctx)
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return err
	})
	return ids, cobra.ShellCompDirectiveNoFileComp
}

// watchCluster calls show at once, after every batch of changes and every
// interval (so that uptimes and leases move), until ctx is done (exit 0).
// It rides through etcd outages: a read that fails prints one line and the
// next redraw tries again; the watch resumes when etcd is back.
func watchCluster(ctx context.Context, h *clusterHandle, out io.Writer, table bool, interval, timeout time.Duration, show func(context.Context) error) error {
	events, err := h.coord.Watch(ctx)
	if err != nil {
		return backendError("status", err)
	}
	tty := isTerminal(out)
	redraw := func() {
		if table {
			if tty {
				fmt.Fprint(out, "\033[H\033[2J")
			} else {
				fmt.Fprintf(out, "--- %s\n", time.Now().UTC().Format(time.RFC3339))
			}
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := show(rctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(out, "status: %v; trying again\n", err)
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// The stream starts with the current state; wait for it to settle.
	pending := true
	settle := time.NewTimer(100 * time.Millisecond)
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return withCode(exitBackend, errors.New("status: watch ended"))
			}
			pending = true
			settle.Reset(50 * time.Millisecond)
		case <-settle.C:
			if pending {
				pending = false
				redraw()
				tick.Reset(interval)
			}
		case <-tick.C:
			if !pending {
				redraw()
			}
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printTable(w io.Writer, v clusterView, now time.Time) error {
	master := v.Master
	if master == "" {
		master = "none"
	}
	paused := ""
	if v.Paused {
		paused = "  PAUSED"
	}
	fmt.Fprintf(w, "cluster %s/%s  master: %s  token: %d%s\n", shown(v.Environment), shown(v.Service), shown(master), v.Token, paused)
	if v.Vacancy != "" {
		fmt.Fprintln(w, shown(v.Vacancy))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tADDRESS\tROLE\tSTATE\tPRIORITY\tPOSITION\tPORTS\tTOKEN\tUPTIME\tLEASE")
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].ID < v.Members[j].ID })
	for _, m := range v.Members {
		ports := make([]string, len(m.Ports))
		for i, p := range m.Ports {
			ports[i] = strconv.Itoa(p)
		}
		role := string(m.Role)
		if m.Master {
			role += "*"
		}
		token, lease, position := "-", "-", "-"
		if m.Position != nil {
			position = strconv.FormatInt(*m.Position, 10)
		}
		if m.Token != 0 {
			token = strconv.FormatInt(m.Token, 10)
		}
		if m.LeaseLeftSc >= 0 {
			lease = strconv.FormatInt(m.LeaseLeftSc, 10) + "s"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", shown(m.ID), shown(dash(m.Host)), shown(dash(m.Address)), shown(dash(role)), shown(dash(string(m.State))),
			m.Priority, position, dash(strings.Join(ports, ",")), token, time.Duration(m.UptimeSec)*time.Second, lease)
	}
	return tw.Flush()
}

// shown is s as a table shows it: characters that are not printable
// (control characters, escape sequences, tabs, invalid UTF-8) escaped as Go
// does (\x1b, \t), so that a record written by hand cannot drive the
// terminal or break the columns. A printable s is shown as it is.
func shown(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || r != ' ' && !unicode.IsPrint(r) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "leader",
		Short: "Print the master's id (exit 1 when there is none)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return onCluster(cmd, func(ctx context.Context, h *clusterHandle) error {
				l, err := h.coord.Leader(ctx)
				if errors.Is(err, coordinator.ErrNoLeader) {
					return withCode(exitFailure, fmt.Errorf("leader: cluster %s has no master", h.cfg.Cluster))
				}
				if err != nil {
					return fmt.Errorf("leader: %w", err)
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), l.ID)
				return err
			})
		},
	}
}

func newSwitchoverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "switchover [--to ID [--force]]",
		Short: "Ask the master to hand over to another member",
		Long: "switchover asks the master to hand over to the member --to names, or, without\n" +
			"--to, to the best other member by the ranking (position, priority). It waits\n" +
			"until that member is master, up to --timeout; --wait=false returns at once.\n" +
			"A member of priority 0 is a target only with --force, which forces it past\n" +
			"the ranking as ccctl failover --force does.",
		Args: usageArgs(cobra.NoArgs),
	}
	to := cmd.Flags().String("to", "", "id of the member that should become master")
	cmd.RegisterFlagCompletionFunc("to", completeMembers)
	force := cmd.Flags().Bool("force", false, "with --to: hand over to that member even if its priority is 0 or it is behind by more than maximum_lag")
	wait := cmd.Flags().Bool("wait", true, "wait until the target is master")
	timeout := cmd.Flags().Duration("timeout", 60*time.Second, "how long to wait")
	addSettingFlags(cmd.Flags(), rankingKeys()...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *force && *to == "" {
			return withCode(exitUsage, errors.New("switchover: --force needs --to ID: only a member named by the operator is forced"))
		}
		return onCluster(cmd, func(ctx context.Context, h *clusterHandle) error {
			// A paused cluster makes no role change: say so rather than
			// wait for a handover that cannot come.
			if paused, err := h.coord.Paused(ctx); err != nil {
				return fmt.Errorf("switchover: %w", err)
			} else if paused {
				return withCode(exitFailure, errors.New("switchover: the cluster is paused; run ccctl resume first"))
			}
			out := cmd.OutOrStdout()
			var target string
			if *force {
				if err := forceLeader(ctx, "switchover", h.coord, *to, cmd.ErrOrStderr()); err != nil {
					return err
				}
				target = *to
			} else {
				if *to != "" {
					if err := checkTarget(ctx, h.coord, *to); err != nil {
						return err
					}
				}
				var err error
				target, err = h.coord.Switchover(ctx, *to)
				if errors.Is(err, coordinator.ErrIneligible) {
					return withCode(exitFailure, fmt.Errorf("switchover: %s: %w; --force overrides", *to, err))
				}
				if err != nil {
					return fmt.Errorf("switchover: %w", err)
				}
			}
			fmt.Fprintf(out, "switchover to %s requested\n", target)
			if !*wait {
				return nil
			}
			return waitLeader(ctx, "switchover", h.coord, target, *timeout, out)
		})
	}
	return cmd
}

// checkTarget refuses a switchover to a member of priority 0, which never
// leads unless forced.
func checkTarget(ctx context.Context, coord clusterReader, to string) error {
	ms, err := coord.Members(ctx)
	if err != nil {
		return fmt.Errorf("switchover: %w", err)
	}
	for _, m := range ms {
		if m.ID == to && m.Priority == 0 {
			return withCode(exitFailure, fmt.Errorf("switchover: %s has priority 0 and never leads; --force overrides", shown(to)))
		}
	}
	return nil
}

// waitLeader waits until target leads, up to timeout, and says so on out.
func waitLeader(ctx context.Context, op string, coord clusterReader, target string, timeout time.Duration, out io.Writer) error {
	wctx, wcancel := context.WithTimeout(ctx, timeout)
	defer wcancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		l, err := coord.Leader(wctx)
		if err == nil && l.ID == target {
			_, err := fmt.Fprintf(out, "%s is master (token %d)\n", l.ID, l.Token)
			return err
		}
		select {
		case <-wctx.Done():
			return withCode(exitFailure, fmt.Errorf("%s: %s is not master after %s", op, shown(target), timeout))
		case <-tick.C:
		}
	}
}

func newPauseCommand(pause bool) *cobra.Command {
	use, short := "pause", "Suspend automatic role changes in the cluster (maintenance)"
	if !pause {
		use, short = "resume", "Allow automatic role changes again"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return onCluster(cmd, func(ctx context.Context, h *clusterHandle) error {
				op, done := h.coord.Pause, "paused"
				if !pause {
					op, done = h.coord.Resume, "resumed"
				}
				if err := op(ctx); err != nil {
					return fmt.Errorf("%s: %w", use, err)
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "cluster %s %s\n", h.cfg.Cluster, done)
				return err
			})
		},
	}
}
