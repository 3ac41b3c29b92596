//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// mark is one line of a drill's timeline: what a hook or the demo service
// recorded, with the token it knew (0 when none).
type mark struct {
	At     time.Time
	Member string
	Event  string
	Token  int64
}

func (m mark) String() string {
	return fmt.Sprintf("%s %s %s %d", m.At.Format("15:04:05.000000"), m.Member, m.Event, m.Token)
}

// The events that begin and end a master's term, as the timeline shows them.
const (
	evStart          = "start"
	evStartedMaster  = "started_as_master"
	evStartedSlave   = "started_as_slave"
	evSlaveToMaster  = "transition_slave_to_master"
	evMasterToSlave  = "transition_master_to_slave"
	evMasterChanged  = "master_changed"
	evStopping       = "stopping"
	evServiceStarted = "service_started"
	evServiceStopped = "service_stopped"
	evWriteOK        = "write_ok"
	evWriteStale     = "write_stale"
)

// readTimeline parses the timeline file in dir, in time order.
func readTimeline(dir string) ([]mark, error) {
	f, err := os.Open(filepath.Join(dir, "events"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var marks []mark
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 {
			return nil, fmt.Errorf("timeline line %q: want 4 fields", sc.Text())
		}
		ns, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("timeline line %q: %v", sc.Text(), err)
		}
		tok, _ := strconv.ParseInt(fs[3], 10, 64)
		marks = append(marks, mark{At: time.Unix(0, ns), Member: fs[1], Event: fs[2], Token: tok})
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].At.Before(marks[j].At) })
	return marks, sc.Err()
}

// filter returns the marks of the given events (any event when none), by
// member when member is not empty.
func filter(marks []mark, member string, events ...string) []mark {
	var out []mark
	for _, m := range marks {
		if member != "" && m.Member != member {
			continue
		}
		if len(events) > 0 && !contains(events, m.Event) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// after returns the marks strictly after t.
func after(marks []mark, t time.Time) []mark {
	var out []mark
	for _, m := range marks {
		if m.At.After(t) {
			out = append(out, m)
		}
	}
	return out
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// overlappingMasters walks the timeline and returns a description of every
// moment two members acted as master at once. A member's term begins with
// started_as_master or transition_slave_to_master and ends with
// transition_master_to_slave or the exit of its service (service_stopped):
// a master whose container was killed never ends its term on the timeline,
// so drills that kill a master do not use this check.
func overlappingMasters(marks []mark) []string {
	masters := map[string]mark{}
	var bad []string
	for _, m := range marks {
		switch m.Event {
		case evStartedMaster, evSlaveToMaster:
			for id, since := range masters {
				if id != m.Member {
					bad = append(bad, fmt.Sprintf("%s became master at %s while %s was master since %s", m.Member, m.At.Format("15:04:05.000000"), id, since.At.Format("15:04:05.000000")))
				}
			}
			masters[m.Member] = m
		case evMasterToSlave, evServiceStopped:
			delete(masters, m.Member)
		}
	}
	return bad
}

func formatMarks(marks []mark) string {
	var b strings.Builder
	for _, m := range marks {
		b.WriteString("  " + m.String() + "\n")
	}
	return b.String()
}
