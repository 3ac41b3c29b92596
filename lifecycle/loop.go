package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ccctl/ccctl/coordinator"
)

// loop is the state of one run of the controller actor. Only the controller
// actor's goroutine touches it.
type loop struct {
	c    *Controller
	bctx context.Context // for backend calls: not cancelled by the caller's ctx

	record   coordinator.Member // this member's record as last published
	role     coordinator.Role
	lead     coordinator.Leadership
	leadDone <-chan struct{}
	fence    *fence // the hard deadline of the current or latest term's demotion
	demoting *fence // set while a demotion runs (see hookStop)

	watch       <-chan coordinator.Event
	watchCancel context.CancelFunc

	members      map[string]coordinator.Member
	master       coordinator.Leader
	snapshot     bool // the initial state of the watch was received
	paused       bool
	switchoverTo string
	observed     int64 // the newest term observeTerm was given

	hookedMaster  string // what the hooks were last told: the master, and the members
	hookedMembers map[string]coordinator.Member

	campaign       chan campaignResult
	campaignCancel context.CancelFunc

	activeCh   chan bool // the current port probe's reports; a new one per service start
	pollCancel context.CancelFunc
	running    bool // the service was started and not stopped since
	started    bool // the start hook ran

	// The position runner (position.go): posMu guards pos; pubMu
	// serializes registrations and guards published and registered.
	posMu      sync.Mutex
	pos        position
	posKick    chan struct{}
	posCancel  context.CancelFunc
	posDone    chan struct{}
	pubMu      sync.Mutex
	published  coordinator.Member // the record the controller actor last registered
	registered bool

	quit chan struct{} // closed when the loop shuts down
	wg   sync.WaitGroup
}

type campaignResult struct {
	lead coordinator.Leadership
	err  error
}

// execute is the controller actor.
func (c *Controller) execute(ctx context.Context) error {
	m := c.cfg.Member
	m.ID = c.id
	m.Role, m.State, m.Token = coordinator.RoleNone, coordinator.StateStarting, 0
	m.StartedAt = c.cfg.Clock.Now()
	if m.Ports == nil {
		m.Ports = []int{} // "ports":[] in the record, not null
	}
	l := &loop{
		c:             c,
		bctx:          context.WithoutCancel(ctx),
		record:        m,
		members:       map[string]coordinator.Member{},
		hookedMembers: map[string]coordinator.Member{},
		posKick:       make(chan struct{}, 1),
		quit:          make(chan struct{}),
	}
	l.run()
	l.shutdown()
	return c.stopErr
}

// stop records why the controller stops.
func (l *loop) stop(code int, err error) { l.c.requestStop(code, err) }

func (l *loop) run() {
	c := l.c
	c.log.Info("starting", "service", fmt.Sprint(c.cfg.Service.Argv))
	if !l.firstRegister() {
		return
	}
	l.startPositions()

	l.started = true
	if err := l.runHooks(HookStart, coordinator.RoleNone, nil, nil); err != nil {
		l.fail(ExitInitHookFailed, err)
		return
	}

	l.startCampaign()
	if !l.decideRole() {
		return
	}
	init := HookStartedAsSlave
	if l.role == coordinator.RoleMaster {
		init = HookStartedAsMaster
	}
	c.log.Info("role decided", "role", l.role, "master", l.master.ID, "token", l.token())
	if err := l.publish(l.bctx, coordinator.StateInitializing); err != nil {
		c.log.Warn("publish state", "state", coordinator.StateInitializing, "err", err)
	}
	if err := l.runHooks(init, coordinator.RoleNone, nil, nil); err != nil {
		l.fail(ExitInitHookFailed, err)
		return
	}
	l.hookedMaster = l.masterID()
	for id, m := range l.members {
		l.hookedMembers[id] = m
	}
	c.notifyRole(l.role, l.roleToken(), l.lead)
	select {
	case <-l.leadDone: // lost during the init hook: demote before the service starts
		if !l.leadershipLost() {
			return
		}
	default:
	}

	if c.svc != nil && !l.running {
		if err := l.startService(); err != nil {
			l.fail(startExitCode(err), err)
			return
		}
	}
	l.loop()
}

