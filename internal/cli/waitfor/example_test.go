package waitfor_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/waitfor"
)

// A member of the web service waits until the db service has an active
// master.
func ExampleWaiter_Wait() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := memory.NewStore()
	quiet := slog.New(slog.DiscardHandler)
	db := coordinator.Cluster{Environment: "prod", Service: "db"}

	// The db service's master, up and active.
	m, err := memory.New(store, memory.Config{Cluster: db, ID: "db-1", Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	if _, err := m.Campaign(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Register(ctx, coordinator.Member{Role: coordinator.RoleMaster, State: coordinator.StateActive}); err != nil {
		fmt.Println(err)
		return
	}

	w, err := waitfor.New(waitfor.Config{
		Services: []string{"db"},
		Open: func(ctx context.Context, service string) (waitfor.Cluster, error) {
			return memory.New(store, memory.Config{
				Cluster: coordinator.Cluster{Environment: "prod", Service: service}, ID: "web-1", Logger: quiet,
			})
		},
		Logger: quiet,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(w.Wait(ctx))
	// Output: <nil>
}
