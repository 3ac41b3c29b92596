package schedule_test

import (
	"testing"
	"time"

	"github.com/ccctl/ccctl/schedule"
)

func BenchmarkNext(b *testing.B) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		b.Skip(err)
	}
	for _, spec := range []string{"30 2 * * *", "*/5 * * * *", "* * * * * *", "@every 1m"} {
		s, err := schedule.ParseSchedule(spec, berlin)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec, func(b *testing.B) {
			t := time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC)
			for b.Loop() {
				t = s.Next(t)
			}
		})
	}
}