// firstRegister publishes the first record and opens the watch, and
// reports whether it did. A backend that does not answer in time stops the
// controller with ExitBackendUnavailable; a session that ended meanwhile
// (it may have waited out an earlier process's record of the same id) is
// replaced, as after an outage, instead.
func (l *loop) firstRegister() bool {
	c := l.c
	err := l.publishWithin(l.bctx, backendTimeout, coordinator.StateStarting)
	if err != nil {
		err = fmt.Errorf("register: %w", err)
	} else {
		wctx, cancel := context.WithCancel(l.bctx)
		l.watchCancel = cancel
		l.watch, err = c.coord.Watch(wctx)
		if err != nil {
			err = fmt.Errorf("watch: %w", err)
		}
	}
	switch {
	case err == nil:
		return true
	case c.coord.Err() != nil:
		return l.rejoin()
	}
	l.stop(ExitBackendUnavailable, err)
	return false
}

// fail stops the controller with code and err and marks the member failed.
func (l *loop) fail(code int, err error) {
	l.c.setStatus(func(s *Status) { s.State = coordinator.StateFailed })
	l.stop(code, err)
}

// decideRole waits until the member leads or another member does (or the
// cluster is paused with no leader), and reports whether it did before the
// controller was asked to stop.
func (l *loop) decideRole() bool {
	for !l.roleDecided() {
		if !l.step() {
			return false
		}
	}
	return true
}

// roleDecided reports whether the member has a role: it leads, or the
// complete view of the cluster shows another master, or a pause with none
// (then it is a slave).
func (l *loop) roleDecided() bool {
	if l.role != coordinator.RoleNone {
		return true
	}
	if l.snapshot {
		other := l.master.ID != "" && l.master.ID != l.c.id
		if other || (l.master.ID == "" && l.paused) {
			l.setRole(coordinator.RoleSlave)
			return true
		}
	}
	return false
}

// campaignFailed handles a campaign that ended without leading, and
// reports whether to go on.
func (l *loop) campaignFailed(err error) bool {
	if l.c.coord.Err() != nil {
		return l.sessionEnded()
	}
	l.stop(ExitBackendUnavailable, fmt.Errorf("campaign: %w", err))
	return false
}

// loop handles changes until the controller is asked to stop.
func (l *loop) loop() {
	l.changed() // what came during the init hook: a switchover, members
	for l.step() {
	}
}

// step waits for the next thing to handle, handles it and reports whether
// to go on. It is the one select of the controller actor: before the role
// is decided (decideRole) and after (loop), the same sources, handled the
// same way, but that a won campaign makes a member without a role master
// at once (its init hook follows) and a slave master through a promotion,
// and that hooks run for changes only once the role is decided.
func (l *loop) step() bool {
	c := l.c
	select {
	case <-c.stopCh: // a stop wins over changes that came at the same time
		return false
	default:
	}
	select {
	case <-c.stopCh:
		return false
	case <-c.coord.Done():
		return l.sessionEnded()
	case <-l.leadDone: // nil while not leading
		return l.leadershipLost()
	case r := <-l.campaign:
		l.campaign = nil
		switch {
		case r.err != nil:
			return l.campaignFailed(r.err)
		case l.role == coordinator.RoleNone:
			l.becomeMaster(r.lead)
		default:
			l.promote(r.lead)
		}
	case ev, ok := <-l.watch:
		if !ok {
			return l.watchEnded()
		}
		l.apply(ev)
		if l.role == coordinator.RoleNone {
			return true // the init hook tells the state as it is then
		}
		l.drainWatch()
		if l.snapshot { // a new watch's view is not complete yet: no hook for half of it
			l.changed()
		}
	case a := <-l.activeCh: // nil while no service runs
		return l.activeChanged(a)
	}
	return true
}

