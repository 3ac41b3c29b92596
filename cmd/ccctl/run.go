package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/internal/cli/config"
	"github.com/ccctl/ccctl/internal/cli/logfilter"
	"github.com/ccctl/ccctl/lifecycle"
)

func newRunCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [flags] -- CMD [ARG...]",
		Short: "Run the service under the controller (the container's entrypoint)",
		Long: "run registers this member, elects the master, runs the hooks and supervises\n" +
			"CMD. With no etcd configured it uses the memory backend: a single member,\n" +
			"always master. It exits with the service's exit code (128+N when it died of\n" +
			"signal N), 2 for bad configuration, 3 when the backend could not be reached\n" +
			"in time, 4 when an init hook failed, 5 when leadership was lost and the\n" +
			"leadership-lost action is exit.",
		Args: usageArgs(cobra.MinimumNArgs(1)),
	}
	addRunFlags(cmd.Flags())
	standalone := cmd.Flags().Bool("standalone", false, "run the service with no coordination (no backend, no hooks)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := loadConfig(cmd.Flags())
		if err != nil {
			return err
		}
		// ccctl's own secrets are read; no child inherits them, nor finds
		// them in /proc/<pid>/environ.
		if err := hideEnv(config.StrippedEnv()); err != nil {
			newLogger(cmd.ErrOrStderr(), cfg).Warn("the secrets stay readable in /proc/<pid>/environ of ccctl", "error", err)
		}
		code, err := runMember(cmd, cfg, args, *standalone)
		if err != nil || code != 0 {
			return withCode(code, err)
		}
		return nil
	}
	return cmd
}

// superviseService runs argv on the controller's own supervisor, with no
// coordination: a member of the memory backend (a cluster of one, always
// master) with no hooks, jobs, locks or HTTP server. The service is started,
// its output passed through (and filtered), signals forwarded as in a
// member, its process group stopped on SIGTERM or SIGINT (grace period,
// then SIGKILL) and its exit code returned, exactly as under ccctl run.
func superviseService(cmd *cobra.Command, cfg *config.Config, argv []string, log *slog.Logger) (int, error) {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if cfg.SuppressLogRegexp != nil {
		for _, w := range []*io.Writer{&stdout, &stderr} {
			f, err := logfilter.New(*w, cfg.SuppressLogRegexp, logfilter.Options{Logger: log})
			if err != nil {
				return exitFailure, fmt.Errorf("run: %w", err)
			}
			*w = f
			defer f.Close() // after the service's output is copied, or when it did not start
		}
	}
	co, err := memory.New(memory.NewStore(), memory.Config{Cluster: cfg.Cluster, ID: cfg.InstanceID, TTL: cfg.TTL, Logger: log})
	if err != nil {
		return exitUsage, fmt.Errorf("run: %w", err)
	}
	ctrl, err := lifecycle.New(lifecycle.Config{
		Coordinator: co,
		Service:     lifecycle.Service{Argv: argv, Stdin: cmd.InOrStdin()},
		GracePeriod: cfg.GracePeriod,
		Logger:      log,
		Stdout:      stdout,
		Stderr:      stderr,
		Reap:        true,
	})
	if err != nil {
		co.Close()
		return exitUsage, fmt.Errorf("run: %w", err)
	}
	return ctrl.Run(cmd.Context())
}
