package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ccctl/ccctl/internal/config"
	"github.com/ccctl/ccctl/internal/logfilter"
	"github.com/ccctl/ccctl/internal/proc"
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

// superviseService starts argv, passes its output through, forwards
// signals, stops its process group on SIGTERM or SIGINT (grace period, then
// SIGKILL), and returns its exit code.
func superviseService(cmd *cobra.Command, cfg *config.Config, argv []string) (int, error) {
	if _, err := proc.EnableReaping(); err != nil {
		return exitFailure, fmt.Errorf("run: %w", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if cfg.SuppressLogRegexp != nil {
		for _, w := range []*io.Writer{&stdout, &stderr} {
			f, err := logfilter.New(*w, cfg.SuppressLogRegexp, logfilter.Options{})
			if err != nil {
				return exitFailure, fmt.Errorf("run: %w", err)
			}
			*w = f
			defer f.Close() // after the service's output is copied, or when it did not start
		}
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin = cmd.InOrStdin()
	c.Stdout = stdout
	c.Stderr = stderr
	p, err := proc.Start(c)
	if err != nil {
		return 127, fmt.Errorf("run: %w", err)
	}
	var st proc.Status
	for done := false; !done; {
		select {
		case <-p.Done():
			st = p.Wait()
			done = true
		case sig := <-sigs:
			s := sig.(syscall.Signal)
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				st = p.Stop(cfg.GracePeriod)
				done = true
				break
			}
			p.Signal(s)
		}
	}
	return st.ExitCode(), nil
}