// drainWatch applies the events already waiting, so that the hooks see
// the latest state.
func (l *loop) drainWatch() {
	for i := 0; i < 1000; i++ {
		select {
		case ev, ok := <-l.watch:
			if !ok {
				return // the next receive in loop sees the close
			}
			l.apply(ev)
		default:
			return
		}
	}
}

// apply updates the loop's view of the cluster with ev.
func (l *loop) apply(ev coordinator.Event) {
	switch ev.Type {
	case coordinator.EventMemberJoined, coordinator.EventMemberUpdated:
		l.members[ev.Member.ID] = ev.Member
	case coordinator.EventMemberLeft:
		delete(l.members, ev.Member.ID)
	case coordinator.EventLeaderChanged:
		l.observeTerm(ev.Leader.Token, !l.snapshot)
		l.master = ev.Leader
		l.snapshot = true
	case coordinator.EventNoLeader:
		l.master = coordinator.Leader{}
		l.snapshot = true
		l.kickPositions()
	case coordinator.EventPaused:
		if !l.paused {
			l.c.log.Info("cluster paused: no automatic role changes until resumed")
		}
		l.paused = true
	case coordinator.EventResumed:
		if l.paused {
			l.c.log.Info("cluster resumed")
		}
		l.paused = false
	case coordinator.EventSwitchover:
		l.switchoverTo = ev.SwitchoverTo
	case coordinator.EventSwitchoverCleared:
		l.switchoverTo = ""
	}
	l.c.setStatus(func(s *Status) {
		s.Paused = l.paused
		s.Master = l.masterID()
		s.Token = l.token()
	})
	if l.role != coordinator.RoleMaster {
		l.c.metrics.token.Set(float64(l.token()))
	}
}

// changed acts on a change of the cluster: a master asked to hand over
// does, then the hooks run for what changed since they were last told.
func (l *loop) changed() {
	if l.role == coordinator.RoleMaster && l.switchoverTo != "" && l.switchoverTo != l.c.id {
		l.handOver()
	}
	l.runChangeHooks()
}

// runChangeHooks runs members_removed, members_added and master_changed
// for what changed since the hooks were last told.
func (l *loop) runChangeHooks() {
	c := l.c
	var removed, added []coordinator.Member
	for id, m := range l.hookedMembers {
		if _, ok := l.members[id]; !ok && id != c.id {
			removed = append(removed, m)
		}
	}
	for id, m := range l.members {
		if _, ok := l.hookedMembers[id]; !ok && id != c.id {
			added = append(added, m)
		}
	}
	l.hookedMembers = map[string]coordinator.Member{}
	for id, m := range l.members {
		l.hookedMembers[id] = m
	}
	sortByID(removed)
	sortByID(added)
	if len(removed) > 0 {
		l.runHooks(HookMembersRemoved, l.role, added, removed)
	}
	if len(added) > 0 {
		l.runHooks(HookMembersAdded, l.role, added, removed)
	}
	if m := l.masterID(); l.role == coordinator.RoleSlave && m != "" && m != c.id && m != l.hookedMaster {
		l.hookedMaster = m
		l.runHooks(HookMasterChanged, l.role, nil, nil)
	}
}

// promote makes a slave that won the campaign master.
func (l *loop) promote(lead coordinator.Leadership) {
	c := l.c
	select {
	case <-lead.Done():
		c.log.Warn("leadership ended before it could be taken up", "token", lead.Token(), "err", lead.Err())
		l.startCampaign()
		return
	default:
	}
	l.becomeMaster(lead)
	c.metrics.transitions.Inc()
	if err := l.publish(l.bctx, l.record.State); err != nil {
		c.log.Warn("publish role", "err", err)
	}
	l.runHooks(HookTransitionSlaveToMaster, coordinator.RoleSlave, nil, nil)
	c.notifyRole(coordinator.RoleMaster, lead.Token(), lead)
}

