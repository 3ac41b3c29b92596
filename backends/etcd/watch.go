package etcd

import (
	"context"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ccctl/ccctl/coordinator"
)

// clusterState is what a watch has reported so far: the member records,
// and the election and control keys as a campaign reads them (the same
// parser, electionState.set, and so the same rule for a leader key).
type clusterState struct {
	members map[string]memberRec
	el      electionState
}

// control is the part of a clusterState a Watch reports besides the
// members.
type control struct {
	leader     *coordinator.Leader
	paused     bool
	switchover string
	forced     bool
}

func (st *clusterState) control() control {
	return control{leader: st.el.leaderInfo(), paused: st.el.pause != nil, switchover: st.el.switchTo, forced: st.el.forced}
}

type memberRec struct {
	m   coordinator.Member
	rev int64 // mod revision of the record
}

// Watch streams the cluster's events: first the current state, then every
// change, in etcd's order. When etcd has compacted the revisions the watch
// needs, or the watch broke, it reads the state again and reports the
// difference. The channel is closed when ctx is done or the session ends.
func (c *Coordinator) Watch(ctx context.Context) (<-chan coordinator.Event, error) {
	if err := c.check("watch"); err != nil {
		return nil, err
	}
	st, rev, err := c.snapshot(ctx)
	if err != nil {
		return nil, c.sessionErr("watch", err)
	}
	ch := make(chan coordinator.Event)
	if !c.spawn(func() {
		defer close(ch)
		c.watchLoop(ctx, ch, st, rev)
	}) {
		return nil, c.check("watch")
	}
	return ch, nil
}

// snapshot reads the cluster's state at one revision.
func (c *Coordinator) snapshot(ctx context.Context) (clusterState, int64, error) {
	resp, err := c.cli.Get(ctx, c.keys.base, clientv3.WithPrefix())
	if err != nil {
		return clusterState{}, 0, err
	}
	st := clusterState{members: map[string]memberRec{}}
	for _, kv := range resp.Kvs {
		c.apply(&st, &clientv3.Event{Type: mvccpb.PUT, Kv: kv})
	}
	return st, resp.Header.Revision, nil
}

// apply updates st by one etcd event and returns the events to report. A
// key that fails the checks (Layout) is ignored, and a put of one over a
// key st holds counts as its deletion.
func (c *Coordinator) apply(st *clusterState, ev *clientv3.Event) []coordinator.Event {
	ch := c.decodeEvent(ev)
	if ch.d.kind != kindMember {
		old := st.control()
		st.el.set(ch)
		return controlEvents(nil, old, st.control())
	}
	id := strings.TrimPrefix(ch.key, c.keys.members)
	old, known := st.members[id]
	if !ch.present {
		if !known {
			return nil
		}
		delete(st.members, id)
		return []coordinator.Event{{Type: coordinator.EventMemberLeft, Member: old.m}}
	}
	st.members[id] = memberRec{m: ch.d.member, rev: ev.Kv.ModRevision}
	if known {
		return []coordinator.Event{{Type: coordinator.EventMemberUpdated, Member: ch.d.member}}
	}
	return []coordinator.Event{{Type: coordinator.EventMemberJoined, Member: ch.d.member}}
}

// initialEvents returns the events that describe st from scratch.
func initialEvents(st clusterState) []coordinator.Event {
	ids := make([]string, 0, len(st.members))
	for id := range st.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	members := make([]coordinator.Member, len(ids))
	for i, id := range ids {
		members[i] = st.members[id].m
	}
	ctl := st.control()
	evs := coordinator.StateEvents(members, ctl.leader, ctl.paused, ctl.switchover)
	if n := len(evs) - 1; ctl.forced && evs[n].Type == coordinator.EventSwitchover {
		evs[n].Forced = true
	}
	return evs
}

// diff returns the events that take a watcher from old to cur.
func diff(old, cur clusterState) []coordinator.Event {
	var evs []coordinator.Event
	var left, changed []string
	for id := range old.members {
		if _, ok := cur.members[id]; !ok {
			left = append(left, id)
		}
	}
	for id, r := range cur.members {
		if o, ok := old.members[id]; !ok || o.rev != r.rev {
			changed = append(changed, id)
		}
	}
	sort.Strings(left)
	sort.Strings(changed)
	for _, id := range left {
		evs = append(evs, coordinator.Event{Type: coordinator.EventMemberLeft, Member: old.members[id].m})
	}
	for _, id := range changed {
		typ := coordinator.EventMemberJoined
		if _, ok := old.members[id]; ok {
			typ = coordinator.EventMemberUpdated
		}
		evs = append(evs, coordinator.Event{Type: typ, Member: cur.members[id].m})
	}
	return controlEvents(evs, old.control(), cur.control())
}

// controlEvents appends to evs the events that take a watcher from old to
// cur.
func controlEvents(evs []coordinator.Event, old, cur control) []coordinator.Event {
	switch {
	case cur.leader == nil && old.leader != nil:
		evs = append(evs, coordinator.Event{Type: coordinator.EventNoLeader})
	case cur.leader != nil && (old.leader == nil || *old.leader != *cur.leader):
		evs = append(evs, coordinator.Event{Type: coordinator.EventLeaderChanged, Leader: *cur.leader})
	}
	if cur.paused != old.paused {
		if cur.paused {
			evs = append(evs, coordinator.Event{Type: coordinator.EventPaused})
		} else {
			evs = append(evs, coordinator.Event{Type: coordinator.EventResumed})
		}
	}
	if cur.switchover != old.switchover || cur.forced != old.forced {
		if cur.switchover == "" {
			evs = append(evs, coordinator.Event{Type: coordinator.EventSwitchoverCleared})
		} else {
			evs = append(evs, coordinator.Event{Type: coordinator.EventSwitchover, SwitchoverTo: cur.switchover, Forced: cur.forced})
		}
	}
	return evs
}

// watchLoop reports st, then the changes after rev, until ctx is done or
// the session ends.
func (c *Coordinator) watchLoop(ctx context.Context, ch chan<- coordinator.Event, st clusterState, rev int64) {
	send := func(evs []coordinator.Event) bool {
		for _, ev := range evs {
			select {
			case ch <- ev:
			case <-ctx.Done():
				return false
			case <-c.s.done:
				return false
			}
		}
		return true
	}
	if !send(initialEvents(st)) {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.s.ctx, cancel)
	defer stop()
	for {
		ictx, icancel := context.WithCancel(wctx)
		wch := c.cli.Watch(ictx, c.keys.base, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.CompactRevision != 0 || resp.Err() != nil {
				c.log.Info("watch: resuming from the current state", "compact_revision", resp.CompactRevision, "err", resp.Err())
				break
			}
			for _, ev := range resp.Events {
				if !send(c.apply(&st, ev)) {
					icancel()
					return
				}
				rev = ev.Kv.ModRevision
			}
			if resp.Header.Revision > rev && len(resp.Events) == 0 {
				rev = resp.Header.Revision
			}
		}
		icancel()
		if wctx.Err() != nil {
			return
		}
		// Compacted, failed or closed: resume from the current state.
		for {
			cur, crev, err := c.snapshot(wctx)
			if err == nil {
				if !send(diff(st, cur)) {
					return
				}
				st, rev = cur, crev
				break
			}
			if wctx.Err() != nil {
				return
			}
			if c.backoff(wctx, retryDelay) != nil {
				return
			}
		}
	}
}
