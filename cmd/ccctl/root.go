package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccctl/ccctl/internal/cli/config"
	"github.com/ccctl/ccctl/lifecycle"
)

// Exit codes shared by the commands: lifecycle's table, the one source.
const (
	exitOK      = lifecycle.ExitOK
	exitFailure = lifecycle.ExitFailure
	exitUsage   = lifecycle.ExitBadConfig          // bad usage or bad configuration
	exitBackend = lifecycle.ExitBackendUnavailable // the backend could not be reached in time
)

// exitError carries an exit code up to Execute. A nil err exits silently.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that Execute exits with code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// Execute runs the ccctl command line with args and returns the process's
// exit code. Errors are printed to stderr, one line each.
func Execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "ccctl: "+line)
		}
	}
	return code
}

// NewRootCommand builds the ccctl command tree. Each call returns a fresh
// tree with its own flags; nothing is shared between calls.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ccctl",
		Short: "Cluster controller for containers",
		Long: "ccctl supervises a container's service, registers it in etcd, elects one master\n" +
			"per service, runs hooks on role changes, and inspects and steers clusters.\n\n" +
			"Every setting is a flag, an environment variable and a YAML key; see README.md.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withCode(exitUsage, err)
	})
	root.Version = Version()
	root.SetVersionTemplate(versionLine() + "\n")
	addPersistentFlags(root.PersistentFlags())
	backup := newBackupCommand()
	addSettingFlags(backup.PersistentFlags(), backupKeys()...)
	root.AddCommand(
		newRunCommand(),
		newStatusCommand(),
		newHistoryCommand(),
		newLeaderCommand(),
		newSwitchoverCommand(),
		newFailoverCommand(),
		newPauseCommand(true),
		newPauseCommand(false),
		newHealthCommand(),
		backup,
		newEtcdCommand(),
		newVersionCommand(),
	)
	return root
}

// loadConfig reads and validates the configuration; errors exit with 2.
func loadConfig(flags *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(flags)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return cfg, nil
}

// usageArgs wraps a cobra positional-argument check so that a violation
// exits with 2.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return withCode(exitUsage, fmt.Errorf("%s: %w", cmd.CommandPath(), err))
		}
		return nil
	}
}

// newLogger returns the logger of one invocation: text or JSON on w, with
// the member id on every line.
func newLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	return newBaseLogger(w, cfg).With("member", cfg.InstanceID)
}

// newBaseLogger returns the logger of one invocation without the member id,
// for the parts that add it themselves.
func newBaseLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h)
}