// becomeMaster records lead and watches it for the extensions.
func (l *loop) becomeMaster(lead coordinator.Leadership) {
	c := l.c
	l.lead, l.leadDone = lead, lead.Done()
	l.hookedMaster = c.id
	l.setRole(coordinator.RoleMaster)
	c.log.Info("leading", "token", lead.Token())
	c.termStarted(lead.Token())
	c.metrics.token.Set(float64(lead.Token()))
	f, coord := newFence(), c.coord
	l.fence = f
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case <-lead.Done():
			c.termEnded(lead.Token())
			if !errors.Is(lead.Err(), coordinator.ErrResigned) {
				// Armed here too, so that the deadline holds however long
				// the controller actor takes to see the end.
				l.arm(f, fenceDelay(coord))
			}
		case <-l.quit:
		}
	}()
}

// The demotion, written once for its three causes (a term lost, a
// switchover, a session lost while leading): stepDown, then the caller's
// part (the fence, the service per leadership_lost_action, the
// resignation), then demoted.

// stepDown forgets the current term, makes the member a slave and
// publishes that while the session lives. It returns the term.
func (l *loop) stepDown() coordinator.Leadership {
	c := l.c
	lead := l.lead
	l.lead, l.leadDone = nil, nil
	l.setRole(coordinator.RoleSlave)
	c.metrics.transitions.Inc()
	if c.coord.Err() == nil {
		if err := l.publish(l.bctx, l.record.State); err != nil {
			c.log.Warn("publish role", "err", err)
		}
	}
	return lead
}

// demoted runs the demotion hook and tells the extensions.
func (l *loop) demoted() {
	l.runHooks(HookTransitionMasterToSlave, coordinator.RoleMaster, nil, nil)
	l.c.notifyRole(coordinator.RoleSlave, 0, nil)
}

// leadershipLost handles the end of a term this member did not resign:
// the demotion, under the term's fence, then a rejoin when the session
// ended too. It reports whether to go on.
func (l *loop) leadershipLost() bool {
	c := l.c
	f := l.fence
	lead := l.stepDown()
	cause := lead.Err()
	l.arm(f, fenceDelay(c.coord))
	l.demoting = f
	c.log.Warn("leadership lost", "token", lead.Token(), "err", cause, "action", c.cfg.OnLeadershipLost,
		"deadline", expiresIn(c.coord).Round(time.Millisecond))
	switch c.cfg.OnLeadershipLost {
	case LeadershipLostExit:
		// The fence stays armed until shutdown has stopped the service.
		l.stop(ExitLeadershipLost, fmt.Errorf("leadership lost: %w", cause))
		return false
	case LeadershipLostRestart:
		restart := l.running
		if restart {
			l.stopService()
		}
		l.disarm(f)
		f.waitKilled()
		l.demoting = nil
		l.demoted()
		if restart {
			if err := l.startService(); err != nil {
				l.fail(startExitCode(err), err)
				return false
			}
		}
	default:
		l.demoted()
		l.disarm(f)
		l.demoting = nil
		if f.hasFired() && l.running {
			// Killed by the fence: started again, as slave.
			f.waitKilled()
			l.stopService()
			if err := l.startService(); err != nil {
				l.fail(startExitCode(err), err)
				return false
			}
		}
	}
	if c.coord.Err() != nil {
		return l.rejoin()
	}
	l.startCampaign()
	return true
}

// handOver demotes this master for a switchover, then resigns.
func (l *loop) handOver() {
	c := l.c
	c.log.Info("switchover requested, handing over", "to", l.switchoverTo)
	lead := l.stepDown()
	l.demoted()
	ctx, cancel := context.WithTimeout(l.bctx, backendTimeout)
	defer cancel()
	if err := lead.Resign(ctx); err != nil {
		c.log.Warn("resign", "err", err)
	}
	l.startCampaign()
}

