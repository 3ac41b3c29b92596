package lifecycle_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/lifecycle"
)

// A Go user's own entrypoint: a hook in Go that prepares the data before
// the service starts, and the service, whose exit code becomes the
// program's.
func Example() {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	co, err := memory.New(memory.NewStore(), memory.Config{
		Cluster: coordinator.Cluster{Environment: "production", Service: "postgres"},
		ID:      "postgres-1",
		Logger:  log,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctl, err := lifecycle.New(lifecycle.Config{
		Coordinator: co,
		Service:     lifecycle.Service{Argv: []string{"/bin/sh", "-c", `echo "service running as $CC_ROLE"; exit 3`}},
		Hooks: map[lifecycle.HookName][]lifecycle.Hook{
			lifecycle.HookStartedAsMaster: {lifecycle.HookFunc(func(ctx context.Context, ev lifecycle.HookEvent) error {
				fmt.Println("initialising the data as", ev.Role)
				return nil
			})},
			lifecycle.HookStartedAsSlave: {lifecycle.Shell(`echo "cloning from $CC_MASTER_ADDRESS"`)},
		},
		Logger: log,
	})
	if err != nil {
		fmt.Println(err) // the CLI exits with lifecycle.ExitBadConfig here
		return
	}
	code, err := ctl.Run(context.Background())
	fmt.Println("exit code:", code, "error:", err)
	// Output:
	// initialising the data as master
	// service running as master
	// exit code: 3 error: <nil>
}
