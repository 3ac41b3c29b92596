package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newHealthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health [--role master|slave]",
		Short: "Exit 0 when the local controller is healthy (for docker HEALTHCHECK)",
		Long: "health asks the controller's HTTP server (CCCTL_HTTP_ADDR) for /health, or\n" +
			"/master or /slave with --role, and exits 0 when it answers 200, 1 otherwise.",
		Args: usageArgs(cobra.NoArgs),
	}
	addSettingFlags(cmd.Flags(), healthKeys()...)
	role := cmd.Flags().String("role", "", "also require this role: master or slave")
	completeWords(cmd, "role", "master", "slave")
	timeout := cmd.Flags().Duration("timeout", 5*time.Second, "how long to wait for the answer")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(cmd.Flags())
		if err != nil {
			return err
		}
		path := "/health"
		switch *role {
		case "":
		case "master", "slave":
			path = "/" + *role
		default:
			return withCode(exitUsage, fmt.Errorf("health: --role %q: want master or slave", *role))
		}
		if cfg.HTTPAddress == "" {
			return withCode(exitUsage, errors.New("health: CCCTL_HTTP_ADDR is not set; want the address of the controller's HTTP server"))
		}
		host, port, _ := net.SplitHostPort(cfg.HTTPAddress)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url := "http://" + net.JoinHostPort(host, port) + path
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("health: %w", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(body)))
		if resp.StatusCode != http.StatusOK {
			return withCode(exitFailure, fmt.Errorf("health: GET %s: %s", path, resp.Status))
		}
		return nil
	}
	return cmd
}