// startCampaign campaigns in the background; the result comes on
// l.campaign.
func (l *loop) startCampaign() {
	if l.campaign != nil {
		return
	}
	ctx, cancel := context.WithCancel(l.bctx)
	ch := make(chan campaignResult, 1)
	l.campaign, l.campaignCancel = ch, cancel
	coord := l.c.coord
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		lead, err := coord.Campaign(ctx)
		ch <- campaignResult{lead, err}
	}()
}

func (l *loop) setRole(r coordinator.Role) {
	l.role = r
	l.record.Role = r
	l.record.Token = 0
	if r == coordinator.RoleMaster && l.lead != nil {
		l.record.Token = l.lead.Token()
	}
	l.c.setStatus(func(s *Status) {
		s.Role = r
		s.Master = l.masterID()
		s.Token = l.token()
	})
}

// masterID is the current master's id, as far as known.
func (l *loop) masterID() string {
	if l.role == coordinator.RoleMaster {
		return l.c.id
	}
	if l.master.ID == l.c.id {
		return "" // this member's own term, being handed over or lost
	}
	return l.master.ID
}

// token is the fencing token of the current master's term.
func (l *loop) token() int64 {
	if l.role == coordinator.RoleMaster && l.lead != nil {
		return l.lead.Token()
	}
	if l.master.ID == l.c.id {
		return 0
	}
	return l.master.Token
}

// roleToken is the token given to extensions: this member's own term, 0
// for a slave.
func (l *loop) roleToken() int64 {
	if l.role == coordinator.RoleMaster && l.lead != nil {
		return l.lead.Token()
	}
	return 0
}

// publishTimeout bounds a record update once the member runs: a backend
// that does not answer must not hold up hooks or a stop for long (the
// session's own deadline deals with a backend that is gone).
const publishTimeout = 2 * time.Second

// publish registers the member's record with state.
func (l *loop) publish(ctx context.Context, state coordinator.State) error {
	return l.publishWithin(ctx, publishTimeout, state)
}

// publishWithin registers the member's record with state, waiting at most d.
func (l *loop) publishWithin(ctx context.Context, d time.Duration, state coordinator.State) error {
	l.record.State = state
	l.c.setStatus(func(s *Status) { s.State = state })
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	rec := l.record
	return l.register(ctx, l.c.coord, &rec)
}

// publishAsync registers the member's record with state in the background;
// the returned function waits until that is done.
func (l *loop) publishAsync(state coordinator.State) (wait func()) {
	l.record.State = state
	l.c.setStatus(func(s *Status) { s.State = state })
	if l.c.coord.Err() != nil {
		return func() {}
	}
	rec, coord := l.record, l.c.coord
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(l.bctx, publishTimeout)
		defer cancel()
		if err := l.register(ctx, coord, &rec); err != nil {
			l.c.log.Warn("publish state", "state", state, "err", err)
		}
	}()
	return func() { <-done }
}

// event builds the HookEvent for name.
func (l *loop) event(name HookName, prev coordinator.Role, added, removed []coordinator.Member) HookEvent {
	c := l.c
	members := map[string]coordinator.Member{}
	for id, m := range l.members {
		members[id] = m
	}
	pos := l.currentPosition()
	self := l.record
	self.Position, self.PositionAt = pos.value, pos.at
	members[c.id] = self
	mid := l.masterID()
	master, ok := members[mid]
	if !ok {
		master = coordinator.Member{ID: mid}
	}
	cl := c.coord.Cluster()
	return HookEvent{
		Name:         name,
		Role:         l.role,
		PreviousRole: prev,
		InstanceID:   c.id,
		Environment:  cl.Environment,
		Service:      cl.Service,
		Master:       master,
		Token:        l.token(),
		Members:      sortedMembers(members),
		Added:        added,
		Removed:      removed,
		Position:     pos.value,
		Stdout:       c.cfg.Stdout,
		Stderr:       c.cfg.Stderr,
	}
}

