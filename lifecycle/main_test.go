package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/internal/sys/proc"
	"github.com/ccctl/ccctl/internal/testkit/testutil"
	"github.com/ccctl/ccctl/lifecycle"
)

// TestMain lets a test run the test binary as a "ccctl" process: with
// LIFECYCLE_TEST_CCCTL=1 it runs ccctlMain instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("LIFECYCLE_TEST_CCCTL") == "1" {
		os.Exit(ccctlMain())
	}
	os.Exit(m.Run())
}

// ccctlMain is a ccctl entrypoint: one member on the memory backend with
// the real clock, reaping children, its service and grace period taken from
// LT_SERVICE (JSON argv) and LT_GRACE. With LT_ORPHANS=N it waits, after
// Run, until N orphans were reaped (at most 10 s) and prints its pid, the
// orphans reaped and the zombies left among its children.
func ccctlMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var argv []string
	if err := json.Unmarshal([]byte(os.Getenv("LT_SERVICE")), &argv); err != nil {
		log.Error("LT_SERVICE", "err", err)
		return lifecycle.ExitBadConfig
	}
	grace, err := time.ParseDuration(os.Getenv("LT_GRACE"))
	if err != nil {
		grace = 0
	}
	co, err := memory.New(memory.NewStore(), memory.Config{Cluster: testCluster, ID: "ccctl", Logger: log})
	if err != nil {
		log.Error("memory.New", "err", err)
		return lifecycle.ExitBackendUnavailable
	}
	ctl, err := lifecycle.New(lifecycle.Config{
		Coordinator: co,
		Service:     lifecycle.Service{Argv: argv},
		GracePeriod: grace,
		Logger:      log,
		Reap:        true,
	})
	if err != nil {
		log.Error("lifecycle.New", "err", err)
		return lifecycle.ExitBadConfig
	}
	code, err := ctl.Run(context.Background())
	if err != nil {
		log.Error("run", "err", err)
	}
	if n, _ := strconv.Atoi(os.Getenv("LT_ORPHANS")); n > 0 {
		orphans, _ := proc.EnableReaping() // already enabled: returns the counter
		testutil.Poll(10*time.Second, func() bool { return orphans() >= int64(n) })
		fmt.Printf("pid=%d orphans=%d zombies=%d\n", os.Getpid(), orphans(), testutil.Zombies())
	}
	return code
}
