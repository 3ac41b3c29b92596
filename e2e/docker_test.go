//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const (
	// label marks every container, network and image the tests create.
	label = "io.ccctl.e2e"
	// namePrefix starts the name of every container and network.
	namePrefix = "ccctl-e2e-"
	// dockerTimeout bounds one docker command.
	dockerTimeout = 2 * time.Minute
)

// docker runs the docker CLI and returns its trimmed standard output.
func docker(args ...string) (string, error) {
	return dockerTimed(dockerTimeout, args...)
}

func dockerTimed(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	if err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// mustDocker runs docker and fails the test when it fails.
func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := docker(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// engineReachable reports whether a Docker engine answers, and why not.
func engineReachable() error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("no docker CLI: %v", err)
	}
	v, err := dockerTimed(20*time.Second, "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return err
	}
	if v == "" {
		return fmt.Errorf("docker version: no server version")
	}
	return nil
}

// requireDocker says whether a missing engine fails the run.
func requireDocker() bool { return os.Getenv("CCCTL_E2E_DOCKER") == "1" }

// removeLabelled removes every container and network carrying the label:
// the leftovers of a crashed run, or this run's at its end.
func removeLabelled() error {
	ids, err := docker("ps", "-aq", "--filter", "label="+label)
	if err != nil {
		return err
	}
	if ids != "" {
		if _, err := docker(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			return err
		}
	}
	nets, err := docker("network", "ls", "-q", "--filter", "label="+label)
	if err != nil {
		return err
	}
	if nets != "" {
		if _, err := docker(append([]string{"network", "rm"}, strings.Fields(nets)...)...); err != nil {
			return err
		}
	}
	return nil
}

// removeImages removes the images the tests built, and the dangling layers
// their rebuilds left.
func removeImages() error {
	ids, err := docker("images", "-q", "--filter", "label="+label)
	if err != nil {
		return err
	}
	if ids == "" {
		return nil
	}
	_, err = docker(append([]string{"rmi", "-f"}, uniq(strings.Fields(ids))...)...)
	return err
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