// runHooks runs the hooks of name in order, each with its timeout, and
// returns the first failure. The hooks' context is never cancelled by a
// stop or a later change, only by the timeout and by the loss of the
// leadership (hookStop).
func (l *loop) runHooks(name HookName, prev coordinator.Role, added, removed []coordinator.Member) error {
	c := l.c
	hooks := c.cfg.Hooks[name]
	ev := l.event(name, prev, added, removed)
	if len(hooks) == 0 {
		c.log.Debug("no hook", "hook", name, "role", ev.Role)
		return nil
	}
	stop := l.hookStop(name)
	for i, h := range hooks {
		timeout := c.cfg.HookTimeout
		if t, ok := h.(timeoutHook); ok {
			timeout = t.timeout
		}
		ctx, cancel := clockTimeout(context.WithoutCancel(l.bctx), c.cfg.Clock, timeout)
		ctx, release := cancelOn(ctx, stop, ErrLeadershipLost)
		start := time.Now()
		c.metrics.hookRuns.WithLabelValues(string(name)).Inc()
		err := h.RunHook(ctx, ev)
		stopped := errors.Is(context.Cause(ctx), ErrLeadershipLost)
		release()
		cancel()
		if stopped {
			c.metrics.hookFailures.WithLabelValues(string(name)).Inc()
			err = fmt.Errorf("hook %s[%d]: stopped: %w", name, i, ErrLeadershipLost)
			c.log.Warn("hook stopped: leadership lost", "hook", name, "index", i, "role", ev.Role, "duration", time.Since(start))
			return err
		}
		if err != nil {
			c.metrics.hookFailures.WithLabelValues(string(name)).Inc()
			err = fmt.Errorf("hook %s[%d]: %w", name, i, err)
			c.log.Error("hook failed", "hook", name, "index", i, "role", ev.Role, "duration", time.Since(start), "err", err)
			return err
		}
		c.log.Info("hook ran", "hook", name, "index", i, "role", ev.Role, "duration", time.Since(start))
	}
	return nil
}

// startService starts the service and the port probes.
func (l *loop) startService() error {
	c := l.c
	ev := l.event("", coordinator.RoleNone, nil, nil)
	p, err := c.svc.start(ev.serviceEnviron())
	if err != nil {
		return err
	}
	l.running = true
	c.log.Info("service started", "pid", p.Pid, "role", l.role)
	if err := l.publish(l.bctx, coordinator.StateRunning); err != nil {
		c.log.Warn("publish state", "state", coordinator.StateRunning, "err", err)
	}
	if len(c.cfg.PortsWhenActive) == 0 {
		l.becameActive() // no ports to wait for: active as soon as it runs
		return nil
	}
	// A channel per probe: a report that a stopped probe was still
	// sending must not be taken for the restarted service's.
	ctx, cancel := context.WithCancel(l.bctx)
	ch := make(chan bool)
	l.pollCancel, l.activeCh = cancel, ch
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.probePorts(ctx, ch)
	}()
	return nil
}

// stopService stops the port probes and the service, and returns the
// service's exit code (ok false when there was no service).
func (l *loop) stopService() (code int, ok bool) {
	if l.pollCancel != nil {
		l.pollCancel()
		l.pollCancel, l.activeCh = nil, nil
	}
	l.running = false
	st, ok := l.c.svc.stop()
	if ok {
		l.c.log.Info("service stopped", "status", st.String())
	}
	return st.ExitCode(), ok
}

