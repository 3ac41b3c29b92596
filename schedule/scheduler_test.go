package schedule_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccctl/ccctl/clock"
	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/schedule"
)

func TestNewValidates(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name string
		jobs []schedule.Job
		want string
	}{
		{"bad name", []schedule.Job{{Name: "a b", Schedule: "@daily", Func: ok}}, `job "a b": name "a b"`},
		{"bad schedule", []schedule.Job{{Name: "j", Schedule: "every day", Func: ok}}, `job j: schedule: parse schedule "every day": expected 5 to 6 fields`},
		{"bad role", []schedule.Job{{Name: "j", Schedule: "@daily", Role: "leader", Func: ok}}, `job j: role "leader": want master, slave or any`},
		{"bad overlap", []schedule.Job{{Name: "j", Schedule: "@daily", Overlap: "never", Func: ok}}, `job j: overlap "never": want skip, queue or replace`},
		{"no command", []schedule.Job{{Name: "j", Schedule: "@daily"}}, `job j: command: empty`},
		{"both", []schedule.Job{{Name: "j", Schedule: "@daily", Func: ok, Command: []string{"true"}}}, `job j: command: both`},
		{"empty program", []schedule.Job{{Name: "j", Schedule: "@daily", Command: []string{""}}}, `job j: command: empty program name`},
		{"negative timeout", []schedule.Job{{Name: "j", Schedule: "@daily", Func: ok, Timeout: -time.Second}}, `job j: timeout -1s: negative`},
		{"negative jitter", []schedule.Job{{Name: "j", Schedule: "@daily", Func: ok, Jitter: -time.Second}}, `job j: jitter -1s: negative`},
		{"duplicate", []schedule.Job{{Name: "j", Schedule: "@daily", Func: ok}, {Name: "j", Schedule: "@hourly", Func: ok}}, `job j: name: used by two jobs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := schedule.New(schedule.Config{Jobs: tt.jobs})
			if err == nil {
				t.Fatalf("New: got nil error; want %q", tt.want)
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) || strings.Contains(got, "\n") {
				t.Errorf("New: got %q; want one line starting %q", got, tt.want)
			}
			if len(tt.jobs) == 1 {
				if verr := tt.jobs[0].Validate(nil); verr == nil || verr.Error() != err.Error() {
					t.Errorf("Validate: got %v; want %v, the error of New", verr, err)
				}
			}
		})
	}
	if _, err := schedule.New(schedule.Config{Jobs: []schedule.Job{{Name: "j", Schedule: "@daily", Func: ok}}, MissedWindow: -time.Second}); err == nil {
		t.Errorf("New with a negative missed window: got nil error; want one")
	}
}

func TestSchedulerRunsJobOnItsSlots(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	reg := prometheus.NewRegistry()
	b := newBlocker()
	s, err := schedule.New(schedule.Config{
		Jobs:       []schedule.Job{{Name: "tick", Schedule: "* * * * *", Role: schedule.RoleAny, Func: b.run}},
		Clock:      clk,
		Registerer: reg,
		Logger:     newLogSink().logger(),
		MemberID:   "m1",
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	waitTimers(t, clk, 1)
	if got, want := s.Status()["tick"].Next, t0.Add(time.Minute); !got.Equal(want) {
		t.Errorf("Next: got %v; want %v", got, want)
	}
	clk.Advance(29 * time.Second)
	waitTimers(t, clk, 1)
	select {
	case ri := <-b.started:
		t.Fatalf("ran at %v before its slot", ri.Slot)
	default:
	}
	for i := 1; i <= 2; i++ {
		clk.Set(t0.Add(time.Duration(i) * time.Minute))
		ri := recv(t, b.started, "run")
		if want := t0.Add(time.Duration(i) * time.Minute); !ri.Slot.Equal(want) || ri.Job != "tick" {
			t.Errorf("run %d: got %+v; want job tick, slot %v", i, ri, want)
		}
		clk.Advance(3 * time.Second)
		b.release <- struct{}{}
		waitIdle(t, s, "tick")
		waitTimers(t, clk, 1)
	}
	stop()
	st := s.Status()["tick"]
	if want := t0.Add(2 * time.Minute); !st.LastRun.Equal(want) || !st.Slot.Equal(want) || st.Result != schedule.ResultSuccess || st.Duration != 3*time.Second || st.Running {
		t.Errorf("status: got %+v; want last run and slot %v, success, 3s, not running", st, want)
	}
	for name, want := range map[string]float64{
		"ccctl_executions": 2, "ccctl_successful_executions": 2, "ccctl_failed_executions": 0,
		"ccctl_currently_running": 0, "ccctl_cron_execution_time_seconds": 2,
	} {
		if got := metricValue(t, reg, name, "tick"); got != want {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
}

func TestSchedulerRoles(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	type run struct {
		job   string
		slot  time.Time
		role  coordinator.Role
		token int64
	}
	runs := make(chan run, 100)
	rec := func(ctx context.Context) error {
		ri, _ := schedule.RunInfoFrom(ctx)
		runs <- run{ri.Job, ri.Slot, ri.Role, ri.Token}
		return nil
	}
	s, err := schedule.New(schedule.Config{
		Jobs: []schedule.Job{
			{Name: "m", Schedule: "* * * * *", Role: schedule.RoleMaster, Func: rec, Overlap: schedule.OverlapQueue},
			{Name: "s", Schedule: "* * * * *", Role: schedule.RoleSlave, Func: rec, Overlap: schedule.OverlapQueue},
			{Name: "a", Schedule: "* * * * *", Role: schedule.RoleAny, Func: rec, Overlap: schedule.OverlapQueue},
			{Name: "default", Schedule: "* * * * *", Func: rec, Overlap: schedule.OverlapQueue},
		},
		Clock:  clk,
		Logger: newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	waitTimers(t, clk, 4)
	var want []run
	steps := []struct {
		role  coordinator.Role
		token int64
		jobs  []string
	}{
		{coordinator.RoleNone, 0, []string{"a"}},
		{coordinator.RoleSlave, 0, []string{"s", "a"}},
		{coordinator.RoleMaster, 7, []string{"m", "a", "default"}},
		{coordinator.RoleSlave, 0, []string{"s", "a"}},
	}
	got := map[run]bool{}
	for i, st := range steps {
		s.RoleChanged(st.role, st.token)
		slot := t0.Add(time.Duration(i+1) * time.Minute)
		clk.Set(slot)
		for _, j := range st.jobs {
			want = append(want, run{j, slot, st.role, st.token})
		}
		for range st.jobs {
			got[recv(t, runs, "run")] = true
		}
		waitTimers(t, clk, 4)
	}
	stop()
	close(runs)
	for r := range runs {
		t.Errorf("unexpected run %+v", r)
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("runs: got %v; want %+v among them", got, w)
		}
	}
}

func TestOverlapSkip(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	b := newBlocker()
	logs := newLogSink()
	s, err := schedule.New(schedule.Config{
		Jobs:   []schedule.Job{{Name: "j", Schedule: "* * * * *", Role: schedule.RoleAny, Func: b.run}},
		Clock:  clk,
		Logger: logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	recv(t, b.started, "run of slot 1")
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(2 * time.Minute))
	logs.waitFor(t, "job slot skipped", "slot=2026-01-05T10:02:00")
	b.release <- struct{}{}
	waitIdle(t, s, "j")
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(3 * time.Minute))
	if ri := recv(t, b.started, "run of slot 3"); !ri.Slot.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("second run: got slot %v; want %v", ri.Slot, t0.Add(3*time.Minute))
	}
	b.release <- struct{}{}
	stop()
	if n := len(b.started); n != 0 {
		t.Errorf("runs after the second: got %d; want 0", n)
	}
}

func TestOverlapQueue(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	b := newBlocker()
	logs := newLogSink()
	s, err := schedule.New(schedule.Config{
		Jobs:   []schedule.Job{{Name: "j", Schedule: "* * * * *", Role: schedule.RoleAny, Overlap: schedule.OverlapQueue, Func: b.run}},
		Clock:  clk,
		Logger: logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	recv(t, b.started, "run of slot 1")
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(2 * time.Minute))
	logs.waitFor(t, "job slot queued", "slot=2026-01-05T10:02:00")
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(3 * time.Minute))
	logs.waitFor(t, "job slot dropped", "slot=2026-01-05T10:03:00")
	b.release <- struct{}{}
	if ri := recv(t, b.started, "queued run"); !ri.Slot.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("queued run: got slot %v; want %v", ri.Slot, t0.Add(2*time.Minute))
	}
	b.release <- struct{}{}
	waitIdle(t, s, "j")
	stop()
	if n := len(b.started); n != 0 {
		t.Errorf("runs after the queued one: got %d; want 0", n)
	}
}

func TestOverlapReplace(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	b := newBlocker()
	s, err := schedule.New(schedule.Config{
		Jobs:   []schedule.Job{{Name: "j", Schedule: "* * * * *", Role: schedule.RoleAny, Overlap: schedule.OverlapReplace, Func: b.run}},
		Clock:  clk,
		Logger: newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	recv(t, b.started, "run of slot 1")
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(2 * time.Minute))
	if err := recv(t, b.ended, "end of the replaced run"); !errors.Is(err, schedule.ErrReplaced) {
		t.Errorf("replaced run's cause: got %v; want %v", err, schedule.ErrReplaced)
	}
	if ri := recv(t, b.started, "replacing run"); !ri.Slot.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("replacing run: got slot %v; want %v", ri.Slot, t0.Add(2*time.Minute))
	}
	stop()
	if err := recv(t, b.ended, "end of the replacing run"); !errors.Is(err, schedule.ErrStopped) {
		t.Errorf("run at stop: got cause %v; want %v", err, schedule.ErrStopped)
	}
	if st := s.Status()["j"]; st.Result != schedule.ResultCancelled || !strings.Contains(st.Error, "scheduler stopped") {
		t.Errorf("status: got %+v; want cancelled by the stop", st)
	}
}

func TestTimeout(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	reg := prometheus.NewRegistry()
	b := newBlocker()
	s, err := schedule.New(schedule.Config{
		Jobs:       []schedule.Job{{Name: "slow", Schedule: "* * * * *", Role: schedule.RoleAny, Timeout: 30 * time.Second, Func: b.run}},
		Clock:      clk,
		Registerer: reg,
		Logger:     newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	recv(t, b.started, "run")
	waitTimers(t, clk, 2) // the next slot and the timeout
	clk.Advance(29 * time.Second)
	select {
	case err := <-b.ended:
		t.Fatalf("run ended after 29s of a 30s timeout: %v", err)
	default:
	}
	clk.Advance(time.Second)
	if err := recv(t, b.ended, "end of the run"); !errors.Is(err, schedule.ErrTimeout) {
		t.Errorf("cause: got %v; want %v", err, schedule.ErrTimeout)
	}
	st := waitIdle(t, s, "slow")
	if st.Result != schedule.ResultDeadlineExceeded || st.Duration != 30*time.Second {
		t.Errorf("status: got %+v; want deadline_exceeded after 30s", st)
	}
	for name, want := range map[string]float64{
		"ccctl_executions": 1, "ccctl_successful_executions": 0, "ccctl_failed_executions": 1, "ccctl_deadline_exceeded": 1,
	} {
		if got := metricValue(t, reg, name, "slow"); got != want {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
}

func TestJitterDelaysRunNotSlot(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	b := newBlocker()
	s, err := schedule.New(schedule.Config{
		Jobs:   []schedule.Job{{Name: "j", Schedule: "* * * * *", Role: schedule.RoleAny, Jitter: 10 * time.Second, Func: b.run}},
		Clock:  clk,
		Logger: newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	waitTimers(t, clk, 2) // the next slot and the jitter, unless the jitter drew 0
	if n := len(b.started); n != 0 {
		t.Errorf("runs before the jitter passed: got %d; want 0", n)
	}
	clk.Advance(10 * time.Second)
	ri := recv(t, b.started, "run")
	if !ri.Slot.Equal(t0.Add(time.Minute)) {
		t.Errorf("slot: got %v; want %v", ri.Slot, t0.Add(time.Minute))
	}
	b.release <- struct{}{}
	st := waitIdle(t, s, "j")
	if st.LastRun.Before(t0.Add(time.Minute)) || st.LastRun.After(t0.Add(time.Minute+10*time.Second)) {
		t.Errorf("started at %v; want within [slot, slot+10s]", st.LastRun)
	}
}

func TestRoleLostCancelsGoJob(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	b := newBlocker()
	s, err := schedule.New(schedule.Config{
		Jobs:   []schedule.Job{{Name: "backup", Schedule: "* * * * *", Role: schedule.RoleMaster, Func: b.run}},
		Clock:  clk,
		Logger: newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	s.RoleChanged(coordinator.RoleMaster, 3)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	if ri := recv(t, b.started, "run"); ri.Token != 3 || ri.Role != coordinator.RoleMaster {
		t.Errorf("run info: got %+v; want master with token 3", ri)
	}
	s.RoleChanged(coordinator.RoleSlave, 0)
	if err := recv(t, b.ended, "end of the run"); !errors.Is(err, schedule.ErrRoleLost) {
		t.Errorf("cause: got %v; want %v", err, schedule.ErrRoleLost)
	}
	if st := waitIdle(t, s, "backup"); st.Result != schedule.ResultCancelled {
		t.Errorf("status: got %+v; want cancelled", st)
	}
}

func TestShellJobOutputAndEnvironment(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	logs := newLogSink()
	s, err := schedule.New(schedule.Config{
		Jobs: []schedule.Job{{
			Name: "sh", Schedule: "* * * * *", Role: schedule.RoleMaster,
			Command: schedule.ShellCommand(`echo "out $CC_JOB $CC_ROLE $CC_FENCING_TOKEN $CC_SCHEDULED_TIME $CC_INSTANCE_ID"; echo oops >&2; printf partial`),
		}},
		Clock:    clk,
		Logger:   logs.logger(),
		MemberID: "web-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	s.RoleChanged(coordinator.RoleMaster, 42)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	logs.waitFor(t, "job ended", "job=sh", "result=success")
	logs.waitFor(t, "member=web-1", "job=sh", "stream=stdout", `line="out sh master 42 2026-01-05T10:01:00Z web-1"`)
	logs.waitFor(t, "job=sh", "stream=stderr", "line=oops")
	logs.waitFor(t, "job=sh", "stream=stdout", "line=partial")
	if st := waitIdle(t, s, "sh"); st.Result != schedule.ResultSuccess {
		t.Errorf("status: got %+v; want success", st)
	}
}

func TestShellJobRoleLostTermThenKill(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	logs := newLogSink()
	const grace = 300 * time.Millisecond
	s, err := schedule.New(schedule.Config{
		Jobs: []schedule.Job{{
			Name: "stubborn", Schedule: "* * * * *", Role: schedule.RoleMaster,
			Command: schedule.ShellCommand(`trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.05; done`),
		}},
		Clock:       clk,
		Logger:      logs.logger(),
		GracePeriod: grace,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	s.RoleChanged(coordinator.RoleMaster, 1)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	logs.waitFor(t, "job=stubborn", "line=ready")
	began := time.Now()
	s.RoleChanged(coordinator.RoleSlave, 0)
	logs.waitFor(t, "job ended", "job=stubborn", "result=cancelled", "signal: killed")
	elapsed := time.Since(began)
	logs.waitFor(t, "job=stubborn", `line="got TERM"`)
	if elapsed < grace {
		t.Errorf("killed after %v; want SIGKILL only after the %v grace", elapsed, grace)
	}
	t.Logf("role lost to SIGKILL: %v (grace %v)", elapsed, grace)
	if st := waitIdle(t, s, "stubborn"); st.Result != schedule.ResultCancelled || !strings.Contains(st.Error, "role lost") {
		t.Errorf("status: got %+v; want cancelled, role lost", st)
	}
}

func TestShellJobTimeoutTerminates(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	logs := newLogSink()
	s, err := schedule.New(schedule.Config{
		Jobs: []schedule.Job{{
			Name: "sleepy", Schedule: "* * * * *", Role: schedule.RoleAny, Timeout: 10 * time.Second,
			Command: schedule.ShellCommand(`echo ready; exec sleep 60`),
		}},
		Clock:  clk,
		Logger: logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitTimers(t, clk, 1)
	clk.Set(t0.Add(time.Minute))
	logs.waitFor(t, "job=sleepy", "line=ready")
	waitTimers(t, clk, 2)
	clk.Advance(10 * time.Second)
	logs.waitFor(t, "job ended", "job=sleepy", "result=deadline_exceeded", "signal: terminated")
}

func TestCatchUpAfterTakeover(t *testing.T) {
	slot := t0.Add(5 * time.Minute)
	tests := []struct {
		name      string
		takenBy   string        // member that claimed the slot before, if any
		after     time.Duration // how long after the slot the member becomes master
		wantRun   bool
		wantClaim bool
	}{
		{"unclaimed slot within the window", "", 20 * time.Second, true, true},
		{"slot claimed by the old master", "old", 20 * time.Second, false, true},
		{"slot beyond the window", "", 90 * time.Second, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0.Add(30 * time.Second))
			store := newClaimStore()
			if tt.takenBy != "" {
				store.For(tt.takenBy).ClaimSlot(context.Background(), "backup", slot, time.Hour)
			}
			b := newBlocker()
			s, err := schedule.New(schedule.Config{
				Jobs:         []schedule.Job{{Name: "backup", Schedule: "*/5 * * * *", Role: schedule.RoleMaster, Func: b.run}},
				Clock:        clk,
				Claimer:      store.For("new"),
				MemberID:     "new",
				MissedWindow: time.Minute,
				Logger:       newLogSink().logger(),
			})
			if err != nil {
				t.Fatal(err)
			}
			start(t, s)
			s.RoleChanged(coordinator.RoleSlave, 0)
			waitTimers(t, clk, 1)
			clk.Set(slot)
			waitTimers(t, clk, 1)
			clk.Set(slot.Add(tt.after))
			waitTimers(t, clk, 1)
			s.RoleChanged(coordinator.RoleMaster, 2)
			if tt.wantRun {
				if ri := recv(t, b.started, "catch-up run"); !ri.Slot.Equal(slot) || ri.Token != 2 {
					t.Errorf("catch-up run: got %+v; want slot %v, token 2", ri, slot)
				}
				b.release <- struct{}{}
				waitIdle(t, s, "backup")
			}
			if tt.wantClaim {
				store.waitAttempt(t, "new backup "+slot.Format(time.RFC3339Nano))
			}
			// The next slot runs, which shows the role change was handled.
			next := s.Status()["backup"].Next
			clk.Set(next)
			if ri := recv(t, b.started, "next run"); !ri.Slot.Equal(next) {
				t.Errorf("next run: got slot %v; want %v", ri.Slot, next)
			}
			b.release <- struct{}{}
			waitIdle(t, s, "backup")
			claimed := false
			for _, a := range store.Attempts() {
				if strings.HasPrefix(a, "new backup "+slot.Format(time.RFC3339Nano)) {
					claimed = true
				}
			}
			if claimed != tt.wantClaim {
				t.Errorf("claim attempted for the missed slot: got %v; want %v (attempts %q)", claimed, tt.wantClaim, store.Attempts())
			}
			if n := len(b.started); n != 0 {
				t.Errorf("extra runs: got %d; want 0", n)
			}
		})
	}
}

func TestNewTermCancelsMasterRun(t *testing.T) {
	clk := clock.NewFake(t0.Add(30 * time.Second))
	b := newBlocker()
	s, err := schedule.New(schedule.Config{
		Jobs: []schedule.Job{
			{Name: "backup", Schedule: "* * * * *", Role: schedule.RoleMaster, Func: b.run},
			{Name: "any", Schedule: "* * * * *", Role: schedule.RoleAny, Func: b.run},
		},
		Clock:  clk,
		Logger: newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	s.RoleChanged(coordinator.RoleMaster, 1)
	waitTimers(t, clk, 2)
	clk.Set(t0.Add(time.Minute))
	recv(t, b.started, "first run")
	recv(t, b.started, "second run")
	s.RoleChanged(coordinator.RoleMaster, 2) // a new term, as after a lost and regained leadership
	if err := recv(t, b.ended, "end of the master-only run"); !errors.Is(err, schedule.ErrRoleLost) {
		t.Errorf("cause: got %v; want %v", err, schedule.ErrRoleLost)
	}
	waitIdle(t, s, "backup")
	if st := s.Status()["any"]; !st.Running {
		t.Errorf("job for any role: got %+v; want it still running", st)
	}
	stop()
	if err := recv(t, b.ended, "end of the other run"); !errors.Is(err, schedule.ErrStopped) {
		t.Errorf("cause: got %v; want %v", err, schedule.ErrStopped)
	}
}

// TestNoCatchUpOfSlotBeforeStart: a member whose scheduler starts after a
// slot and becomes master (a brand-new cluster's first master) does not run
// that slot as missed: it was never due for it.
func TestNoCatchUpOfSlotBeforeStart(t *testing.T) {
	slot := t0.Add(5 * time.Minute)
	clk := clock.NewFake(slot.Add(20 * time.Second))
	store := newClaimStore()
	b := newBlocker()
	s, err := schedule.New(schedule.Config{
		Jobs:         []schedule.Job{{Name: "backup", Schedule: "*/5 * * * *", Role: schedule.RoleMaster, Func: b.run}},
		Clock:        clk,
		Claimer:      store.For("first"),
		MemberID:     "first",
		MissedWindow: time.Minute,
		Logger:       newLogSink().logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	s.RoleChanged(coordinator.RoleMaster, 1)
	waitTimers(t, clk, 1)
	next := s.Status()["backup"].Next
	clk.Set(next)
	if ri := recv(t, b.started, "next run"); !ri.Slot.Equal(next) {
		t.Errorf("first run: got slot %v; want %v, not the slot %v from before the start", ri.Slot, next, slot)
	}
	b.release <- struct{}{}
	waitIdle(t, s, "backup")
	for _, a := range store.Attempts() {
		if strings.HasPrefix(a, "first backup "+slot.Format(time.RFC3339Nano)) {
			t.Errorf("claim attempted for the slot from before the start: %q", a)
		}
	}
}
