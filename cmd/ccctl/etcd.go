package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// etcdBinary is the development etcd that ccctl etcd runs. It is a binary of
// its own so that ccctl does not link etcd's server.
const etcdBinary = "ccctl-etcd"

func newEtcdCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "etcd [flags]",
		Short: "Run ccctl-etcd, a single-node etcd for development and demos",
		Long: "etcd runs ccctl-etcd, a separate binary: an embedded single-node etcd server\n" +
			"for development and demos (one node, no TLS, no authentication). ccctl looks\n" +
			"for ccctl-etcd beside its own executable, then on PATH, and replaces itself\n" +
			"with it, passing every argument unchanged; see ccctl etcd --help for its\n" +
			"flags. Build it with: go build -o ccctl-etcd ./cmd/ccctl-etcd",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			path, err := findBeside(etcdBinary)
			if err != nil {
				return withCode(exitUsage, errors.New("etcd: ccctl-etcd not found beside ccctl or on PATH; "+
					"build it: go build -o ccctl-etcd ./cmd/ccctl-etcd "+
					"(or go install github.com/ccctl/ccctl/cmd/ccctl-etcd@latest)"))
			}
			err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
			return fmt.Errorf("etcd: exec %s: %w", path, err)
		},
	}
}

// findBeside returns the path of the executable name in the directory of the
// running ccctl (symlinks resolved), or else on PATH. A PATH entry relative
// to the working directory does not count (exec.ErrDot).
func findBeside(name string) (string, error) {
	if self, err := os.Executable(); err == nil {
		if self, err = filepath.EvalSymlinks(self); err == nil {
			if p, err := exec.LookPath(filepath.Join(filepath.Dir(self), name)); err == nil {
				return p, nil
			}
		}
	}
	return exec.LookPath(name)
}