// probePorts reports on ch each time the ports all start or stop accepting
// connections, probing every ActiveCheckInterval on the clock.
func (l *loop) probePorts(ctx context.Context, ch chan<- bool) {
	c := l.c
	active := false
	for {
		open := portsOpen(ctx, c.cfg.PortsWhenActive)
		if open != active {
			select {
			case ch <- open:
				active = open
			case <-ctx.Done():
				return
			}
		}
		t := c.cfg.Clock.NewTimer(c.cfg.ActiveCheckInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// portsOpen reports whether every port accepts a TCP connection on
// localhost.
func portsOpen(ctx context.Context, ports []int) bool {
	for _, p := range ports {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("localhost", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		conn.Close()
	}
	return true
}

// becameActive publishes the state active and runs became_active.
func (l *loop) becameActive() {
	c := l.c
	c.log.Info("active", "ports", fmt.Sprint(c.cfg.PortsWhenActive))
	if err := l.publish(l.bctx, coordinator.StateActive); err != nil {
		c.log.Warn("publish state", "state", coordinator.StateActive, "err", err)
	}
	l.runHooks(HookBecameActive, l.role, nil, nil)
}

// activeChanged handles the ports opening or closing, and reports whether to
// go on.
func (l *loop) activeChanged(open bool) bool {
	c := l.c
	if open {
		l.becameActive()
		return true
	}
	c.log.Warn("no longer active", "ports", fmt.Sprint(c.cfg.PortsWhenActive))
	if err := l.publish(l.bctx, coordinator.StateRunning); err != nil {
		c.log.Warn("publish state", "state", coordinator.StateRunning, "err", err)
	}
	if c.cfg.TerminateWhenNoLongerActive {
		l.stop(useServiceCode, nil)
		return false
	}
	return true
}

// shutdown is the ordered stop: stopping hook, the service and its whole
// group, then the state; Run resigns and closes after every actor returned.
func (l *loop) shutdown() {
	c := l.c
	l.stopPositions() // the record keeps the last position read
	if l.campaignCancel != nil {
		l.campaignCancel()
	}
	if l.watchCancel != nil {
		l.watchCancel()
	}
	state := coordinator.StateStopping
	if c.Status().State == coordinator.StateFailed {
		state = coordinator.StateFailed
	}
	published := l.publishAsync(state) // in parallel: the stop must not wait on the backend
	if l.started {
		l.runHooks(HookStopping, l.role, nil, nil)
	}
	code, ran := ExitOK, false
	if c.svc != nil {
		code, ran = l.stopService()
		c.svc.done()
	}
	// The service is gone: no deadline of a demotion is left to keep.
	l.disarm(l.fence)
	l.disarm(l.demoting)
	published()
	close(l.quit)
	l.wg.Wait()
	if l.campaign != nil {
		if r := <-l.campaign; r.lead != nil && l.lead == nil {
			l.lead = r.lead // won while stopping: Run resigns it
		}
	}
	c.lead = l.lead
	if c.stopCode != useServiceCode {
		code = c.stopCode
	} else if !ran {
		code = ExitOK
	}
	c.exitCode = code
	if c.stopErr != nil {
		state = coordinator.StateFailed
	} else {
		state = coordinator.StateStopped
	}
	l.finalState(state)
}

// finalState sets the state, and publishes it while the session lives.
func (l *loop) finalState(state coordinator.State) {
	l.record.State = state
	l.c.setStatus(func(s *Status) { s.State = state })
	if l.c.coord.Err() != nil {
		return
	}
	if err := l.publish(l.bctx, state); err != nil {
		l.c.log.Warn("publish state", "state", state, "err", err)
	}
}

func sortByID(ms []coordinator.Member) {
	if len(ms) < 2 {
		return
	}
	sorted := sortedMembers(toMap(ms))
	copy(ms, sorted)
}

func toMap(ms []coordinator.Member) map[string]coordinator.Member {
	m := make(map[string]coordinator.Member, len(ms))
	for _, x := range ms {
		m[x.ID] = x
	}
	return m
}
