// Command ccctl-etcd runs a single-node etcd, embedded, for development and
// demos of ccctl: one member, plain HTTP, no authentication, its data in
// --data-dir. It serves until SIGINT or SIGTERM, then exits 0. etcd's own log
// goes to DATA_DIR/etcd.log; ccctl-etcd itself logs an "etcd ready" line on
// stderr once clients can connect.
//
// It is a binary of its own so that ccctl, which runs in every container,
// does not carry etcd's server (several MB of binary and of memory).
// `ccctl etcd ARGS` replaces itself with ccctl-etcd ARGS when it finds
// ccctl-etcd beside ccctl or on PATH. Build it with
//
//	go build -o ccctl-etcd ./cmd/ccctl-etcd
//
// What it is not: a cluster, secured, or tuned for production. Use a real
// etcd cluster there.
//
// Exit codes: 0 after SIGINT or SIGTERM (and for --help), 1 when etcd fails
// to start or to serve, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usageHead = `Usage: ccctl-etcd [flags]

ccctl-etcd runs an embedded single-node etcd server until SIGINT or SIGTERM.
It is meant for development and demos: one node, no TLS, no authentication.
Use a real etcd cluster in production. etcd's own log goes to
DATA_DIR/etcd.log. ccctl etcd runs it too.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, serves etcd until SIGINT or SIGTERM and returns the exit
// code. Help goes to stdout, errors and the log to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ccctl-etcd", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "ccctl-etcd.data", "directory of etcd's data")
	listen := fs.String("listen", "127.0.0.1:2379", "client address (host:port)")
	peer := fs.String("listen-peer", "127.0.0.1:2380", "peer address (host:port)")
	fs.Usage = func() {
		fmt.Fprint(stdout, usageHead)
		fmt.Fprint(stdout, fs.FlagUsages())
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, "ccctl-etcd: "+err.Error())
		return code
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return fail(exitUsage, err)
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, fmt.Errorf("unexpected argument %q; want flags only (see --help)", fs.Arg(0)))
	}
	cu, err := hostURL("listen", *listen)
	if err != nil {
		return fail(exitUsage, err)
	}
	pu, err := hostURL("listen-peer", *peer)
	if err != nil {
		return fail(exitUsage, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := runEtcd(ctx, log, *dataDir, cu, pu); err != nil {
		return fail(exitFailure, err)
	}
	return exitOK
}

// hostURL turns the host:port of --flag into an http URL.
func hostURL(flag, addr string) (url.URL, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return url.URL{}, fmt.Errorf("--%s %q: want host:port", flag, addr)
	}
	return url.URL{Scheme: "http", Host: addr}, nil
}

// runEtcd serves an embedded etcd on the client URL cu and the peer URL pu
// until ctx is done; it returns nil then, and an error when etcd fails to
// start or to serve.
func runEtcd(ctx context.Context, log *slog.Logger, dataDir string, cu, pu url.URL) error {
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
		return err
	}
	cfg.LogOutputs = []string{filepath.Join(dataDir, "etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return errors.New("not ready within 60s")
	case <-ctx.Done():
		return nil
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	log.Info("etcd ready", "endpoint", cu.String(), "data_dir", abs, "log", filepath.Join(abs, "etcd.log"))
	select {
	case <-ctx.Done():
		log.Info("etcd stopping")
		return nil
	case err := <-e.Err():
		return fmt.Errorf("serve: %w", err)
	}
}
