package lifecycle_test

import (
	"context"
	"net"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ccctl/ccctl/backends/memory/memorytest"
	"github.com/ccctl/ccctl/lifecycle"
)

// short is the event of a line alone, for hooks whose view of the cluster
// depends on which of two simultaneous changes came first.
func short(l hookLine) string { return l.Event }

// TestTransitions drives a cluster through every transition and checks
// that each member ran each hook exactly once, in order, with the right
// CC_* values, and told its extension the right roles.
func TestTransitions(t *testing.T) {
	type want struct {
		lines []string // the whole log, in order
		tail  []string // then these events, in any order
		roles []string // what the extension was told
		code  int      // Run's exit code
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h *harness) []*member
		want map[string]want
	}{
		{
			name: "alone",
			run: func(t *testing.T, h *harness) []*member {
				a := h.run("a")
				a.waitLines(t, 2)
				a.stop(t)
				return []*member{a}
			},
			want: map[string]want{"a": {
				lines: []string{
					"start role= prev= master= members=a",
					"started_as_master role=master prev= master=a tok members=a",
					"stopping role=master prev=master master=a tok members=a",
				},
				roles: []string{"master tok"},
			}},
		},
		{
			name: "slave joins and leaves",
			run: func(t *testing.T, h *harness) []*member {
				a := h.run("a")
				a.waitLines(t, 2)
				b := h.run("b")
				b.waitLines(t, 2)
				a.waitLines(t, 3)
				b.stop(t)
				a.waitLines(t, 4)
				a.stop(t)
				return []*member{a, b}
			},
			want: map[string]want{
				"a": {lines: []string{
					"start role= prev= master= members=a",
					"started_as_master role=master prev= master=a tok members=a",
					"members_added role=master prev=master master=a tok members=a,b added=b removed=",
					"members_removed role=master prev=master master=a tok members=a added= removed=b",
					"stopping role=master prev=master master=a tok members=a",
				}, roles: []string{"master tok"}},
				"b": {lines: []string{
					"start role= prev= master= members=b",
					"started_as_slave role=slave prev= master=a tok members=a,b",
					"stopping role=slave prev=slave master=a tok members=a,b",
				}, roles: []string{"slave"}},
			},
		},
		{
			name: "switchover",
			run: func(t *testing.T, h *harness) []*member {
				a := h.run("a")
				a.waitLines(t, 2)
				b := h.run("b")
				b.waitLines(t, 2)
				a.waitLines(t, 3)
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				if _, err := a.coord.Switchover(ctx, "b"); err != nil {
					t.Fatalf("switchover: %v", err)
				}
				b.waitLines(t, 3)
				a.waitLines(t, 5)
				b.stop(t)
				a.waitLines(t, 7)
				a.stop(t)
				return []*member{a, b}
			},
			want: map[string]want{
				"a": {
					lines: []string{
						"start role= prev= master= members=a",
						"started_as_master role=master prev= master=a tok members=a",
						"members_added role=master prev=master master=a tok members=a,b added=b removed=",
						"transition_master_to_slave role=slave prev=master master= members=a,b",
						"master_changed role=slave prev=slave master=b tok members=a,b",
					},
					// b stopping: a takes over again
					tail:  []string{"members_removed", "transition_slave_to_master", "stopping"},
					roles: []string{"master tok", "slave", "master tok"},
				},
				"b": {lines: []string{
					"start role= prev= master= members=b",
					"started_as_slave role=slave prev= master=a tok members=a,b",
					"transition_slave_to_master role=master prev=slave master=b tok members=a,b",
					"stopping role=master prev=master master=b tok members=a,b",
				}, roles: []string{"slave", "master tok"}},
			},
		},
		{
			name: "master stops, slave takes over at once",
			run: func(t *testing.T, h *harness) []*member {
				a := h.run("a")
				a.waitLines(t, 2)
				b := h.run("b")
				b.waitLines(t, 2)
				a.waitLines(t, 3)
				a.stop(t) // no clock advance: b can only win because a resigned
				b.waitLines(t, 4)
				b.stop(t)
				return []*member{a, b}
			},
			want: map[string]want{
				"a": {lines: []string{
					"start role= prev= master= members=a",
					"started_as_master role=master prev= master=a tok members=a",
					"members_added role=master prev=master master=a tok members=a,b added=b removed=",
					"stopping role=master prev=master master=a tok members=a,b",
				}, roles: []string{"master tok"}},
				"b": {
					lines: []string{
						"start role= prev= master= members=b",
						"started_as_slave role=slave prev= master=a tok members=a,b",
					},
					tail:  []string{"transition_slave_to_master", "members_removed", "stopping"},
					roles: []string{"slave", "master tok"},
				},
			},
		},
		{
			name: "master cut off: demotes, slave takes over after the ttl, master rejoins as slave",
			run: func(t *testing.T, h *harness) []*member {
				a := h.run("a")
				a.waitLines(t, 2)
				b := h.run("b")
				b.waitLines(t, 2)
				a.waitLines(t, 3)
				memorytest.Partition(a.coord, true)
				waitFor(t, "b to take over", func() bool {
					h.clk.Advance(100 * time.Millisecond)
					return len(b.lines(t)) >= 4
				})
				a.waitLines(t, 4) // demoted while cut off
				memorytest.Partition(a.coord, false)
				waitFor(t, "a to rejoin and see b", func() bool {
					h.clk.Advance(100 * time.Millisecond)
					return len(a.lines(t)) >= 5
				})
				if a.exited() {
					t.Fatal("a exited; want it to ride through the outage")
				}
				b.waitLines(t, 5) // a came back
				a.stop(t)
				b.waitLines(t, 6) // a left
				b.stop(t)
				return []*member{a, b}
			},
			want: map[string]want{
				"a": {lines: []string{
					"start role= prev= master= members=a",
					"started_as_master role=master prev= master=a tok members=a",
					"members_added role=master prev=master master=a tok members=a,b added=b removed=",
					"transition_master_to_slave role=slave prev=master master= members=a,b",
					"master_changed role=slave prev=slave master=b tok members=a,b",
					"stopping role=slave prev=slave master=b tok members=a,b",
				}, roles: []string{"master tok", "slave"}},
				"b": {
					lines: []string{
						"start role= prev= master= members=b",
						"started_as_slave role=slave prev= master=a tok members=a,b",
					},
					tail:  []string{"transition_slave_to_master", "members_removed", "members_added", "members_removed", "stopping"},
					roles: []string{"slave", "master tok"},
				},
			},
		},
		{
			name: "paused at boot: slave until resumed",
			run: func(t *testing.T, h *harness) []*member {
				a := h.newMember("a", nil)
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				if err := a.coord.Pause(ctx); err != nil {
					t.Fatalf("pause: %v", err)
				}
				h.start(a)
				a.waitLines(t, 2)
				waitFor(t, "status paused", func() bool { return a.ctl.Status().Paused })
				if err := a.coord.Resume(ctx); err != nil {
					t.Fatalf("resume: %v", err)
				}
				a.waitLines(t, 3)
				a.stop(t)
				return []*member{a}
			},
			want: map[string]want{"a": {lines: []string{
				"start role= prev= master= members=a",
				"started_as_slave role=slave prev= master= members=a",
				"transition_slave_to_master role=master prev=slave master=a tok members=a",
				"stopping role=master prev=master master=a tok members=a",
			}, roles: []string{"slave", "master tok"}}},
		},
		{
			name: "ports open: became_active; ports close: terminated",
			run: func(t *testing.T, h *harness) []*member {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				port := ln.Addr().(*net.TCPAddr).Port
				ln.Close()
				a := h.start(h.newMember("a", func(c *lifecycle.Config) {
					c.Service.Argv = []string{"sleep", "600"}
					c.PortsWhenActive = []int{port}
					c.TerminateWhenNoLongerActive = true
				}))
				a.waitLines(t, 2)
				waitFor(t, "state running", func() bool { return a.ctl.Status().State == "running" })
				ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, "became_active", func() bool {
					h.clk.Advance(time.Second)
					return len(a.lines(t)) >= 3
				})
				if st := a.ctl.Status().State; st != "active" {
					t.Errorf("state after became_active: got %s; want active", st)
				}
				ln.Close()
				waitFor(t, "the controller to stop", func() bool {
					h.clk.Advance(time.Second)
					return a.exited()
				})
				return []*member{a}
			},
			want: map[string]want{"a": {lines: []string{
				"start role= prev= master= members=a",
				"started_as_master role=master prev= master=a tok members=a",
				"became_active role=master prev=master master=a tok members=a",
				"stopping role=master prev=master master=a tok members=a",
			}, roles: []string{"master tok"}, code: 128 + 15}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			members := tc.run(t, h)
			for _, m := range members {
				w := tc.want[m.id]
				code, _ := m.wait(t)
				if code != w.code {
					t.Errorf("%s: exit code: got %d; want %d (err %v)", m.id, code, w.code, m.err)
				}
				got := m.lines(t)
				n := len(w.lines)
				if len(got) < n {
					n = len(got)
				}
				if g := strs(got[:n]); !reflect.DeepEqual(g, w.lines) || len(got) != len(w.lines)+len(w.tail) {
					t.Errorf("%s: hooks:\n got %q\nwant %q then, in any order, %q", m.id, strs(got), w.lines, w.tail)
					continue
				}
				var tail []string
				for _, l := range got[n:] {
					tail = append(tail, short(l))
				}
				if !reflect.DeepEqual(sorted(tail), sorted(w.tail)) {
					t.Errorf("%s: last hooks: got %q; want, in any order, %q", m.id, tail, w.tail)
				}
				if r := m.ext.got(); !reflect.DeepEqual(r, w.roles) {
					t.Errorf("%s: roles told to the extension: got %q; want %q", m.id, r, w.roles)
				}
			}
			checkTokens(t, members)
		})
	}
}

// checkTokens checks that every term's token is a positive number used
// once.
func checkTokens(t *testing.T, members []*member) {
	t.Helper()
	seen := map[int64]bool{}
	for _, m := range members {
		for _, l := range m.lines(t) {
			if l.Event != "started_as_master" && l.Event != "transition_slave_to_master" {
				continue
			}
			tok, err := strconv.ParseInt(l.Token, 10, 64)
			if err != nil || tok <= 0 {
				t.Errorf("%s: %s: CC_FENCING_TOKEN %q: want a positive number", m.id, l.Event, l.Token)
			}
			if seen[tok] {
				t.Errorf("%s: %s: token %d reused", m.id, l.Event, tok)
			}
			seen[tok] = true
		}
	}
}
