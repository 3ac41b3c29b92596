package retention

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unlimited as a count keeps one backup for every period (restic's
// "unlimited").
const Unlimited = -1

// Policy says which backups to keep, with the semantics of restic's
// `forget --keep-*` options. A count of 0 keeps nothing for its bucket,
// Unlimited keeps every period, a positive n keeps the newest backup of
// each of the n newest periods that have a backup.
type Policy struct {
	// Last keeps the Last newest backups.
	Last int
	// Hourly keeps the newest backup of each of the Hourly newest hours.
	Hourly int
	// Daily keeps the newest backup of each of the Daily newest days.
	Daily int
	// Weekly keeps the newest backup of each of the Weekly newest ISO
	// weeks (Monday to Sunday, numbered by time.ISOWeek).
	Weekly int
	// Monthly keeps the newest backup of each of the Monthly newest months.
	Monthly int
	// Yearly keeps the newest backup of each of the Yearly newest years.
	Yearly int
	// Location is the time zone in which hours, days, weeks, months and
	// years begin; nil means UTC.
	Location *time.Location
}

// DefaultPolicy returns the defaults of DESIGN.md: 24 hourly, 14 daily,
// 4 weekly and 3 monthly backups, in UTC.
func DefaultPolicy() Policy {
	return Policy{Hourly: 24, Daily: 14, Weekly: 4, Monthly: 3, Location: time.UTC}
}

// Environment variables read by PolicyFromEnv. The BACKUP_* names are the
// original's; the CCCTL_* ones are new.
const (
	EnvHours    = "BACKUP_HOURS_TO_KEEP"
	EnvDays     = "BACKUP_DAYS_TO_KEEP"
	EnvWeeks    = "BACKUP_WEEKS_TO_KEEP"
	EnvMonths   = "BACKUP_MONTHS_TO_KEEP"
	EnvLast     = "CCCTL_BACKUP_LAST_TO_KEEP"
	EnvYears    = "CCCTL_BACKUP_YEARS_TO_KEEP"
	EnvTimeZone = "CCCTL_BACKUP_TIMEZONE"
)

// PolicyFromEnv returns DefaultPolicy with every count that getenv returns
// non-empty replaced. Counts are integers >= 0, or "unlimited" / -1; the
// time zone is an IANA name such as "Europe/Paris". getenv is usually
// os.Getenv.
func PolicyFromEnv(getenv func(string) string) (Policy, error) {
	p := DefaultPolicy()
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{EnvLast, &p.Last}, {EnvHours, &p.Hourly}, {EnvDays, &p.Daily},
		{EnvWeeks, &p.Weekly}, {EnvMonths, &p.Monthly}, {EnvYears, &p.Yearly},
	} {
		v := strings.TrimSpace(getenv(f.name))
		if v == "" {
			continue
		}
		n, err := ParseCount(v)
		if err != nil {
			return Policy{}, fmt.Errorf("retention policy: %s: %w", f.name, err)
		}
		*f.dst = n
	}
	if tz := strings.TrimSpace(getenv(EnvTimeZone)); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return Policy{}, fmt.Errorf("retention policy: %s: %w", EnvTimeZone, err)
		}
		p.Location = loc
	}
	return p, nil
}

// ParseCount parses a count: an integer >= 0, or "unlimited" or -1 for
// Unlimited.
func ParseCount(s string) (int, error) {
	if strings.EqualFold(s, "unlimited") {
		return Unlimited, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("parse count %q: %w", s, err)
	}
	if n < Unlimited {
		return 0, fmt.Errorf("parse count %q: %w", s, ErrNegativeCount)
	}
	return n, nil
}

// ErrNegativeCount is returned for a count below -1.
var ErrNegativeCount = errors.New("retention: count must be >= 0, or -1 / \"unlimited\"")

// Validate reports a count below Unlimited.
func (p Policy) Validate() error {
	for _, c := range []struct {
		name string
		n    int
	}{
		{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily},
		{"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly},
	} {
		if c.n < Unlimited {
			return fmt.Errorf("retention policy: %s = %d: %w", c.name, c.n, ErrNegativeCount)
		}
	}
	return nil
}

// Empty reports whether every count is 0. An empty policy keeps only the
// newest backup (restic would keep everything; ccctl never does).
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0
}

// String describes the policy, e.g. "keep 24 hourly, 14 daily (UTC)".
func (p Policy) String() string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int
	}{
		{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily},
		{"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly},
	} {
		switch {
		case c.n == Unlimited:
			parts = append(parts, "all "+c.name)
		case c.n > 0:
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.name))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "only the newest")
	}
	return fmt.Sprintf("keep %s (%s)", strings.Join(parts, ", "), p.location())
}

func (p Policy) location() *time.Location {
	if p.Location == nil {
		return time.UTC
	}
	return p.Location
}

