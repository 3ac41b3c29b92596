//go:build e2e

package chaos

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hist builds a history from lines "<seconds> <member> <kind> <token>
// [extra]", with a start, an end of the faults at 10 s and an observation
// end at 16 s unless the lines say otherwise.
func hist(t *testing.T, lines ...string) []record {
	t.Helper()
	var b strings.Builder
	ends := false
	for _, l := range lines {
		f := strings.SplitN(l, " ", 2)
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if strings.Contains(l, recFaultsEnd) {
			ends = true
		}
		fmt.Fprintf(&b, "%d %s\n", int64(sec*1e9), f[1])
	}
	if !ends {
		b.WriteString("10000000000 - faults_end 0\n16000000000 - observed 0\n")
	}
	recs, err := parseHistory(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// boot is three members booting, m0 as master with token 5.
var boot = []string{
	"0.0 m0 spawn 0", "0.0 m1 spawn 0", "0.0 m2 spawn 0",
	"0.1 m0 start 0", "0.1 m1 start 0", "0.1 m2 start 0",
	"0.2 m0 started_as_master 5", "0.3 m1 started_as_slave 5", "0.3 m2 started_as_slave 5",
}

func with(lines ...string) []string { return append(append([]string(nil), boot...), lines...) }

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  string // a violation containing this, or "" for none
	}{
		{"steady master", boot, ""},
		{"handover after death", with("2.0 m0 exit 0", "4.3 m1 transition_slave_to_master 9", "4.4 m2 master_changed 9"), ""},
		{"handover after stopping", with("2.0 m0 stopping 5", "2.1 m1 transition_slave_to_master 9", "2.2 m0 exit 0"), ""},
		{"two masters", with("2.0 m1 transition_slave_to_master 9", "3.0 m0 stopping 5"), "two masters at once for 1s"},
		{"two masters, demoted later", with("2.0 m1 transition_slave_to_master 9", "3.0 m0 transition_master_to_slave 0"), "two masters at once"},
		{"frozen old master", with("1.0 m0 freeze 0", "3.5 m1 transition_slave_to_master 9", "5.0 m0 thaw 0", "5.1 m0 stopping 0"), ""},
		{"frozen old master late after thaw", with("1.0 m0 freeze 0", "3.5 m1 transition_slave_to_master 9", "5.0 m0 thaw 0", "5.8 m0 stopping 0"), "two masters at once for 300ms"},
		{"freeze after the newer term began", with("3.5 m1 transition_slave_to_master 9", "4.0 m0 freeze 0", "5.0 m0 thaw 0", "5.1 m0 stopping 0"), "two masters at once for 600ms"},
		{"token goes back", with("2.0 m0 exit 0", "4.3 m1 transition_slave_to_master 4"), "tokens: got 4 after 5"},
		{"promotion without token", with("2.0 m0 exit 0", "4.3 m1 transition_slave_to_master 0"), "want a positive token"},
		{"demotion of a slave", with("2.0 m1 transition_master_to_slave 0"), "not a transition of the state machine"},
		{"master_changed on the master", with("2.0 m0 master_changed 5"), "not a transition of the state machine"},
		{"hook after stopping", with("2.0 m1 stopping 5", "2.1 m1 started_as_slave 5"), "not a transition of the state machine"},
		{"init hook before start", []string{"0.0 m0 spawn 0", "0.1 m0 started_as_master 5"}, "not a transition of the state machine"},
		{"hook of a dead process", with("2.0 m1 exit 0", "2.1 m1 master_changed 5"), "with no live process"},
		{"job once per slot", with("1.0 m0 job 5 tick@1", "2.0 m0 job 5 tick@2"), ""},
		{"job slot twice", with("2.0 m0 exit 0", "4.3 m1 transition_slave_to_master 9", "4.4 m1 job 9 tick@4", "4.5 m1 job 9 tick@4"), "job slot tick@4 ran 2 times"},
		{"job with another term's token", with("1.0 m1 job 5 tick@1"), "not a term of m1"},
		{"settles within TTL + 1s", with("9.9 m0 exit 0", "12.5 m1 transition_slave_to_master 9"), ""},
		{"settles too late", with("9.9 m0 exit 0", "13.5 m1 transition_slave_to_master 9"), "a single master from 3.5s after they stopped; want within 3s"},
		{"no master at the end", with("9.9 m0 exit 0"), "no single master at the end"},
		{"settles after all of etcd restarted", with("9.9 m0 exit 0", "10 - faults_end 0 etcd-all", "14.3 m1 transition_slave_to_master 9", "16 - observed 0"), ""},
		{"settles too late after all of etcd restarted", with("9.9 m0 exit 0", "10 - faults_end 0 etcd-all", "14.6 m1 transition_slave_to_master 9", "16 - observed 0"), "want within 4.5s"},
		{"demotion hook killed with the service", with("2.0 m0 service_exit 0 pid=7", "2.2 m0 master_changed 9", "2.1 m1 transition_slave_to_master 9"), ""},
		{"demotion hook after the service's kill", with("2.0 m0 service_exit 0 pid=7", "2.01 m0 transition_master_to_slave 0", "2.1 m1 transition_slave_to_master 9"), ""},
		{"master goes on after its service died", with("2.0 m0 service_exit 0 pid=7", "2.1 m1 transition_slave_to_master 9", "2.5 m0 transition_slave_to_master 5"), "tokens: got 5 after 9"},
		{"service of a dead ccctl", with("2.0 m0 exit 0", "2.01 m0 service_exit 0 pid=7", "4.3 m1 transition_slave_to_master 9"), ""},
		{"slave's service crash", with("2.0 m1 service_exit 0 pid=7", "2.1 m1 stopping 5"), ""},
		{"without the service's exit", with("2.2 m0 master_changed 9", "2.1 m1 transition_slave_to_master 9"), "two masters at once"},
		{"membership hooks", with("1.0 m0 members_removed 5", "1.0 m1 members_removed 5", "2.0 m0 members_added 5", "2.0 m2 members_added 5"), ""},
		{"members_added before the init hook", []string{"0.0 m0 spawn 0", "0.1 m0 start 0", "0.2 m0 members_added 0"}, "not a transition of the state machine"},
		{"hung demotion hook stopped in time", with("2.0 m0 transition_master_to_slave 0", "2.01 m0 hang 0 event=transition_master_to_slave", "2.5 m0 hang_stopped 0 event=transition_master_to_slave", "4.3 m1 transition_slave_to_master 9"), ""},
		{"hung demotion hook past the promotion", with("2.0 m0 transition_master_to_slave 0", "2.01 m0 hang 0 event=transition_master_to_slave", "4.5 m0 hang_stopped 0 event=transition_master_to_slave", "4.3 m1 transition_slave_to_master 9"), "hook transition_master_to_slave of m0"},
		{"hung demotion hook never ended", with("2.0 m0 transition_master_to_slave 0", "2.01 m0 hang 0 event=transition_master_to_slave", "4.3 m1 transition_slave_to_master 9"), "never ended"},
		{"hung master hook stopped by the loss", with("2.0 m0 members_added 5", "2.01 m0 hang 0 event=members_added", "3.0 m0 hang_stopped 0 event=members_added", "3.0 m0 transition_master_to_slave 0", "4.3 m1 transition_slave_to_master 9"), ""},
		{"hung master hook ended by death", with("2.0 m0 members_added 5", "2.01 m0 hang 0 event=members_added", "2.5 m0 exit 0", "4.3 m1 transition_slave_to_master 9"), ""},
		{"hung master hook past a frozen loss", with("2.0 m0 members_added 5", "2.01 m0 hang 0 event=members_added", "2.1 m0 freeze 0", "4.3 m1 transition_slave_to_master 9", "5.0 m0 thaw 0", "5.1 m0 hang_stopped 0 event=members_added", "5.1 m0 transition_master_to_slave 0"), ""},
		{"hung slave hook", with("2.0 m1 master_changed 5", "2.01 m1 hang 0 event=master_changed", "2.5 m0 exit 0", "4.3 m2 transition_slave_to_master 9", "5.0 m1 hang_released 0 event=master_changed"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := check(hist(t, tc.lines...), 2*time.Second)
			got := strings.Join(rep.violations, "\n")
			if tc.want == "" && got != "" {
				t.Errorf("got violations:\n%s\nwant none", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("got violations:\n%s\nwant one containing %q", got, tc.want)
			}
		})
	}
}

func TestCheckCountsExcusedOverlap(t *testing.T) {
	rep := check(hist(t, with("1.0 m0 freeze 0", "3.5 m1 transition_slave_to_master 9", "5.0 m0 thaw 0", "5.1 m0 stopping 0")...), 2*time.Second)
	if rep.staleUsed != 1 || time.Duration(rep.maxStale) != 100*time.Millisecond {
		t.Errorf("got %d excused overlaps, longest %v; want 1, 100ms", rep.staleUsed, time.Duration(rep.maxStale))
	}
	if len(rep.terms) != 2 {
		t.Errorf("got terms %v; want 2", rep.terms)
	}
}

func TestCheckCountsHangs(t *testing.T) {
	rep := check(hist(t, with(
		"1.0 m1 master_changed 5", "1.01 m1 hang 0 event=master_changed", "1.5 m1 hang_released 0 event=master_changed",
		"2.0 m0 members_added 5", "2.01 m0 hang 0 event=members_added", "3.0 m0 hang_stopped 0 event=members_added", "3.0 m0 transition_master_to_slave 0",
		"3.01 m0 hang 0 event=transition_master_to_slave", "3.5 m0 hang_stopped 0 event=transition_master_to_slave",
		"4.3 m1 transition_slave_to_master 9")...), 2*time.Second)
	if len(rep.violations) > 0 {
		t.Fatalf("got violations %v; want none", rep.violations)
	}
	if len(rep.terms) != 2 || rep.terms[0].from != 200_000_000 {
		t.Errorf("got terms %v; want 2, the first from 0.2s (a membership hook does not begin a term)", rep.terms)
	}
	if rep.hangs != 3 || rep.hangsAsMaster != 2 || rep.hangsStopped != 2 {
		t.Errorf("got %d hangs, %d as master, %d stopped; want 3, 2, 2", rep.hangs, rep.hangsAsMaster, rep.hangsStopped)
	}
}

func TestCheckGaps(t *testing.T) {
	rep := check(hist(t, with("2.0 m0 stopping 5", "2.1 m0 exit 0 exit status 3", "2.6 m1 transition_slave_to_master 9", "3.0 m1 stopping 9", "3.1 m2 transition_slave_to_master 12")...), 2*time.Second)
	if got, want := time.Duration(rep.minGap), 100*time.Millisecond; got != want {
		t.Errorf("smallest gap: got %v; want %v", got, want)
	}
	if got, want := time.Duration(rep.minLostGap), 600*time.Millisecond; got != want {
		t.Errorf("smallest gap after a lost session: got %v; want %v", got, want)
	}
}

func TestScheduleReplays(t *testing.T) {
	a := newSchedule(42, 3, 6*time.Second, 2*time.Second).String()
	b := newSchedule(42, 3, 6*time.Second, 2*time.Second).String()
	if a != b {
		t.Errorf("schedule of seed 42: got\n%s\nthen\n%s\nwant the same twice", a, b)
	}
	t.Logf("%s", a)
	if c := newSchedule(43, 3, 6*time.Second, 2*time.Second).String(); c == a {
		t.Errorf("schedules of seeds 42 and 43: got the same; want different")
	}
	for seed := int64(1); seed <= 200; seed++ {
		s := newSchedule(seed, 3, 6*time.Second, 2*time.Second)
		long := false
		for _, f := range s.Faults {
			if f.At+f.Dur > 6*time.Second {
				t.Errorf("seed %d: fault %v ends after the phase", seed, f)
			}
			if f.Kind == faultCut && f.Target == anyMaster && f.Dur > 2*time.Second+time.Second && f.Sole {
				long = true
			}
		}
		if !long {
			t.Errorf("seed %d: no cut of the master longer than TTL + 1s:\n%v", seed, s)
		}
	}
}

func TestCheckBackups(t *testing.T) {
	dest := t.TempDir()
	dir := filepath.Join(dest, backupName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		return hex.EncodeToString(sum[:])
	}
	whole := backupContent("chaos backup member=m0 token=5 slot=a pid=1\n")
	okSum := write("chaos-20260101T000001Z.txt", whole)
	changedSum := write("chaos-20260101T000002Z.txt", whole)
	write("chaos-20260101T000002Z.txt", backupContent("chaos backup member=m1 token=6 slot=b pid=2\n"))
	write("chaos-20260101T000003Z.txt", whole[:len(whole)-10])    // partial
	write(".chaos-20260101T000004Z.txt.tmp-7", whole[:10])        // a temporary name: not checked
	write("chaos-20260101T000005Z.txt", whole+backupTrailer+"\n") // more than one record
	recs := hist(t,
		"1 m0 backup_start 5",
		"1.5 m0 backup 5 file=chaos-20260101T000001Z.txt sha256="+okSum,
		"2.5 m0 backup 5 file=chaos-20260101T000002Z.txt sha256="+changedSum,
		"3.5 m0 backup 5 file=chaos-20260101T000009Z.txt sha256="+okSum,
	)
	rep := &report{}
	checkBackups(rep, recs, dest)
	want := []string{"got sha256", "000009Z.txt stored by m0 at 3500000000 with token 5: lost", "000003Z.txt: got", "000005Z.txt: got"}
	if len(rep.violations) != len(want) {
		t.Fatalf("got %d violations:\n%s\nwant %d", len(rep.violations), strings.Join(rep.violations, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.Contains(rep.violations[i], w) {
			t.Errorf("violation %d: got %q; want it to contain %q", i, rep.violations[i], w)
		}
	}
	if rep.backups != 1 || rep.backupFiles != 2 {
		t.Errorf("got %d backups intact and %d files complete; want 1 and 2", rep.backups, rep.backupFiles)
	}
}
