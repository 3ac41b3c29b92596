package schedule_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/ccctl/ccctl/schedule"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

// activations returns the activations of s in (from, to].
func activations(t *testing.T, s schedule.Schedule, from, to time.Time) []time.Time {
	t.Helper()
	var out []time.Time
	for a := s.Next(from); !a.IsZero() && !a.After(to); a = s.Next(a) {
		out = append(out, a.UTC())
		if len(out) > 10000 {
			t.Fatalf("%q: more than 10000 activations", s)
		}
	}
	return out
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func utcs(ss ...string) []time.Time {
	var out []time.Time
	for _, s := range ss {
		out = append(out, utc(s))
	}
	return out
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestParseScheduleForms(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	from := utc("2026-01-05T10:07:00Z") // a Monday
	tests := []struct {
		spec string
		loc  *time.Location
		to   time.Time
		want []time.Time
	}{
		{"*/20 * * * *", nil, utc("2026-01-05T11:00:00Z"), utcs("2026-01-05T10:20:00Z", "2026-01-05T10:40:00Z", "2026-01-05T11:00:00Z")},
		{"15,45 * * * * *", nil, utc("2026-01-05T10:08:00Z"), utcs("2026-01-05T10:07:15Z", "2026-01-05T10:07:45Z")},
		{"0 9 * * mon-fri", nil, utc("2026-01-12T09:00:00Z"), utcs("2026-01-06T09:00:00Z", "2026-01-07T09:00:00Z", "2026-01-08T09:00:00Z", "2026-01-09T09:00:00Z", "2026-01-12T09:00:00Z")},
		{"0 0 1 feb,mar *", nil, utc("2026-12-31T00:00:00Z"), utcs("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")},
		{"@hourly", nil, utc("2026-01-05T12:00:00Z"), utcs("2026-01-05T11:00:00Z", "2026-01-05T12:00:00Z")},
		{"@daily", nil, utc("2026-01-07T00:00:00Z"), utcs("2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z")},
		{"@weekly", nil, utc("2026-01-18T00:00:00Z"), utcs("2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z")},
		{"@monthly", nil, utc("2026-03-01T00:00:00Z"), utcs("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")},
		{"@yearly", nil, utc("2027-01-01T00:00:00Z"), utcs("2027-01-01T00:00:00Z")},
		{"@every 25m", nil, utc("2026-01-05T11:00:00Z"), utcs("2026-01-05T10:30:00Z", "2026-01-05T10:55:00Z")},
		{"@every 90s", nil, utc("2026-01-05T10:10:00Z"), utcs("2026-01-05T10:07:30Z", "2026-01-05T10:09:00Z")},
		{"0 0 */2 * mon", nil, utc("2026-01-31T00:00:00Z"), utcs("2026-01-19T00:00:00Z")},
		{"0 0 13 * fri", nil, utc("2026-03-31T00:00:00Z"), utcs("2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z", "2026-01-23T00:00:00Z", "2026-01-30T00:00:00Z", "2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z", "2026-03-27T00:00:00Z")},
		{"0 3 * * *", berlin, utc("2026-01-06T03:00:00Z"), utcs("2026-01-06T02:00:00Z")},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", nil, utc("2026-01-06T03:00:00Z"), utcs("2026-01-06T02:00:00Z")},
		{"TZ=UTC 0 3 * * *", berlin, utc("2026-01-06T03:00:00Z"), utcs("2026-01-06T03:00:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := schedule.ParseSchedule(tt.spec, tt.loc)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tt.spec, err)
			}
			if got := activations(t, s, from, tt.to); !equalTimes(got, tt.want) {
				t.Errorf("activations of %q: got %v; want %v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct {
		spec, want string
	}{
		{"", "empty"},
		{"* * * *", "expected 5 to 6 fields, found 4"},
		{"* * * * * * *", "expected 5 to 6 fields, found 7"},
		{"61 * * * *", "above maximum"},
		{"* * * * blursday", "failed to parse int from blursday"},
		{"0 0 30 2 *", "never fires"},
		{"@sometimes", "unrecognized descriptor"},
		{"@every", "invalid duration"},
		{"@every 1.5s", "whole number of seconds"},
		{"@every 0s", "at least 1s"},
		{"TZ=Nowhere/Atlantis * * * * *", `time zone "Nowhere/Atlantis"`},
		{"CRON_TZ=Europe/Berlin", "nothing after the time zone"},
		{"TZ=UTC", "nothing after the time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := schedule.ParseSchedule(tt.spec, nil)
			if err == nil {
				t.Fatalf("ParseSchedule(%q): got nil error; want one containing %q", tt.spec, tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "parse schedule") {
				t.Errorf("ParseSchedule(%q) error: got %q; want one line starting %q containing %q", tt.spec, msg, "parse schedule", tt.want)
			}
		})
	}
}

// In Europe/Berlin in 2026 clocks go forward on 29 March at 02:00 CET
// (01:00 UTC) to 03:00 CEST, and back on 25 October at 03:00 CEST (01:00
// UTC) to 02:00 CET.
func TestScheduleDSTBerlin(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	spring := [2]time.Time{utc("2026-03-28T00:00:00Z"), utc("2026-03-30T23:00:00Z")}
	autumn := [2]time.Time{utc("2026-10-24T00:00:00Z"), utc("2026-10-26T23:00:00Z")}
	tests := []struct {
		name, spec string
		window     [2]time.Time
		want       []time.Time
	}{
		{"skipped time runs at the change", "30 2 * * *", spring,
			utcs("2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z")},
		{"skipped hour start runs at the change", "0 2 * * *", spring,
			utcs("2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z")},
		{"several skipped times run once", "0,30 2 * * *", spring,
			utcs("2026-03-28T01:00:00Z", "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z")},
		{"time just after the gap", "0 3 * * *", spring,
			utcs("2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z")},
		{"hourly keeps real hours in spring", "0 * * * *", [2]time.Time{utc("2026-03-28T23:30:00Z"), utc("2026-03-29T03:30:00Z")},
			utcs("2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "2026-03-29T03:00:00Z")},
		{"wildcard in the skipped hour does not run", "*/30 2 * * *", spring,
			utcs("2026-03-28T01:00:00Z", "2026-03-28T01:30:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z")},
		{"repeated time runs once, in the first pass", "30 2 * * *", autumn,
			utcs("2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z")},
		{"daily at midnight", "@daily", autumn,
			utcs("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-26T23:00:00Z")},
		{"hourly keeps real hours in autumn", "0 * * * *", [2]time.Time{utc("2026-10-24T23:30:00Z"), utc("2026-10-25T02:30:00Z")},
			utcs("2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z")},
		{"wildcard runs in both passes", "*/30 2 * * *", autumn,
			utcs("2026-10-24T00:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:00:00Z", "2026-10-26T01:30:00Z")},
		{"@every ignores the zone", "@every 1h", [2]time.Time{utc("2026-10-25T00:30:00Z"), utc("2026-10-25T02:30:00Z")},
			utcs("2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.ParseSchedule(tt.spec, berlin)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tt.spec, err)
			}
			if got := activations(t, s, tt.window[0], tt.window[1]); !equalTimes(got, tt.want) {
				t.Errorf("activations of %q: got %v; want %v", tt.spec, got, tt.want)
			}
		})
	}

	t.Run("started in the second pass", func(t *testing.T) {
		s, _ := schedule.ParseSchedule("30 2 * * *", berlin)
		from := utc("2026-10-25T01:10:00Z") // 02:10 CET, after 02:30 CEST ran
		if got, want := s.Next(from).UTC(), utc("2026-10-26T01:30:00Z"); !got.Equal(want) {
			t.Errorf("Next(%v): got %v; want %v", from, got, want)
		}
	})
}

// TestScheduleNextConsistent checks, around DST changes in several zones,
// that Next from any instant gives the first activation after it in the
// chain of activations, so that members started at different times agree.
func TestScheduleNextConsistent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"}
	specs := []string{"30 2 * * *", "0,15,30,45 1-3 * * *", "0 * * * *", "*/7 2 * * *", "20 2 * * sun", "@daily", "0 30 2 * * *"}
	days := []time.Time{utc("2026-03-07T12:00:00Z"), utc("2026-03-27T12:00:00Z"), utc("2026-04-03T12:00:00Z"), utc("2026-09-25T12:00:00Z"), utc("2026-10-23T12:00:00Z"), utc("2026-10-30T12:00:00Z")}
	for _, zone := range zones {
		loc := mustLoad(t, zone)
		for _, spec := range specs {
			s, err := schedule.ParseSchedule(spec, loc)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", spec, err)
			}
			for _, day := range days {
				to := day.Add(4 * 24 * time.Hour)
				chain := activations(t, s, day, to)
				for range 200 {
					at := day.Add(time.Duration(rng.Int64N(int64(to.Sub(day)))))
					var want time.Time
					for _, a := range chain {
						if a.After(at) {
							want = a
							break
						}
					}
					if want.IsZero() {
						continue
					}
					if got := s.Next(at); !got.Equal(want) {
						t.Errorf("%s %q: Next(%v): got %v; want %v", zone, spec, at.UTC(), got.UTC(), want)
					}
				}
				for i := 1; i < len(chain); i++ {
					if !chain[i].After(chain[i-1]) {
						t.Errorf("%s %q: activations not increasing: %v then %v", zone, spec, chain[i-1], chain[i])
					}
				}
			}
		}
	}
}

// TestScheduleCorrectsRobfigCron documents where robfig/cron's own Next
// departs from ISC cron in Europe/Berlin, and that ParseSchedule does not:
// robfig/cron drops the 02:30 run on the day clocks go forward and runs it
// twice on the day they go back.
func TestScheduleCorrectsRobfigCron(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	robfig, err := cron.ParseStandard("CRON_TZ=Europe/Berlin 30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := schedule.ParseSchedule("30 2 * * *", berlin)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from           time.Time
		robfigW, oursW []time.Time
	}{
		{from: utc("2026-03-28T12:00:00Z"),
			robfigW: utcs("2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"),
			oursW:   utcs("2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z")},
		{from: utc("2026-10-24T12:00:00Z"),
			robfigW: utcs("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"),
			oursW:   utcs("2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z")},
	}
	for _, tt := range tests {
		var gotR, gotO []time.Time
		r, o := tt.from, tt.from
		for range 2 {
			r, o = robfig.Next(r), ours.Next(o)
			gotR, gotO = append(gotR, r.UTC()), append(gotO, o.UTC())
		}
		if !equalTimes(gotR, tt.robfigW) {
			t.Errorf("robfig/cron from %v: got %v; want %v (its behaviour changed: revisit ParseSchedule)", tt.from, gotR, tt.robfigW)
		}
		if !equalTimes(gotO, tt.oursW) {
			t.Errorf("ParseSchedule from %v: got %v; want %v", tt.from, gotO, tt.oursW)
		}
	}
}
