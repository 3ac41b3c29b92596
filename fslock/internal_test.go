package fslock

import (
	"bytes"
	"encoding/binary"
	"strings"
	"syscall"
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

func TestNamesLockFile(t *testing.T) {
	event := func(mask uint32, name string) []byte {
		n := 0
		if name != "" {
			n = (len(name) + 1 + 15) / 16 * 16 // NUL-padded, as the kernel does
		}
		b := make([]byte, syscall.SizeofInotifyEvent+n)
		binary.NativeEndian.PutUint32(b[4:8], mask)
		binary.NativeEndian.PutUint32(b[12:16], uint32(n))
		copy(b[syscall.SizeofInotifyEvent:], name)
		return b
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"the lock file", event(syscall.IN_CLOSE_WRITE, FileName), true},
		{"another file", event(syscall.IN_CLOSE_WRITE, "backup.sql"), false},
		{"a longer name", event(syscall.IN_CLOSE_WRITE, FileName+".old"), false},
		{"after another", cat(event(syscall.IN_CREATE, "x"), event(syscall.IN_CLOSE_WRITE, FileName)), true},
		{"overflow", event(syscall.IN_Q_OVERFLOW, ""), true},
		{"torn", event(syscall.IN_CLOSE_WRITE, FileName)[:20], true},
		{"nothing", nil, false},
	} {
		if got := namesLockFile(tc.b); got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
}
