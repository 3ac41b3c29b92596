//go:build e2e

package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// kind is a kind of fault.
type kind string

// The kinds of faults.
const (
	faultKill       kind = "kill"        // SIGKILL of ccctl and its service; restart after the duration
	faultFreeze     kind = "freeze"      // SIGSTOP, SIGCONT after the duration
	faultCut        kind = "cut"         // every proxy of the member holds its bytes
	faultSlow       kind = "slow"        // every proxy of the member delays its bytes
	faultCrash      kind = "crash"       // SIGKILL of the service only
	faultEtcdLeader kind = "etcd-leader" // MoveLeader to another etcd member
	faultEtcdStop   kind = "etcd-stop"   // stop one etcd member, restart it after the duration
	faultEtcdAll    kind = "etcd-all"    // stop every etcd member, restart them all the duration after all stopped
	faultHang       kind = "hang"        // the member's hooks hang while it lasts (cut off from etcd from CutAfter, if Cut)
)

// anyMaster as a fault's target means the member that is master when the
// fault starts (Fallback when none is known).
const anyMaster = -1

// fault is one entry of a schedule.
type fault struct {
	At, Dur  time.Duration
	Kind     kind
	Target   int           // member index, or anyMaster; etcd member for etcd-stop
	Fallback int           // member index used when Target is anyMaster and no master is known
	Delay    time.Duration // for slow
	// Cut, for hang, also cuts the member off from etcd from CutAfter
	// after the fault's start to its end, so that the leadership is lost
	// while a hook hangs.
	Cut      bool
	CutAfter time.Duration
	// Sole makes the member this fault hits the target of no other fault
	// while it lasts: another fault resolved to it hits the next member.
	Sole bool
}

func (f fault) String() string {
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	target := fmt.Sprintf("m%d", f.Target)
	if f.Target == anyMaster {
		target = fmt.Sprintf("master (else m%d)", f.Fallback)
	}
	switch f.Kind {
	case faultEtcdLeader:
		return fmt.Sprintf("%8v %-11s", ms(f.At), f.Kind)
	case faultEtcdStop:
		return fmt.Sprintf("%8v %-11s etcd member %d, restarted %v after the start of its stop", ms(f.At), f.Kind, f.Target, ms(f.Dur))
	case faultEtcdAll:
		return fmt.Sprintf("%8v %-11s every etcd member, restarted %v after all stopped", ms(f.At), f.Kind, ms(f.Dur))
	case faultHang:
		cut := ""
		if f.Cut {
			cut = fmt.Sprintf(", cut off from etcd from %v on", ms(f.CutAfter))
		}
		return fmt.Sprintf("%8v %-11s %s's hooks for %v%s", ms(f.At), f.Kind, target, ms(f.Dur), cut)
	case faultCrash:
		return fmt.Sprintf("%8v %-11s %s", ms(f.At), f.Kind, target)
	case faultSlow:
		return fmt.Sprintf("%8v %-11s %s for %v (delay %v)", ms(f.At), f.Kind, target, ms(f.Dur), ms(f.Delay))
	}
	sole := ""
	if f.Sole {
		sole = ", no other fault on it meanwhile"
	}
	return fmt.Sprintf("%8v %-11s %s for %v%s", ms(f.At), f.Kind, target, ms(f.Dur), sole)
}

// schedule is a seeded list of faults, sorted by start time.
type schedule struct {
	Seed   int64
	Faults []fault
}

func (s schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %d faults:\n", s.Seed, len(s.Faults))
	for _, f := range s.Faults {
		fmt.Fprintf(&b, "  %v\n", f)
	}
	return b.String()
}

// counts returns the number of faults of each kind.
func (s schedule) counts() map[kind]int {
	n := map[kind]int{}
	for _, f := range s.Faults {
		n[f.Kind]++
	}
	return n
}

// etcdQuietCut reports whether no fault of etcd itself starts before the
// end of the schedule's sole cut. etcd extends every lease when its leader
// changes, so an etcd fault during the cut may keep the cut master's lease
// alive until the cut ends, and no other member takes over.
func (s schedule) etcdQuietCut() bool {
	var end time.Duration
	for _, f := range s.Faults {
		if f.Sole {
			end = f.At + f.Dur
		}
	}
	for _, f := range s.Faults {
		if (f.Kind == faultEtcdLeader || f.Kind == faultEtcdStop || f.Kind == faultEtcdAll) && f.At < end {
			return false
		}
	}
	return end > 0
}

