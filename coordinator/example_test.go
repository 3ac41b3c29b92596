package coordinator_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ccctl/ccctl/backends/memory"
	"github.com/ccctl/ccctl/coordinator"
)

// open opens a registered member of the cluster prod/db in store.
func open(store *memory.Store, id string) *memory.Coordinator {
	c, err := memory.New(store, memory.Config{
		Cluster: coordinator.Cluster{Environment: "prod", Service: "db"},
		ID:      id,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	err = c.Register(context.Background(), coordinator.Member{Host: id + ".example", State: coordinator.StateRunning})
	if err != nil {
		panic(err)
	}
	return c
}

// Two members campaign; the first leads, the second waits until the first
// resigns. The new term's fencing token is greater than the old one's.
func ExampleElector_Campaign() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := memory.NewStore()
	a, b := open(store, "a"), open(store, "b")
	defer a.Close()
	defer b.Close()

	la, err := a.Campaign(ctx)
	if err != nil {
		fmt.Println("campaign a:", err)
		return
	}
	fmt.Println("a leads, token", la.Token())

	won := make(chan coordinator.Leadership)
	go func() {
		lb, err := b.Campaign(ctx) // waits while a leads
		if err != nil {
			fmt.Println("campaign b:", err)
		}
		won <- lb
	}()

	if err := la.Resign(ctx); err != nil {
		fmt.Println("resign a:", err)
	}
	<-la.Done() // closed before anybody else could lead
	fmt.Println("a's term ended:", la.Err())

	lb := <-won
	fmt.Println("b leads, token", lb.Token(), "greater:", lb.Token() > la.Token())
	leader, _ := a.Leader(ctx)
	fmt.Println("leader:", leader.ID)
	// Output:
	// a leads, token 3
	// a's term ended: coordinator: resigned
	// b leads, token 5 greater: true
	// leader: b
}

// A leader does its work until its Leadership is done: that channel is the
// one place where the loss of leadership is reported, whatever the cause.
func ExampleLeadership_Done() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := memory.NewStore()
	a := open(store, "a")

	l, err := a.Campaign(ctx)
	if err != nil {
		fmt.Println("campaign:", err)
		return
	}
	// Closing the session (or losing it) ends the term.
	if err := a.Close(); err != nil {
		fmt.Println("close:", err)
	}
	<-l.Done()
	fmt.Println("term over:", l.Err())
	<-a.Done()
	fmt.Println("session over:", a.Err())
	// Output:
	// term over: coordinator: resigned
	// session over: coordinator: session closed
}

// A watch starts with the current state, then reports every change in
// order.
func ExampleCoordinator_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := memory.NewStore()
	a, w := open(store, "a"), open(store, "w")
	defer w.Close()

	events, err := w.Watch(ctx)
	if err != nil {
		fmt.Println("watch:", err)
		return
	}
	l, err := a.Campaign(ctx)
	if err != nil {
		fmt.Println("campaign:", err)
		return
	}
	if err := l.Resign(ctx); err != nil {
		fmt.Println("resign:", err)
	}
	a.Close()

	for range 6 {
		ev := <-events
		switch ev.Type {
		case coordinator.EventMemberJoined, coordinator.EventMemberLeft:
			fmt.Println(ev.Type, ev.Member.ID)
		case coordinator.EventLeaderChanged:
			fmt.Println(ev.Type, ev.Leader.ID, ev.Leader.Token)
		default:
			fmt.Println(ev.Type)
		}
	}
	// Output:
	// member_joined a
	// member_joined w
	// no_leader
	// leader_changed a 3
	// no_leader
	// member_left a
}

// An operator asks for a switchover; the sitting leader sees the request in
// its watch, stops its service, then resigns, and only the named member can
// take over.
func ExampleControls_Switchover() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := memory.NewStore()
	a, b, d := open(store, "a"), open(store, "b"), open(store, "d")
	defer a.Close()
	defer b.Close()
	defer d.Close()

	la, err := a.Campaign(ctx)
	if err != nil {
		fmt.Println("campaign:", err)
		return
	}
	events, err := a.Watch(ctx)
	if err != nil {
		fmt.Println("watch:", err)
		return
	}
	won := make(chan string, 2)
	var wg sync.WaitGroup
	for _, m := range []*memory.Coordinator{b, d} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Campaign(ctx); err == nil {
				won <- m.ID()
			}
		}()
	}

	// The operator, from any member's handle.
	to, err := d.Switchover(ctx, "b")
	if err != nil {
		fmt.Println("switchover:", err)
		return
	}
	fmt.Println("switchover requested to", to)

	// The leader's side.
	for ev := range events {
		if ev.Type == coordinator.EventSwitchover {
			fmt.Println("leader a sees a switchover to", ev.SwitchoverTo)
			break
		}
	}
	// ... stop the service here, then:
	if err := la.Resign(ctx); err != nil {
		fmt.Println("resign:", err)
	}
	fmt.Println("new leader:", <-won)
	cancel() // ends d's campaign
	wg.Wait()
	// Output:
	// switchover requested to b
	// leader a sees a switchover to b
	// new leader: b
}
