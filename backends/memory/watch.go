package memory

import (
	"context"
	"fmt"

	"github.com/ccctl/ccctl/coordinator"
)

// watcher is one Watch stream's queue in the store. The store appends to
// queue under its lock and never waits for the reader; the stream's
// goroutine moves events from queue to the channel.
type watcher struct {
	queue  []coordinator.Event // guarded by Store.mu
	notify chan struct{}       // capacity 1: "queue may be non-empty"
}

// Watch streams the cluster's events: first the current state (one
// EventMemberJoined per member in id order, then EventLeaderChanged or
// EventNoLeader, then EventPaused and EventSwitchover when they apply), then
// every change in the order the store applied it. Nothing is dropped or
// coalesced: the queue between the store and the channel is unbounded, so a
// slow reader never blocks the store (it costs memory instead). The channel
// is closed when ctx is done or the session ends; events still queued then
// are discarded.
func (c *Coordinator) Watch(ctx context.Context) (<-chan coordinator.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watch %s: %w", c.cl.name, err)
	}
	s := c.store
	s.mu.Lock()
	if err := c.checkLocked("watch"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	w := &watcher{queue: s.stateLocked(c.cl), notify: make(chan struct{}, 1)}
	c.cl.watchers[w] = struct{}{}
	c.wg.Add(1)
	s.mu.Unlock()

	out := make(chan coordinator.Event)
	go c.stream(ctx, w, out)
	return out, nil
}

// stream moves w's events to out until ctx is done or the session ends.
func (c *Coordinator) stream(ctx context.Context, w *watcher, out chan<- coordinator.Event) {
	s := c.store
	defer c.wg.Done()
	defer close(out)
	defer func() {
		s.mu.Lock()
		delete(c.cl.watchers, w)
		w.queue = nil
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		var ev coordinator.Event
		ok := len(w.queue) > 0
		if ok {
			ev = w.queue[0]
			w.queue[0] = coordinator.Event{}
			w.queue = w.queue[1:]
		}
		s.mu.Unlock()
		if !ok {
			select {
			case <-w.notify:
				continue
			case <-ctx.Done():
				return
			case <-c.done:
				return
			}
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		case <-c.done:
			return
		}
	}
}
