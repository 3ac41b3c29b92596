package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // a part of stdout
		stderr string // all of stderr
	}{
		{args: []string{"--help"}, code: 0, stdout: "--data-dir string"},
		{args: []string{"-h"}, code: 0, stdout: "Usage: ccctl-etcd [flags]"},
		{args: []string{"--listen", "nowhere"}, code: 2, stderr: "ccctl-etcd: --listen \"nowhere\": want host:port\n"},
		{args: []string{"--listen-peer", "2380"}, code: 2, stderr: "ccctl-etcd: --listen-peer \"2380\": want host:port\n"},
		{args: []string{"--nope"}, code: 2, stderr: "ccctl-etcd: unknown flag: --nope\n"},
		{args: []string{"serve"}, code: 2, stderr: "ccctl-etcd: unexpected argument \"serve\"; want flags only (see --help)\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || stderr.String() != tc.stderr {
			t.Errorf("ccctl-etcd %s: got %d, stdout %q, stderr %q; want %d, stdout with %q, stderr %q",
				strings.Join(tc.args, " "), code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}
