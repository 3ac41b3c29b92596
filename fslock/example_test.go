package fslock_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ccctl/ccctl/fslock"
)

func ExampleManager() {
	root, err := os.MkdirTemp("", "locks")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	data := filepath.Join(root, "data")
	os.Mkdir(data, 0o755)

	m, err := fslock.NewManager([]string{data}, fslock.ManagerOptions{
		Owner:  fslock.Owner{ID: "member-1"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	m.Attempt() // at start, without blocking; then go m.Run(ctx) waits for the rest
	fmt.Println("held:", m.Held(data))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.Run(ctx) // returns at once: ctx is done
	m.Close()  // once the service has stopped
	fmt.Println("held after Close:", m.Held(data))
	// Output:
	// held: true
	// held after Close: false
}
