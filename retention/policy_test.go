package retention_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/retention"
)

// backupsAt makes backups of "db" at the given times.
func backupsAt(times ...time.Time) []retention.Backup {
	var bs []retention.Backup
	for _, t := range times {
		f := retention.FileName("db", t, ".sql")
		bs = append(bs, retention.Backup{File: f, Path: "/backups/db/" + f, Time: t.UTC(), Ext: ".sql"})
	}
	return bs
}

func daily(from, to time.Time, skip ...string) []time.Time {
	var ts []time.Time
	for t := from; !t.After(to); t = t.AddDate(0, 0, 1) {
		if !slices.Contains(skip, t.Format("2006-01-02")) {
			ts = append(ts, t)
		}
	}
	return ts
}

func date(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// kept returns the kept backups' times as "2006-01-02 15:04", newest first.
func kept(plan retention.PlanResult) []string {
	var out []string
	for _, k := range plan.Keep {
		out = append(out, k.Time.Format("2006-01-02 15:04"))
	}
	return out
}

func reasonsOf(plan retention.PlanResult, when string) []string {
	for _, k := range plan.Keep {
		if k.Time.Format("2006-01-02 15:04") == when {
			return k.Reasons
		}
	}
	return nil
}

func checkKept(t *testing.T, plan retention.PlanResult, want []string) {
	t.Helper()
	if got := kept(plan); !slices.Equal(got, want) {
		t.Errorf("kept (%d):\n  %s\nwant (%d):\n  %s", len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
}

// TestResticSundaysExample is restic's documented example ("Removing
// snapshots according to a policy"): one backup every Sunday at 11:00 for
// 12 weeks, `forget --keep-daily 4` keeps the last four, each as a "daily
// snapshot", and removes the other eight.
func TestResticSundaysExample(t *testing.T) {
	var ts []time.Time
	for t := date("2019-09-01 11:00"); !t.After(date("2019-11-17 11:00")); t = t.AddDate(0, 0, 7) {
		ts = append(ts, t)
	}
	plan := retention.Plan(backupsAt(ts...), retention.Policy{Daily: 4})
	checkKept(t, plan, []string{"2019-11-17 11:00", "2019-11-10 11:00", "2019-11-03 11:00", "2019-10-27 11:00"})
	for _, k := range plan.Keep {
		if !slices.Equal(k.Reasons, []string{retention.ReasonDaily}) {
			t.Errorf("reasons of %s: got %v; want [daily snapshot]", k.File, k.Reasons)
		}
	}
	if got := len(plan.Remove); got != 8 {
		t.Errorf("removed %d; want 8", got)
	}
}

// TestResticHundredYearsExample is restic's documented example: one backup
// every day for 100 years, `forget --keep-daily 7 --keep-weekly 5
// --keep-monthly 12 --keep-yearly 75` keeps the 7 most recent daily ones,
// 4 more last-day-of-the-week ones (the dailies include one weekly), 11 or
// 12 last-day-of-the-month ones and 74 or 75 last-day-of-the-year ones. The
// last backup here is on a Sunday (2024-12-29), so the dailies make one
// full ISO week and include the newest month and year: 7+4+11+74.
func TestResticHundredYearsExample(t *testing.T) {
	ts := daily(date("1924-12-30 12:00"), date("2024-12-29 12:00"))
	if len(ts) != 36525 {
		t.Fatalf("made %d daily backups; want 36525 (100 years)", len(ts))
	}
	plan := retention.Plan(backupsAt(ts...), retention.Policy{Daily: 7, Weekly: 5, Monthly: 12, Yearly: 75})
	var want []string
	for d := 29; d >= 23; d-- { // 7 daily
		want = append(want, fmt.Sprintf("2024-12-%02d 12:00", d))
	}
	for _, d := range []int{22, 15, 8, 1} { // 4 more weekly (Sundays)
		want = append(want, fmt.Sprintf("2024-12-%02d 12:00", d))
	}
	for m := time.November; m >= time.January; m-- { // 11 more monthly
		last := time.Date(2024, m+1, 0, 12, 0, 0, 0, time.UTC)
		want = append(want, last.Format("2006-01-02 15:04"))
	}
	for y := 2023; y >= 1950; y-- { // 74 more yearly
		want = append(want, fmt.Sprintf("%d-12-31 12:00", y))
	}
	checkKept(t, plan, want)
	if got, w := reasonsOf(plan, "2024-12-29 12:00"), []string{"daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"}; !slices.Equal(got, w) {
		t.Errorf("reasons of the newest: got %v; want %v", got, w)
	}
	if got, w := reasonsOf(plan, "2024-11-30 12:00"), []string{"monthly snapshot"}; !slices.Equal(got, w) {
		t.Errorf("reasons of 2024-11-30: got %v; want %v", got, w)
	}
	if got, w := reasonsOf(plan, "1950-12-31 12:00"), []string{"yearly snapshot"}; !slices.Equal(got, w) {
		t.Errorf("reasons of 1950-12-31: got %v; want %v", got, w)
	}
	if got, w := len(plan.Keep)+len(plan.Remove), len(ts); got != w {
		t.Errorf("kept+removed = %d; want %d", got, w)
	}
}

// TestBorgPruneExample is borg's "prune visualized" example: a backup every
// day of 2015 except 2015-12-19, `--keep-daily 14 --keep-monthly 6
// --keep-yearly 1`. The dailies are the same in both tools. Borg does not
// count a backup already kept by an earlier rule in later rules; restic
// (and so ccctl) counts it in every bucket it matches. So the December
// backup fills one of the 6 monthly slots and the one yearly slot: ccctl
// keeps Nov..Jul (not June 30), and the yearly count is used up, so the
// oldest (2015-01-01) is not kept either.
func TestBorgPruneExample(t *testing.T) {
	ts := daily(date("2015-01-01 12:00"), date("2015-12-31 12:00"), "2015-12-19")
	plan := retention.Plan(backupsAt(ts...), retention.Policy{Daily: 14, Monthly: 6, Yearly: 1})

	borgDaily := []string{"2015-12-31", "2015-12-30", "2015-12-29", "2015-12-28", "2015-12-27",
		"2015-12-26", "2015-12-25", "2015-12-24", "2015-12-23", "2015-12-22", "2015-12-21",
		"2015-12-20", "2015-12-18", "2015-12-17"}
	borgMonthly := []string{"2015-11-30", "2015-10-31", "2015-09-30", "2015-08-31", "2015-07-31", "2015-06-30"}
	borgYearly := []string{"2015-01-01"}
	notKeptByRestic := []string{"2015-06-30", "2015-01-01"}

	var want []string
	for _, d := range slices.Concat(borgDaily, borgMonthly, borgYearly) {
		if !slices.Contains(notKeptByRestic, d) {
			want = append(want, d+" 12:00")
		}
	}
	checkKept(t, plan, want)
	if got, w := reasonsOf(plan, "2015-12-31 12:00"), []string{"daily snapshot", "monthly snapshot", "yearly snapshot"}; !slices.Equal(got, w) {
		t.Errorf("reasons of 2015-12-31: got %v; want %v", got, w)
	}
	if got, w := reasonsOf(plan, "2015-12-17 12:00"), []string{"daily snapshot"}; !slices.Equal(got, w) {
		t.Errorf("reasons of 2015-12-17: got %v; want %v", got, w)
	}
}

// TestBorgExampleYearlyOldest is the borg example's yearly rule alone,
// where both tools agree: with one year of backups and --keep-yearly 2,
// the count is not used up, so the oldest backup is kept as well.
func TestBorgExampleYearlyOldest(t *testing.T) {
	ts := daily(date("2015-01-01 12:00"), date("2015-12-31 12:00"), "2015-12-19")
	plan := retention.Plan(backupsAt(ts...), retention.Policy{Yearly: 2})
	checkKept(t, plan, []string{"2015-12-31 12:00", "2015-01-01 12:00"})
	if got, w := reasonsOf(plan, "2015-01-01 12:00"), []string{"oldest yearly snapshot"}; !slices.Equal(got, w) {
		t.Errorf("reasons of the oldest: got %v; want %v", got, w)
	}
}

// TestISOWeeksAtYearBoundaries checks weeks across New Year: 2021-01-01 is
// in ISO week 2020-W53 (the original's "%Y-%V" called it 2021-53), and
// 2024-12-30 is in 2025-W01.
func TestISOWeeksAtYearBoundaries(t *testing.T) {
	plan := retention.Plan(backupsAt(
		date("2020-12-28 12:00"), date("2020-12-31 12:00"), date("2021-01-01 12:00"),
		date("2021-01-03 12:00"), date("2021-01-04 12:00"), date("2021-01-05 12:00"),
	), retention.Policy{Weekly: 2})
	checkKept(t, plan, []string{"2021-01-05 12:00", "2021-01-03 12:00"})

	plan = retention.Plan(backupsAt(
		date("2024-12-22 12:00"), date("2024-12-29 12:00"), date("2024-12-30 12:00"),
		date("2024-12-31 12:00"), date("2025-01-01 12:00"),
	), retention.Policy{Weekly: 2})
	checkKept(t, plan, []string{"2025-01-01 12:00", "2024-12-29 12:00"})
}

// TestOldestRule checks restic's rule: a bucket with count left when it
// reaches the oldest backup keeps it, marked "oldest" when its period is
// already kept.
func TestOldestRule(t *testing.T) {
	bs := backupsAt(date("2024-03-01 10:00"), date("2024-03-01 12:00"), date("2024-03-02 12:00"))
	for _, tc := range []struct {
		name    string
		p       retention.Policy
		want    []string
		reasons map[string][]string
	}{
		{"count left", retention.Policy{Daily: 5},
			[]string{"2024-03-02 12:00", "2024-03-01 12:00", "2024-03-01 10:00"},
			map[string][]string{"2024-03-01 10:00": {"oldest daily snapshot"}}},
		{"count used", retention.Policy{Daily: 2},
			[]string{"2024-03-02 12:00", "2024-03-01 12:00"}, nil},
		{"last and monthly", retention.Policy{Last: 1, Monthly: 3},
			[]string{"2024-03-02 12:00", "2024-03-01 10:00"},
			map[string][]string{
				"2024-03-02 12:00": {"last snapshot", "monthly snapshot"},
				"2024-03-01 10:00": {"oldest monthly snapshot"},
			}},
		{"unlimited", retention.Policy{Daily: retention.Unlimited},
			[]string{"2024-03-02 12:00", "2024-03-01 12:00", "2024-03-01 10:00"},
			map[string][]string{"2024-03-01 10:00": {"oldest daily snapshot"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := retention.Plan(bs, tc.p)
			checkKept(t, plan, tc.want)
			for when, want := range tc.reasons {
				if got := reasonsOf(plan, when); !slices.Equal(got, want) {
					t.Errorf("reasons of %s: got %v; want %v", when, got, want)
				}
			}
		})
	}
}

func TestZeroCountsKeepOnlyTheNewest(t *testing.T) {
	bs := backupsAt(date("2024-03-01 10:00"), date("2024-03-02 12:00"), date("2024-02-01 12:00"))
	plan := retention.Plan(bs, retention.Policy{})
	checkKept(t, plan, []string{"2024-03-02 12:00"})
	if got := plan.Keep[0].Reasons; !slices.Equal(got, []string{retention.ReasonNewest}) {
		t.Errorf("reasons: got %v; want [newest backup]", got)
	}
	if got := len(plan.Remove); got != 2 {
		t.Errorf("removed %d; want 2", got)
	}
	// A bucket with 0 keeps nothing: only the hourly bucket keeps here.
	plan = retention.Plan(bs, retention.Policy{Hourly: 1, Daily: 0, Monthly: 0})
	checkKept(t, plan, []string{"2024-03-02 12:00"})
	if got := len(retention.Plan(nil, retention.DefaultPolicy()).Keep); got != 0 {
		t.Errorf("plan of no backups kept %d; want 0", got)
	}
}

// TestTimeZone puts three backups in one UTC day; in UTC+1 the newest is on
// the next day.
func TestTimeZone(t *testing.T) {
	bs := backupsAt(date("2024-03-01 21:00"), date("2024-03-01 22:00"), date("2024-03-01 23:30"))
	utc := retention.Plan(bs, retention.Policy{Daily: 2})
	checkKept(t, utc, []string{"2024-03-01 23:30", "2024-03-01 21:00"})
	plus1 := retention.Plan(bs, retention.Policy{Daily: 2, Location: time.FixedZone("UTC+1", 3600)})
	checkKept(t, plus1, []string{"2024-03-01 23:30", "2024-03-01 22:00"})
}

func TestPlanJSON(t *testing.T) {
	bs := backupsAt(date("2024-03-01 10:00"), date("2024-03-02 12:00"))
	b, err := json.Marshal(retention.Plan(bs, retention.Policy{Last: 1}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keep":[{"file":"db-20240302T120000Z.sql","reasons":["last snapshot"]}],"remove":[{"file":"db-20240301T100000Z.sql"}]}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(retention.Plan(nil, retention.Policy{Last: 1}))
	if want := `{"keep":[],"remove":[]}`; string(b) != want {
		t.Errorf("JSON of an empty plan: got %s; want %s", b, want)
	}
}

func TestPolicyFromEnv(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    retention.Policy
		wantErr bool
	}{
		{"defaults", nil, retention.Policy{Hourly: 24, Daily: 14, Weekly: 4, Monthly: 3, Location: time.UTC}, false},
		{"all set", map[string]string{
			"BACKUP_HOURS_TO_KEEP": "0", "BACKUP_DAYS_TO_KEEP": "7", "BACKUP_WEEKS_TO_KEEP": "unlimited",
			"BACKUP_MONTHS_TO_KEEP": "-1", "CCCTL_BACKUP_LAST_TO_KEEP": " 2 ", "CCCTL_BACKUP_YEARS_TO_KEEP": "5",
			"CCCTL_BACKUP_TIMEZONE": "Europe/Paris",
		}, retention.Policy{Last: 2, Hourly: 0, Daily: 7, Weekly: -1, Monthly: -1, Yearly: 5, Location: paris}, false},
		{"not a number", map[string]string{"BACKUP_DAYS_TO_KEEP": "seven"}, retention.Policy{}, true},
		{"below -1", map[string]string{"BACKUP_DAYS_TO_KEEP": "-2"}, retention.Policy{}, true},
		{"bad zone", map[string]string{"CCCTL_BACKUP_TIMEZONE": "Mars/Olympus"}, retention.Policy{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := retention.PolicyFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, nil; want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gl, wl := got.Location, tc.want.Location
			got.Location, tc.want.Location = nil, nil
			if got != tc.want || gl.String() != wl.String() {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p  retention.Policy
		ok bool
	}{
		{retention.Policy{}, true},
		{retention.DefaultPolicy(), true},
		{retention.Policy{Daily: -1}, true},
		{retention.Policy{Daily: -2}, false},
		{retention.Policy{Yearly: -5}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v; want ok=%v", tc.p, err, tc.ok)
		}
	}
}

// TestPlanProperties checks random backup times and policies:
//   - the newest backup is always kept, and every backup is kept or removed
//     exactly once;
//   - every kept backup has a reason, and for a plain bucket reason it is
//     the newest backup of its period;
//   - no bucket keeps more backups than its count;
//   - a bucket with fewer periods than its count keeps the oldest backup;
//   - planning the kept set again keeps all of it (pruning twice changes
//     nothing the second time).
func TestPlanProperties(t *testing.T) {
	iterations := 2000
	if testing.Short() {
		iterations = 300
	}
	rng := rand.New(rand.NewPCG(7, 11))
	zones := []*time.Location{nil, time.UTC, time.FixedZone("UTC+5:30", 5*3600+1800), time.FixedZone("UTC-8", -8*3600)}
	type bucketDef struct {
		reason string
		count  func(retention.Policy) int
		period func(time.Time) int
	}
	for it := 0; it < iterations; it++ {
		loc := zones[rng.IntN(len(zones))]
		in := func(t time.Time) time.Time {
			if loc == nil {
				return t.UTC()
			}
			return t.In(loc)
		}
		count := func() int {
			switch r := rng.IntN(10); {
			case r < 3:
				return 0
			case r == 3:
				return retention.Unlimited
			default:
				return rng.IntN(8)
			}
		}
		p := retention.Policy{Last: count(), Hourly: count(), Daily: count(), Weekly: count(), Monthly: count(), Yearly: count(), Location: loc}
		// Times clustered at random scales, from seconds to years apart.
		n := rng.IntN(60)
		base := time.Date(2018+rng.IntN(8), 1, 1, 0, 0, 0, 0, time.UTC)
		spread := []time.Duration{time.Hour, 24 * time.Hour, 30 * 24 * time.Hour, 3 * 365 * 24 * time.Hour}[rng.IntN(4)]
		seen := map[string]bool{}
		var ts []time.Time
		for len(ts) < n {
			tm := base.Add(time.Duration(rng.Int64N(int64(spread)))).Truncate(time.Second)
			if k := tm.Format(retention.TimeLayout); !seen[k] {
				seen[k] = true
				ts = append(ts, tm)
			}
		}
		bs := backupsAt(ts...)
		rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
		plan := retention.Plan(bs, p)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("iteration %d, policy %+v, %d backups: %s", it, p, len(bs), fmt.Sprintf(format, args...))
		}

		if len(plan.Keep)+len(plan.Remove) != len(bs) {
			fail("kept %d + removed %d != %d", len(plan.Keep), len(plan.Remove), len(bs))
		}
		if len(bs) == 0 {
			continue
		}
		newest, oldest := bs[0], bs[0]
		for _, b := range bs {
			if b.Time.After(newest.Time) {
				newest = b
			}
			if b.Time.Before(oldest.Time) {
				oldest = b
			}
		}
		keptSet := map[string]bool{}
		for _, k := range plan.Keep {
			if len(k.Reasons) == 0 {
				fail("%s kept without a reason", k.File)
			}
			keptSet[k.File] = true
		}
		if !keptSet[newest.File] {
			fail("newest %s not kept", newest.File)
		}

		buckets := []bucketDef{
			{retention.ReasonLast, func(p retention.Policy) int { return p.Last }, nil},
			{retention.ReasonHourly, func(p retention.Policy) int { return p.Hourly }, func(t time.Time) int {
				t = in(t)
				return ((t.Year()*100+int(t.Month()))*100+t.Day())*100 + t.Hour()
			}},
			{retention.ReasonDaily, func(p retention.Policy) int { return p.Daily }, func(t time.Time) int {
				t = in(t)
				return (t.Year()*100+int(t.Month()))*100 + t.Day()
			}},
			{retention.ReasonWeekly, func(p retention.Policy) int { return p.Weekly }, func(t time.Time) int {
				y, w := in(t).ISOWeek()
				return y*100 + w
			}},
			{retention.ReasonMonthly, func(p retention.Policy) int { return p.Monthly }, func(t time.Time) int {
				t = in(t)
				return t.Year()*100 + int(t.Month())
			}},
			{retention.ReasonYearly, func(p retention.Policy) int { return p.Yearly }, func(t time.Time) int { return in(t).Year() }},
		}
		for _, bd := range buckets {
			c := bd.count(p)
			used := 0
			for _, k := range plan.Keep {
				for _, r := range k.Reasons {
					if r != bd.reason && r != retention.ReasonOldestPrefix+bd.reason {
						continue
					}
					used++
					if r == bd.reason && bd.period != nil {
						for _, b := range bs {
							if bd.period(b.Time) == bd.period(k.Time) && b.Time.After(k.Time) {
								fail("%s kept as %q, but %s is newer in the same period", k.File, r, b.File)
							}
						}
					}
				}
			}
			if c == 0 && used > 0 {
				fail("bucket %q with count 0 kept %d", bd.reason, used)
			}
			if c > 0 && used > c {
				fail("bucket %q kept %d; count %d", bd.reason, used, c)
			}
			periods := len(bs)
			if bd.period != nil {
				ps := map[int]bool{}
				for _, b := range bs {
					ps[bd.period(b.Time)] = true
				}
				periods = len(ps)
			}
			if (c == retention.Unlimited || c > periods) && !keptSet[oldest.File] {
				fail("bucket %q has %d periods for count %d, but the oldest %s is not kept", bd.reason, periods, c, oldest.File)
			}
		}

		var keptBackups []retention.Backup
		for _, k := range plan.Keep {
			keptBackups = append(keptBackups, k.Backup)
		}
		again := retention.Plan(keptBackups, p)
		if len(again.Remove) != 0 {
			fail("second plan removes %d of the kept backups: %v", len(again.Remove), again.Remove)
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	// Ten years of hourly backups, with the defaults.
	ts := make([]time.Time, 0, 10*365*24)
	for t := date("2015-01-01 00:00"); len(ts) < cap(ts); t = t.Add(time.Hour) {
		ts = append(ts, t)
	}
	bs := backupsAt(ts...)
	p := retention.DefaultPolicy()
	b.ResetTimer()
	for b.Loop() {
		retention.Plan(bs, p)
	}
}

func ExamplePlan() {
	var backups []retention.Backup
	for _, s := range []string{"20240301T100000Z", "20240301T220000Z", "20240302T120000Z", "20240309T120000Z"} {
		t, _ := time.Parse(retention.TimeLayout, s)
		backups = append(backups, retention.Backup{File: retention.FileName("db", t, ".sql.gz"), Time: t})
	}
	plan := retention.Plan(backups, retention.Policy{Daily: 2, Weekly: 4})
	for _, k := range plan.Keep {
		fmt.Println("keep  ", k.File, k.Reasons)
	}
	for _, r := range plan.Remove {
		fmt.Println("remove", r.File)
	}
	// Output:
	// keep   db-20240309T120000Z.sql.gz [daily snapshot weekly snapshot]
	// keep   db-20240302T120000Z.sql.gz [daily snapshot weekly snapshot]
	// keep   db-20240301T100000Z.sql.gz [oldest weekly snapshot]
	// remove db-20240301T220000Z.sql.gz
}
