package retention

import "testing"

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{65536, "64 KiB"},
		{1<<20 - 1, "1023 KiB"},
		{1 << 20, "1.0 MiB"},
		{1536 << 10, "1.5 MiB"},
		{1 << 30, "1.0 GiB"},
		{5 << 40, "5.0 TiB"},
	} {
		if got := formatBytes(tc.n); got != tc.want {
			t.Errorf("formatBytes(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}
