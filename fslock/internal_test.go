package fslock

import (
	"strings"
	"testing"
)

func TestWarningFor(t *testing.T) {
	for _, tc := range []struct {
		magic int64
		want  string // substring; "" for no warning
	}{
		{0xef53, ""},     // ext4
		{0x01021994, ""}, // tmpfs
		{0x6969, "nfs"},
		{0xff534d42, "cifs"},
		{-0xacb2be, "cifs"}, // 0xff534d42 as a sign-extended 32-bit value
		{0xfe534d42, "smb2"},
		{0x517b, "smb"},
		{0x65735546, "fuse"},
		{0x01021997, "9p"},
	} {
		got := warningFor("/data", tc.magic)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, " on "+tc.want+":") {
			t.Errorf("warningFor(%#x) = %q; want mention of %q", tc.magic, got, tc.want)
		}
	}
}
