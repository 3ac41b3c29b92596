package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts 5 fields (minute to day of week), 6 fields (seconds
// first), descriptors such as @hourly, and @every.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a parsed cron specification bound to a time zone. Its zero
// value never fires. A Schedule is immutable and safe for concurrent use.
type Schedule struct {
	spec  string
	loc   *time.Location
	every time.Duration      // @every: slots are multiples of every since the Unix epoch
	cron  *cron.SpecSchedule // wall-clock fields, evaluated in UTC as a naive wall clock
	// wild is ISC cron's "wildcard job": the seconds, minute or hour field
	// holds a '*' (or it is @hourly). Such a job follows the wall clock
	// across DST changes; the others run at their fixed time once a day.
	wild bool
}

// ParseSchedule parses spec in the time zone loc (nil means UTC). It accepts
// 5 fields (minute hour day-of-month month day-of-week), 6 fields (seconds
// first), month and weekday names (jan, mon), the descriptors @yearly,
// @annually, @monthly, @weekly, @daily, @midnight and @hourly, and
// "@every <duration>" (at least one second). A "CRON_TZ=Zone " or "TZ=Zone "
// prefix overrides loc. The error is one line.
func ParseSchedule(spec string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	s := Schedule{spec: spec, loc: loc}
	rest := strings.TrimSpace(spec)
	if rest == "" {
		return Schedule{}, errors.New("parse schedule: empty")
	}
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if !strings.HasPrefix(rest, prefix) {
			continue
		}
		zone, after, ok := strings.Cut(rest[len(prefix):], " ")
		after = strings.TrimSpace(after)
		if !ok || after == "" {
			return Schedule{}, fmt.Errorf("parse schedule %q: nothing after the time zone", spec)
		}
		l, err := time.LoadLocation(zone)
		if err != nil {
			return Schedule{}, fmt.Errorf("parse schedule %q: time zone %q: %w", spec, zone, err)
		}
		s.loc, rest = l, after
		break
	}
	if strings.HasPrefix(rest, "@every") {
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(rest, "@every")))
		if err != nil {
			return Schedule{}, fmt.Errorf("parse schedule %q: %w", spec, err)
		}
		if d < time.Second || d%time.Second != 0 {
			return Schedule{}, fmt.Errorf("parse schedule %q: @every needs a whole number of seconds, at least 1s", spec)
		}
		s.every = d
		return s, nil
	}
	parsed, err := parser.Parse(rest)
	if err != nil {
		return Schedule{}, fmt.Errorf("parse schedule %q: %s", spec, oneLine(err.Error()))
	}
	cs, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return Schedule{}, fmt.Errorf("parse schedule %q: unsupported form", spec)
	}
	naive := *cs
	naive.Location = time.UTC
	s.cron = &naive
	const star = 1 << 63 // robfig/cron's mark of a '*' field
	if strings.HasPrefix(rest, "@") {
		s.wild = cs.Hour&star != 0 || cs.Minute&star != 0
	} else {
		f := strings.Fields(rest)
		if len(f) == 5 {
			f = append([]string{"0"}, f...)
		}
		s.wild = strings.ContainsAny(f[0]+f[1]+f[2], "*?")
		// As in ISC cron, a day field starting with '*' (also "*/2")
		// makes the day match when both fields do; robfig/cron forgets
		// the '*' of a step.
		if strings.HasPrefix(f[3], "*") || strings.HasPrefix(f[3], "?") {
			naive.Dom |= star
		}
		if strings.HasPrefix(f[5], "*") || strings.HasPrefix(f[5], "?") {
			naive.Dow |= star
		}
	}
	if ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); s.Next(ref).IsZero() {
		return Schedule{}, fmt.Errorf("parse schedule %q: never fires", spec)
	}
	return s, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// String returns the specification as written.
func (s Schedule) String() string { return s.spec }

// Location returns the time zone the schedule is evaluated in.
func (s Schedule) Location() *time.Location { return s.loc }

// Next returns the first activation strictly after t, or the zero time when
// there is none within about five years.
//
// Activations follow ISC cron across daylight-saving changes in the
// schedule's zone. A job at a fixed time (no '*' in its seconds, minute or
// hour field, and not @hourly) whose time falls in the hour skipped when
// clocks go forward runs once, at the instant of the change; when clocks go
// back it runs only in the first pass of the repeated hour. A wildcard job
// runs at every instant whose wall-clock time matches: not at all in the
// skipped hour, in both passes of the repeated hour. "@every d" runs at the
// multiples of d since the Unix epoch, whatever the zone, so that every
// member computes the same slots.
func (s Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		u := t.UnixNano()
		d := s.every.Nanoseconds()
		k := u / d
		if u < 0 && u%d != 0 {
			k--
		}
		return time.Unix(0, (k+1)*d).In(s.loc)
	}
	if s.cron == nil {
		return time.Time{}
	}
	const maxPeriods = 64
	cur := t.In(s.loc)
	for range maxPeriods {
		start, end := cur.ZoneBounds()
		_, off := cur.Zone()
		prevOff := off
		if !start.IsZero() {
			_, prevOff = start.Add(-time.Nanosecond).Zone()
		}
		// In this period the wall clock reads instant+off.
		lo := naive(t, off) // only walls strictly after t's wall time
		if !s.wild && !start.IsZero() && start.After(t) {
			if prevOff < off {
				// Clocks went forward at start: walls in [start+prevOff,
				// start+off) never happened; a fixed-time job due then runs
				// at start.
				w := s.cron.Next(naive(start, prevOff).Add(-time.Nanosecond))
				if !w.IsZero() && w.Before(naive(start, off)) {
					return start
				}
			}
		}
		if !start.IsZero() && start.After(t) {
			from := naive(start, off)
			if !s.wild && prevOff > off {
				// Clocks went back at start: the walls up to start+prevOff
				// were already run in the previous period.
				from = naive(start, prevOff)
			}
			lo = from.Add(-time.Nanosecond)
		} else if !s.wild && !start.IsZero() && prevOff > off {
			// t is in the second pass of a repeated hour.
			if first := naive(start, prevOff).Add(-time.Nanosecond); first.After(lo) {
				lo = first
			}
		}
		w := s.cron.Next(lo)
		if w.IsZero() {
			return time.Time{}
		}
		if end.IsZero() || w.Before(naive(end, off)) {
			return time.Unix(w.Unix()-int64(off), 0).In(s.loc)
		}
		cur = end
	}
	return time.Time{}
}

// naive returns the wall-clock time of instant t at offset off seconds, as
// a UTC time.
func naive(t time.Time, off int) time.Time {
	return t.UTC().Add(time.Duration(off) * time.Second)
}
