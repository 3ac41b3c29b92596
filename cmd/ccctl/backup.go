package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccctl/ccctl/fslock"
	"github.com/ccctl/ccctl/internal/cli/config"
	"github.com/ccctl/ccctl/retention"
)

func newBackupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Run, list and prune backups by hand",
		Long: "backup stores backups as DESTINATION/NAME/NAME-YYYYMMDDTHHMMSSZ<ext> (UTC) under\n" +
			"BACKUP_DESTINATION_FOLDER and prunes them with the retention policy of the\n" +
			"BACKUP_*_TO_KEEP settings (restic's forget semantics).",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBackupRunCommand(), newBackupListCommand(), newBackupPruneCommand())
	return cmd
}

func owner(cfg *config.Config) fslock.Owner {
	host, _ := os.Hostname()
	return fslock.Owner{ID: cfg.InstanceID, Host: host, PID: os.Getpid(), AcquiredAt: time.Now().UTC()}
}

func newBackupRunCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run NAME [--ext .sql.gz] -- CMD [ARG...]",
		Short: "Run CMD and store what it writes as a new backup of NAME, then prune NAME",
		Long: "run stores what CMD writes to its standard output (or, when CMD creates the\n" +
			"path in $CC_BACKUP_FILE, that file or directory) as a new backup of NAME,\n" +
			"written under a temporary name and renamed only when CMD succeeded; then it\n" +
			"prunes NAME by the retention policy. ccctl writes standard output itself and\n" +
			"checks every write: a full disk fails the backup even when CMD exits 0. A\n" +
			"failed backup leaves every earlier backup in place, prunes nothing and exits 1.",
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return errors.New("want NAME -- CMD [ARG...]")
			}
			return nil
		}),
	}
	ext := cmd.Flags().String("ext", "", "extension of the backup's file name, e.g. .sql.gz")
	timeout := cmd.Flags().Duration("timeout", 0, "bound on CMD's run time (0: none)")
	noPrune := cmd.Flags().Bool("no-prune", false, "store the backup without pruning")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := loadConfig(cmd.Flags())
		if err != nil {
			return err
		}
		ctx, cancel := commandContext(cmd)
		defer cancel()
		opts := retention.BackupOptions{
			Destination: cfg.Backups.Destination,
			Name:        args[0],
			Ext:         *ext,
			Command:     args[1:],
			Stderr:      cmd.ErrOrStderr(),
			Timeout:     *timeout,
			Grace:       cfg.GracePeriod,
			Policy:      cfg.Backups.Policy(),
			SkipPrune:   *noPrune,
			Owner:       owner(cfg),
			Logger:      newLogger(cmd.ErrOrStderr(), cfg),
		}
		if *timeout > 0 && opts.Grace > *timeout {
			opts.Grace = *timeout
		}
		if err := opts.Validate(); err != nil {
			return withCode(exitUsage, fmt.Errorf("backup run: %w", err))
		}
		res, err := retention.RunBackup(ctx, opts)
		if res.Backup.File != "" {
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%d bytes\n", res.Backup.Path, res.Size)
		}
		// RunBackup's errors already start with "backup NAME: ".
		return err
	}
	return cmd
}

func newBackupListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list NAME",
		Short: "List the backups of NAME, newest first",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	output := cmd.Flags().StringP("output", "o", "table", "output format: table or json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *output != "table" && *output != "json" {
			return withCode(exitUsage, fmt.Errorf("backup list: -o %q: want table or json", *output))
		}
		cfg, err := loadConfig(cmd.Flags())
		if err != nil {
			return err
		}
		if err := retention.ValidateName(args[0]); err != nil {
			return withCode(exitUsage, fmt.Errorf("backup list: %w", err))
		}
		bs, err := retention.List(cfg.Backups.Destination, args[0])
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("backup list: %w", err)
		}
		out := cmd.OutOrStdout()
		if *output == "json" {
			type item struct {
				File string    `json:"file"`
				Time time.Time `json:"time"`
				Dir  bool      `json:"dir,omitempty"`
			}
			items := []item{}
			for _, b := range bs {
				items = append(items, item{b.File, b.Time, b.IsDir})
			}
			return json.NewEncoder(out).Encode(items)
		}
		for _, b := range bs {
			fmt.Fprintln(out, b.File)
		}
		return nil
	}
	return cmd
}

func newBackupPruneCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prune NAME [--dry-run] [--now RFC3339] [-o table|json]",
		Short: "Remove the backups of NAME that the retention policy does not keep",
		Long: "prune applies the retention policy to the backups of NAME and removes what it\n" +
			"does not keep; the newest backup is always kept. --dry-run shows what would go\n" +
			"and why the others stay. --now (with --dry-run) plans as of that time: backups\n" +
			"made after it are left out.",
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	dryRun := cmd.Flags().Bool("dry-run", false, "show the plan, remove nothing")
	nowFlag := cmd.Flags().String("now", "", "plan as of this time (RFC 3339); only with --dry-run")
	output := cmd.Flags().StringP("output", "o", "table", "output format: table or json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *output != "table" && *output != "json" {
			return withCode(exitUsage, fmt.Errorf("backup prune: -o %q: want table or json", *output))
		}
		var now time.Time
		if *nowFlag != "" {
			t, err := time.Parse(time.RFC3339, *nowFlag)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("backup prune: --now %q: want an RFC 3339 time such as 2024-01-31T12:00:00Z", *nowFlag))
			}
			if !*dryRun {
				return withCode(exitUsage, errors.New("backup prune: --now: want it only with --dry-run"))
			}
			now = t
		}
		cfg, err := loadConfig(cmd.Flags())
		if err != nil {
			return err
		}
		name := args[0]
		if err := retention.ValidateName(name); err != nil {
			return withCode(exitUsage, fmt.Errorf("backup prune: %w", err))
		}
		ctx, cancel := commandContext(cmd)
		defer cancel()
		var plan retention.PlanResult
		if *dryRun {
			bs, err := retention.List(cfg.Backups.Destination, name)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("backup prune: %w", err)
			}
			if !now.IsZero() {
				kept := bs[:0:0]
				for _, b := range bs {
					if !b.Time.After(now) {
						kept = append(kept, b)
					}
				}
				bs = kept
			}
			plan = retention.Plan(bs, cfg.Backups.Policy())
		} else {
			plan, err = retention.Prune(ctx, retention.PruneOptions{
				Destination: cfg.Backups.Destination, Name: name, Policy: cfg.Backups.Policy(),
				Owner: owner(cfg), Logger: newLogger(cmd.ErrOrStderr(), cfg),
			})
			if err != nil {
				return fmt.Errorf("backup prune: %w", err)
			}
		}
		if plan.Keep == nil {
			plan.Keep = []retention.Kept{}
		}
		if plan.Remove == nil {
			plan.Remove = []retention.Backup{}
		}
		out := cmd.OutOrStdout()
		if *output == "json" {
			return json.NewEncoder(out).Encode(plan)
		}
		verb := "remove"
		if *dryRun {
			verb = "would remove"
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, k := range plan.Keep {
			fmt.Fprintf(tw, "keep\t%s\t%s\n", k.File, strings.Join(k.Reasons, ", "))
		}
		for _, r := range plan.Remove {
			fmt.Fprintf(tw, "%s\t%s\t\n", verb, r.File)
		}
		return tw.Flush()
	}
	return cmd
}
