package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/embed"
)

func newEtcdCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run a single-node etcd for development and demos",
		Long: "etcd runs an embedded single-node etcd server until SIGINT or SIGTERM. It is\n" +
			"meant for development and demos: one node, no TLS, no authentication. Use a\n" +
			"real etcd cluster in production. etcd's own log goes to DATA_DIR/etcd.log.",
		Args: usageArgs(cobra.NoArgs),
	}
	dataDir := cmd.Flags().String("data-dir", "ccctl-etcd.data", "directory of etcd's data")
	listen := cmd.Flags().String("listen", "127.0.0.1:2379", "client address (host:port)")
	peer := cmd.Flags().String("listen-peer", "127.0.0.1:2380", "peer address (host:port)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(cmd.Flags())
		if err != nil {
			return err
		}
		log := newLogger(cmd.ErrOrStderr(), cfg)
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return runEtcd(ctx, log, *dataDir, *listen, *peer)
	}
	return cmd
}

func hostURL(flag, addr string) (url.URL, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return url.URL{}, withCode(exitUsage, fmt.Errorf("etcd: --%s %q: want host:port", flag, addr))
	}
	return url.URL{Scheme: "http", Host: addr}, nil
}

// runEtcd serves an embedded etcd until ctx is done.
func runEtcd(ctx context.Context, log *slog.Logger, dataDir, listen, peer string) error {
	cu, err := hostURL("listen", listen)
	if err != nil {
		return err
	}
	pu, err := hostURL("listen-peer", peer)
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = "ccctl"
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	logFile := filepath.Join(dataDir, "etcd.log")
	cfg.LogOutputs = []string{logFile}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcd: start: %w", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return fmt.Errorf("etcd: not ready within 60s")
	case <-ctx.Done():
		return nil
	}
	abs, _ := filepath.Abs(dataDir)
	log.Info("etcd ready", "endpoint", cu.String(), "data_dir", abs, "log", filepath.Join(abs, "etcd.log"))
	select {
	case <-ctx.Done():
		log.Info("etcd stopping")
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcd: serve: %w", err)
	}
}
