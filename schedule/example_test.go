package schedule_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/schedule"
)

// A job at 02:30 in Berlin runs at 03:00 on the day clocks go forward,
// since 02:30 does not exist that day.
func ExampleParseSchedule() {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := schedule.ParseSchedule("30 2 * * *", berlin)
	if err != nil {
		fmt.Println(err)
		return
	}
	t := time.Date(2026, 3, 28, 12, 0, 0, 0, berlin)
	for range 3 {
		t = s.Next(t)
		fmt.Println(t.Format(time.RFC3339))
	}
	// Output:
	// 2026-03-29T03:00:00+02:00
	// 2026-03-30T02:30:00+02:00
	// 2026-03-31T02:30:00+02:00
}

// A master-only job on the memory backend: the member campaigns, tells the
// scheduler it leads, and the job runs at the top of the hour, after
// claiming the slot for the cluster.
func ExampleScheduler() {
	clk := clock.NewFake(time.Date(2026, 1, 5, 9, 59, 30, 0, time.UTC))
	store := memory.NewStore()
	c, err := memory.New(store, memory.Config{
		Cluster: coordinator.Cluster{Environment: "prod", Service: "db"},
		ID:      "db-1",
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ran := make(chan schedule.RunInfo, 1)
	s, err := schedule.New(schedule.Config{
		Jobs: []schedule.Job{{
			Name:     "backup",
			Schedule: "@hourly",
			Role:     schedule.RoleMaster,
			Timeout:  10 * time.Minute,
			Func: func(ctx context.Context) error {
				ri, _ := schedule.RunInfoFrom(ctx)
				ran <- ri
				return nil
			},
		}},
		Clock:    clk,
		Claimer:  c,
		MemberID: "db-1",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	l, err := c.Campaign(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	s.RoleChanged(coordinator.RoleMaster, l.Token())
	clk.BlockUntil(1, nil) // the scheduler armed its timer
	clk.Set(time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC))
	ri := <-ran
	fmt.Println(ri.Job, ri.Slot.Format(time.TimeOnly), ri.Role)

	cancel()
	fmt.Println(<-done)
	// Output:
	// backup 10:00:00 master
	// <nil>
}