// newSchedule returns the schedule of seed for members members, a fault
// phase of length d and a session TTL ttl. It depends on its arguments only.
// Faults on etcd itself start early enough (before d - ttl - 2s) for etcd to
// have a stable leader when the faults stop; every fault ends by d.
func newSchedule(seed int64, members int, d, ttl time.Duration) schedule {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x63636374))
	dur := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	s := schedule{Seed: seed}
	member := func() (int, int) {
		fb := rng.IntN(members)
		if rng.IntN(2) == 0 {
			return anyMaster, fb
		}
		return fb, fb
	}
	etcdUntil := d - ttl - 2*time.Second
	// First, a cut of the master (known to exist when the faults start)
	// long enough for another member to take over while it lasts, with no
	// other fault on that member meanwhile.
	cutAt := dur(0, 200*time.Millisecond)
	cut := fault{At: cutAt, Dur: min(ttl+dur(1200*time.Millisecond, 2*time.Second), d-cutAt), Kind: faultCut, Target: anyMaster, Fallback: rng.IntN(members), Sole: true}
	s.Faults = append(s.Faults, cut)
	for at := dur(200*time.Millisecond, 800*time.Millisecond); at < d-300*time.Millisecond; at += dur(300*time.Millisecond, 1200*time.Millisecond) {
		f := fault{At: at}
		f.Target, f.Fallback = member()
		switch p := rng.IntN(100); {
		case p < 18:
			f.Kind, f.Dur = faultKill, dur(200*time.Millisecond, 3*time.Second)
		case p < 36:
			f.Kind, f.Dur = faultFreeze, dur(200*time.Millisecond, 2*ttl)
		case p < 58:
			f.Kind, f.Dur = faultCut, dur(300*time.Millisecond, ttl+2*time.Second)
		case p < 74:
			f.Kind, f.Dur = faultSlow, dur(300*time.Millisecond, 3*time.Second)
			f.Delay = dur(20*time.Millisecond, 700*time.Millisecond)
		default:
			f.Kind = faultCrash
		}
		if f.At+f.Dur > d {
			f.Dur = d - f.At
		}
		s.Faults = append(s.Faults, f)
	}
	// Faults of etcd itself, early enough for etcd to be stable again when
	// the faults stop: per 6 s of phase, a leader change with probability
	// 2/3; once per seed, with probability 1/3, a member stopped and
	// restarted 0.5 to 2 s later (on its data, rejoining the cluster; two
	// stopped at once would leave etcd without a quorum). Stopping takes
	// about a second: the restart begins once the stop is done.
	etcdStop := false
	if etcdUntil > 0 {
		for range max(1, int(d/(6*time.Second))) {
			if rng.IntN(3) < 2 {
				s.Faults = append(s.Faults, fault{At: dur(0, etcdUntil), Kind: faultEtcdLeader})
			}
		}
		if rng.IntN(3) == 0 {
			f := fault{At: dur(0, etcdUntil), Kind: faultEtcdStop, Target: rng.IntN(3)}
			f.Dur = dur(500*time.Millisecond, 2*time.Second)
			s.Faults = append(s.Faults, f)
			etcdStop = true
		}
	}
	// The faults below are drawn after those above, so that a seed's
	// schedule of the faults above is what it was before they existed.
	//
	// With probability 1/3 when no member of etcd is stopped already, the
	// whole of etcd stopped for longer than the TTL (TTL + 0.5 s to TTL +
	// 1.5 s from the moment all have stopped, which takes a second or more,
	// to the start of the restart): every session is lost, every member
	// rides the outage through and rejoins.
	if etcdUntil > 0 && !etcdStop && rng.IntN(3) == 0 {
		f := fault{At: dur(0, etcdUntil), Kind: faultEtcdAll}
		f.Dur = min(dur(ttl+500*time.Millisecond, ttl+1500*time.Millisecond), d-f.At)
		s.Faults = append(s.Faults, f)
	}
	// Per 6 s of phase, with probability 1/2, a member's hooks hang (each
	// hook that starts meanwhile hangs until the fault ends or ccctl stops
	// it); half of them also cut the member off from etcd long enough for
	// another member to take over, so that the leadership is lost while a
	// hook (the demotion's own, or one that began before) hangs.
	for range max(1, int(d/(6*time.Second))) {
		if rng.IntN(2) != 0 {
			continue
		}
		f := fault{Kind: faultHang}
		f.Target, f.Fallback = member()
		if f.Cut = rng.IntN(2) == 0; f.Cut {
			f.CutAfter = dur(300*time.Millisecond, time.Second)
			f.Dur = f.CutAfter + ttl + dur(1200*time.Millisecond, 2*time.Second)
		} else {
			f.Dur = dur(ttl, 2*ttl+time.Second)
		}
		if f.Dur >= d {
			continue
		}
		f.At = dur(0, d-f.Dur)
		s.Faults = append(s.Faults, f)
	}
	sort.SliceStable(s.Faults, func(i, j int) bool { return s.Faults[i].At < s.Faults[j].At })
	return s
}