// Reasons a backup is kept. The bucket reasons are restic's; a bucket's
// reason prefixed with "oldest " marks the oldest backup kept because the
// bucket had count left, as current restic marks it.
const (
	ReasonLast    = "last snapshot"
	ReasonHourly  = "hourly snapshot"
	ReasonDaily   = "daily snapshot"
	ReasonWeekly  = "weekly snapshot"
	ReasonMonthly = "monthly snapshot"
	ReasonYearly  = "yearly snapshot"
	// ReasonNewest is given to the newest backup when no bucket keeps it
	// (only with an empty policy).
	ReasonNewest = "newest backup"
	// ReasonOldestPrefix prefixes a bucket's reason for the oldest backup
	// kept because the bucket's count was not used up.
	ReasonOldestPrefix = "oldest "
)

// Kept is a backup that the policy keeps, with why.
type Kept struct {
	Backup
	// Reasons lists every bucket that keeps the backup, in restic's order
	// (last, hourly, daily, weekly, monthly, yearly).
	Reasons []string `json:"reasons"`
}

// PlanResult is what a policy keeps and removes. Both lists are ordered
// newest first. Its JSON form is that of `ccctl backup prune -o json`:
// {"keep":[{"file":...,"reasons":[...]}],"remove":[{"file":...}]}.
type PlanResult struct {
	Keep   []Kept   `json:"keep"`
	Remove []Backup `json:"remove"`
}

type bucket struct {
	count  int
	period func(t time.Time, nr int) int
	reason string
	last   int
}

// Plan applies p to backups, as restic's `forget` does:
//
//   - The backups are ordered newest first (by time, then by file name).
//   - Each bucket (last, hourly, daily, weekly, monthly, yearly) whose count
//     is not 0 goes through them in that order and keeps a backup when its
//     period (hour, day, ISO week, month, year in p.Location; for last,
//     every backup is its own period) differs from that of the previous
//     backup it kept, as long as its count is not used up; each keep uses
//     one count, Unlimited never runs out.
//   - When a bucket still has count left at the oldest backup, it keeps the
//     oldest backup too, using one count, with reason "oldest <reason>" if
//     the oldest shares its period with an already kept backup.
//   - A backup is kept when any bucket keeps it, with every bucket's reason.
//
// This is restic's keep-last/hourly/daily/weekly/monthly/yearly (its
// keep-within and keep-tag options have no counterpart). One deliberate
// difference: an empty policy (every count 0) keeps only the
// newest backup, with ReasonNewest, where restic would keep everything. So
// the newest backup is always kept, and a bucket with count 0 never keeps
// anything. Plan does not depend on the current time and does not modify
// backups.
func Plan(backups []Backup, p Policy) PlanResult {
	list := slices.Clone(backups)
	slices.SortStableFunc(list, func(a, b Backup) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.File, a.File)
	})
	res := PlanResult{Keep: []Kept{}, Remove: []Backup{}}
	if len(list) == 0 {
		return res
	}
	if p.Empty() {
		res.Keep = append(res.Keep, Kept{Backup: list[0], Reasons: []string{ReasonNewest}})
		res.Remove = append(res.Remove, list[1:]...)
		return res
	}
	loc := p.location()
	buckets := [...]bucket{
		{p.Last, func(_ time.Time, nr int) int { return nr }, ReasonLast, -1},
		{p.Hourly, func(t time.Time, _ int) int {
			t = t.In(loc)
			return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour()
		}, ReasonHourly, -1},
		{p.Daily, func(t time.Time, _ int) int {
			t = t.In(loc)
			return t.Year()*10000 + int(t.Month())*100 + t.Day()
		}, ReasonDaily, -1},
		{p.Weekly, func(t time.Time, _ int) int {
			y, w := t.In(loc).ISOWeek()
			return y*100 + w
		}, ReasonWeekly, -1},
		{p.Monthly, func(t time.Time, _ int) int {
			t = t.In(loc)
			return t.Year()*100 + int(t.Month())
		}, ReasonMonthly, -1},
		{p.Yearly, func(t time.Time, _ int) int { return t.In(loc).Year() }, ReasonYearly, -1},
	}
	oldest := len(list) - 1
	for nr, b := range list {
		var reasons []string
		for i := range buckets {
			bk := &buckets[i]
			if bk.count == 0 {
				continue
			}
			val := bk.period(b.Time, nr)
			if val == bk.last && nr != oldest {
				continue
			}
			reason := bk.reason
			if val == bk.last {
				reason = ReasonOldestPrefix + reason
			}
			bk.last = val
			if bk.count > 0 {
				bk.count--
			}
			reasons = append(reasons, reason)
		}
		if len(reasons) > 0 {
			res.Keep = append(res.Keep, Kept{Backup: b, Reasons: reasons})
		} else {
			res.Remove = append(res.Remove, b)
		}
	}
	return res
}
