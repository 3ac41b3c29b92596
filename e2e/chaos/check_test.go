//go:build e2e

package chaos

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kinds of history lines besides the hook events (CC_EVENT) and "job".
const (
	recSpawn       = "spawn"        // the harness started a ccctl process
	recExit        = "exit"         // the harness reaped it (it is dead)
	recFreeze      = "freeze"       // the member and its service are stopped (SIGSTOP)
	recThaw        = "thaw"         // about to be continued (SIGCONT)
	recFault       = "fault"        // a fault injected or healed (for the reader)
	recFaultsStart = "faults_start" // the schedule begins
	recFaultsEnd   = "faults_end"   // everything healed and etcd has a leader
	recObserved    = "observed"     // end of the observation, before the shutdown
	recBackup      = "backup"       // a backup stored: file=<file> sha256=<hex>
	recBackupStart = "backup_start" // a backup job began

	recServiceExit = "service_exit" // the harness saw the member's service gone

	recHang         = "hang"          // a hook began to hang: event=<CC_EVENT>
	recHangStopped  = "hang_stopped"  // ccctl stopped the hanging hook (SIGTERM)
	recHangReleased = "hang_released" // the hang fault ended first
)

// The members' backups: DESTINATION/chaos/chaos-YYYYMMDDTHHMMSSZ.txt, each
// the content backupContent returns for its first line.
const (
	backupName    = "chaos"
	backupExt     = ".txt"
	backupTrailer = "chaos-backup-end"
)

// backupFile matches the name of a stored backup (not a temporary one).
var backupFile = regexp.MustCompile(`^` + backupName + `-[0-9]{8}T[0-9]{6}Z` + regexp.QuoteMeta(backupExt) + `$`)

// backupContent returns the complete content of a backup whose first line
// is head: head, 64 lines of filler, and the trailer line.
func backupContent(head string) string {
	return head + strings.Repeat(strings.Repeat("x", 63)+"\n", 64) + backupTrailer + "\n"
}

// staleAfterThaw is how long after SIGCONT a member that was frozen as master
// may still look master while a newer term runs: ccctl acts on the loss only
// once it runs again, and the fencing token covers that window.
const staleAfterThaw = 500 * time.Millisecond

// record is one line of the history.
type record struct {
	t      int64 // CLOCK_MONOTONIC ns
	member string
	kind   string
	token  int64
	extra  string
	line   int
}

func (r record) String() string {
	return fmt.Sprintf("%d %s %s %d %s", r.t, r.member, r.kind, r.token, r.extra)
}

// parseHistory reads the history file's lines, sorted by time.
func parseHistory(text string) ([]record, error) {
	var recs []record
	for i, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.SplitN(l, " ", 5)
		if len(f) < 4 {
			return nil, fmt.Errorf("history line %d %q: got %d fields; want at least 4", i+1, l, len(f))
		}
		t, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("history line %d %q: time: %v", i+1, l, err)
		}
		tok, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("history line %d %q: token: %v", i+1, l, err)
		}
		r := record{t: t, member: f[1], kind: f[2], token: tok, line: i + 1}
		if len(f) == 5 {
			r.extra = f[4]
		}
		recs = append(recs, r)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].t < recs[j].t })
	return recs, nil
}

// term is one member's tenure as master.
type term struct {
	member string
	inc    int // incarnation of the member (its n-th process)
	token  int64
	from   int64
	to     int64 // math.MaxInt64 while open
	end    string
}

func (t term) String() string {
	to := "open"
	if t.to != math.MaxInt64 {
		to = strconv.FormatInt(t.to, 10)
	}
	return fmt.Sprintf("%s#%d token %d [%d, %s) ended by %s", t.member, t.inc, t.token, t.from, to, t.end)
}

// window is a time interval [from, to).
type window struct{ from, to int64 }

// report is what the checker found.
type report struct {
	violations  []string
	terms       []term
	jobs        int
	backups     int // backups recorded as stored, each found intact
	backupFiles int // files named as backups in the folder, each complete
	backupRuns  int // backup jobs begun (stored, failed or killed)
	spawns      int
	staleUsed   int   // overlaps excused by staleAfterThaw
	maxStale    int64 // the longest of them, from SIGCONT (ns)
	minGap      int64 // smallest time from a demotion to the next promotion (ns), -1 if none
	minLostGap  int64 // the same after a master whose session was lost (ccctl exit code 3), -1 if none
	settle      int64 // from faults_end to a single master (ns), -1 if not measured

	hangs         int // hooks that hung
	hangsAsMaster int // of them, those that hung in a master's term or as its demotion
	hangsStopped  int // hooks ccctl stopped while they hung
}

func (r *report) failf(format string, args ...any) {
	r.violations = append(r.violations, fmt.Sprintf(format, args...))
}

// Hook states of one ccctl process.
const (
	stBoot     = "booting"
	stStarted  = "started"
	stMaster   = "master"
	stSlave    = "slave"
	stStopping = "stopping"
	stFenced   = "fenced" // a master whose service died: a slave, its demotion hook may still show
)

// transitions is the hook state machine: state -> event -> next state.
var transitions = map[string]map[string]string{
	stBoot:     {"start": stStarted, "stopping": stStopping},
	stStarted:  {"started_as_master": stMaster, "started_as_slave": stSlave, "stopping": stStopping},
	stMaster:   {"transition_master_to_slave": stSlave, "members_added": stMaster, "members_removed": stMaster, "stopping": stStopping},
	stSlave:    {"transition_slave_to_master": stMaster, "master_changed": stSlave, "members_added": stSlave, "members_removed": stSlave, "stopping": stStopping},
	stStopping: {},
	stFenced:   {"transition_master_to_slave": stSlave, "transition_slave_to_master": stMaster, "master_changed": stSlave, "members_added": stSlave, "members_removed": stSlave, "stopping": stStopping},
}

// check checks a history. ttl is the members' session TTL.
func check(recs []record, ttl time.Duration) *report {
	rep := &report{minGap: -1, minLostGap: -1, settle: -1}
	type proc struct {
		inc   int
		state string
		term  *term
		alive bool
	}
	procs := map[string]*proc{}
	incs := map[string]int{}
	exits := map[string]string{} // member#inc -> how its process ended
	frozen := map[string][]window{}
	openFreeze := map[string]int64{}
	var faultsEnd, observed int64 = -1, -1
	etcdAll := false // all of etcd was restarted during the faults
	var jobs []record
	var hungs []hung // hooks that hung, in order
	var last int64
	closeTerm := func(m string, p *proc, t int64, why string) {
		if p.term != nil {
			p.term.to, p.term.end = t, why
			rep.terms = append(rep.terms, *p.term)
			p.term = nil
		}
	}
	for _, r := range recs {
		last = r.t
		switch r.kind {
		case recFault, recFaultsStart:
			continue
		case recFaultsEnd:
			faultsEnd = r.t
			etcdAll = r.extra == etcdRestartedAll
			continue
		case recObserved:
			observed = r.t
			continue
		case recFreeze:
			openFreeze[r.member] = r.t
			continue
		case recThaw:
			if f, ok := openFreeze[r.member]; ok {
				frozen[r.member] = append(frozen[r.member], window{f, r.t})
				delete(openFreeze, r.member)
			}
			continue
		case recSpawn:
			if p := procs[r.member]; p != nil && p.alive {
				rep.failf("%s spawned at %d while its previous process is alive", r.member, r.t)
			}
			incs[r.member]++
			procs[r.member] = &proc{inc: incs[r.member], state: stBoot, alive: true}
			rep.spawns++
			continue
		case "job":
			jobs = append(jobs, r)
			continue
		case recBackup:
			continue // checkBackups
		case recBackupStart:
			rep.backupRuns++
			continue
		case recHang:
			inc := 0
			if p := procs[r.member]; p != nil && p.alive {
				inc = p.inc
			}
			hungs = append(hungs, hung{rec: r, inc: inc, end: math.MaxInt64})
			rep.hangs++
			continue
		case recHangStopped, recHangReleased:
			for k := len(hungs) - 1; k >= 0; k-- {
				if hungs[k].rec.member == r.member && hungs[k].end == math.MaxInt64 {
					hungs[k].end, hungs[k].how = r.t, r.kind
					break
				}
			}
			if r.kind == recHangStopped {
				rep.hangsStopped++
			}
			continue
		}
		p := procs[r.member]
		if r.kind == recServiceExit && (p == nil || !p.alive) {
			continue // the service of a dead ccctl, killed by the harness
		}
		if p == nil || !p.alive {
			rep.failf("%s: %s at %d (line %d) with no live process", r.member, r.kind, r.t, r.line)
			continue
		}
		if r.kind == recServiceExit {
			// The service of a master is gone (crashed, or killed by ccctl
			// when the demotion missed its deadline): its term ends.
			if p.state == stMaster {
				closeTerm(r.member, p, r.t, recServiceExit)
				p.state = stFenced
			}
			continue
		}
		if r.kind == recExit {
			for k := range hungs {
				if hungs[k].rec.member == r.member && hungs[k].inc == p.inc && hungs[k].end == math.MaxInt64 {
					hungs[k].end, hungs[k].how = r.t, "death"
				}
			}
			exits[fmt.Sprintf("%s#%d", r.member, p.inc)] = r.extra
			closeTerm(r.member, p, r.t, "death")
			if f, ok := openFreeze[r.member]; ok {
				frozen[r.member] = append(frozen[r.member], window{f, r.t})
				delete(openFreeze, r.member)
			}
			p.alive = false
			continue
		}
		next, ok := transitions[p.state][r.kind]
		if !ok {
			rep.failf("%s#%d: hook %s in state %s at %d (line %d): not a transition of the state machine", r.member, p.inc, r.kind, p.state, r.t, r.line)
			continue
		}
		switch {
		case next == stMaster && p.state == stMaster: // a membership hook: the term goes on
		case next == stMaster:
			if r.token <= 0 {
				rep.failf("%s#%d: %s at %d with token %d; want a positive token", r.member, p.inc, r.kind, r.t, r.token)
			}
			p.term = &term{member: r.member, inc: p.inc, token: r.token, from: r.t, to: math.MaxInt64}
		case p.state == stMaster:
			closeTerm(r.member, p, r.t, r.kind)
		}
		p.state = next
	}
	for m, p := range procs {
		if p.term != nil {
			rep.terms = append(rep.terms, *p.term)
		}
		if f, ok := openFreeze[m]; ok {
			frozen[m] = append(frozen[m], window{f, max(last, f) + 1})
		}
	}
	sort.Slice(rep.terms, func(i, j int) bool { return rep.terms[i].from < rep.terms[j].from })

	// Tokens strictly increase from term to term.
	for i := 1; i < len(rep.terms); i++ {
		a, b := rep.terms[i-1], rep.terms[i]
		if b.token <= a.token {
			rep.failf("tokens: got %d after %d (%v, then %v); want strictly increasing", b.token, a.token, a, b)
		}
		if a.to != math.MaxInt64 {
			gap := b.from - a.to
			if rep.minGap < 0 || gap < rep.minGap {
				rep.minGap = gap
			}
			if exits[fmt.Sprintf("%s#%d", a.member, a.inc)] == "exit status 3" && (rep.minLostGap < 0 || gap < rep.minLostGap) {
				rep.minLostGap = gap
			}
		}
	}

	// No two masters at once.
	for i := range rep.terms {
		for j := i + 1; j < len(rep.terms); j++ {
			a, b := rep.terms[i], rep.terms[j]
			if a.member == b.member && a.inc == b.inc {
				continue
			}
			ov := window{max(a.from, b.from), min(a.to, b.to)}
			if ov.from >= ov.to {
				continue
			}
			older := a
			if b.token < a.token {
				older = b
			}
			excused := append(append([]window(nil), frozen[a.member]...), frozen[b.member]...)
			var thawWins []window
			newer := a
			if older == a {
				newer = b
			}
			for _, fw := range frozen[older.member] {
				// Only a freeze that began before the newer term explains
				// the older master's late demotion.
				if fw.to > older.from && fw.to < older.to && fw.from < newer.from {
					thawWins = append(thawWins, window{fw.to, fw.to + staleAfterThaw.Nanoseconds()})
				}
			}
			left := subtract([]window{ov}, excused)
			if len(left) == 0 {
				continue
			}
			rest := subtract(left, thawWins)
			if len(rest) > 0 {
				rep.failf("two masters at once for %v: %v and %v", time.Duration(total(rest)), a, b)
				continue
			}
			rep.staleUsed++
			for _, w := range left {
				for _, tw := range thawWins {
					if w.to > tw.from && w.to <= tw.to {
						rep.maxStale = max(rep.maxStale, w.to-tw.from)
					}
				}
			}
		}
	}

	checkHangs(rep, hungs, frozen)

	// The master-only job: at most once per slot, with a token of the
	// member's own terms.
	slots := map[string][]record{}
	for _, j := range jobs {
		slots[j.extra] = append(slots[j.extra], j)
		ok := false
		for _, t := range rep.terms {
			if t.member == j.member && t.token == j.token {
				ok = true
			}
		}
		if !ok {
			rep.failf("job %s ran on %s at %d with token %d, which is not a term of %s", j.extra, j.member, j.t, j.token, j.member)
		}
	}
	rep.jobs = len(jobs)
	for slot, rs := range slots {
		if len(rs) > 1 {
			rep.failf("job slot %s ran %d times: %v; want at most once", slot, len(rs), rs)
		}
	}

	// Once the faults stopped: one master within ttl + 1 s, to the end.
	if faultsEnd >= 0 && observed > faultsEnd {
		points := []int64{faultsEnd, observed}
		for _, t := range rep.terms {
			for _, p := range []int64{t.from, t.to} {
				if p > faultsEnd && p < observed {
					points = append(points, p)
				}
			}
		}
		sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
		lastBad := faultsEnd
		for k := 0; k+1 < len(points); k++ {
			p := points[k]
			if p == points[k+1] {
				continue
			}
			n := 0
			for _, t := range rep.terms {
				if t.from <= p && t.to > p {
					n++
				}
			}
			if n != 1 {
				lastBad = points[k+1]
			}
		}
		rep.settle = lastBad - faultsEnd
		if lastBad == observed {
			rep.failf("after the faults: no single master at the end of the observation, %v after they stopped", time.Duration(observed-faultsEnd))
		} else if limit := settleLimit(ttl, etcdAll); time.Duration(rep.settle) > limit {
			how := "TTL + 1s"
			if etcdAll {
				how = "TTL + 1s + etcd's lease extension after all of it restarted"
			}
			rep.failf("after the faults: a single master from %v after they stopped; want within %v (%s)", time.Duration(rep.settle), limit, how)
		}
	} else {
		rep.failf("history: no faults_end and observed records; want both")
	}
	return rep
}

// hung is a hook that hung: its "hang" record, the incarnation of its
// member, and when and how it ended (math.MaxInt64 while it did not).
type hung struct {
	rec record
	inc int
	end int64
	how string // hang_stopped, hang_released or death
}

// checkHangs checks the hooks that hung: one that hung in a master's term
// (or as the demotion hook that ended it, or as its stopping hook) must
// have ended, stopped by ccctl if need be, before another member's term
// began after that term: a hook of a former master does not run past the
// instant its lease can expire on the server. Time during which the member
// was frozen excuses it, as for two masters.
func checkHangs(rep *report, hungs []hung, frozen map[string][]window) {
	for _, h := range hungs {
		event := strings.TrimPrefix(h.rec.extra, "event=")
		var own *term
		for k := range rep.terms {
			t := &rep.terms[k]
			if t.member != h.rec.member || t.inc != h.inc || t.from > h.rec.t {
				continue
			}
			if h.rec.t < t.to || ((t.end == event || t.end == recServiceExit) && t.to <= h.rec.t) {
				own = t
			}
		}
		if own == nil {
			continue
		}
		rep.hangsAsMaster++
		for _, u := range rep.terms {
			if u.member == own.member || u.from <= own.from || u.from >= h.end {
				continue
			}
			excused := false
			for _, fw := range frozen[own.member] {
				if fw.from < u.from && fw.to > own.from {
					excused = true
				}
			}
			if excused {
				continue
			}
			end := "never ended"
			if h.end != math.MaxInt64 {
				end = fmt.Sprintf("ended by %s %v after it", h.how, time.Duration(h.end-u.from))
			}
			rep.failf("hook %s of %s (term %v) hung from %d and ran past the start of %v: %s; want it stopped first", event, own.member, *own, h.rec.t, u, end)
		}
	}
}

// etcdRestartedAll, as the extra of faults_end, says that the whole of etcd
// was stopped and restarted during the faults.
const etcdRestartedAll = "etcd-all"

// etcdLeaseExtension is how much longer than its TTL a lease can live when
// etcd comes back with a new leader: etcd extends every lease by its
// election timeout (1 s, embedded etcd's default) when a leader takes over,
// and looks for expired leases every 500 ms.
const etcdLeaseExtension = 1500 * time.Millisecond

// settleLimit is how long after the faults there must be a single master:
// TTL + 1 s, for a master that died without resigning; when the whole of
// etcd was restarted at the end of the faults, the dead master's lease
// lives etcdLeaseExtension longer.
func settleLimit(ttl time.Duration, etcdAll bool) time.Duration {
	if etcdAll {
		return ttl + time.Second + etcdLeaseExtension
	}
	return ttl + time.Second
}

// subtract returns the parts of ws outside every window of cut.
func subtract(ws, cut []window) []window {
	for _, c := range cut {
		var out []window
		for _, w := range ws {
			if c.to <= w.from || c.from >= w.to {
				out = append(out, w)
				continue
			}
			if c.from > w.from {
				out = append(out, window{w.from, c.from})
			}
			if c.to < w.to {
				out = append(out, window{c.to, w.to})
			}
		}
		ws = out
	}
	return ws
}

func total(ws []window) int64 {
	var n int64
	for _, w := range ws {
		n += w.to - w.from
	}
	return n
}

// readHistory reads and parses the history file.
func readHistory(path string) ([]record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseHistory(string(b))
}

// checkBackups checks the backups' folder dest after the run: every backup
// the history records as stored is still there with the content whose hash
// was recorded, and every file named as a backup holds a complete record
// (backupContent of its first line), not a part of one.
func checkBackups(rep *report, recs []record, dest string) {
	dir := filepath.Join(dest, backupName)
	for _, r := range recs {
		if r.kind != recBackup {
			continue
		}
		var file, sum string
		for _, f := range strings.Fields(r.extra) {
			if v, ok := strings.CutPrefix(f, "file="); ok {
				file = v
			} else if v, ok := strings.CutPrefix(f, "sha256="); ok {
				sum = v
			}
		}
		if !backupFile.MatchString(file) || sum == "" {
			rep.failf("backup record %q of %s (line %d): want file=<backup name> sha256=<hex>", r.extra, r.member, r.line)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			rep.failf("backup %s stored by %s at %d with token %d: lost: %v", file, r.member, r.t, r.token, err)
			continue
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			rep.failf("backup %s stored by %s at %d: got sha256 %x; want %s as recorded", file, r.member, r.t, got, sum)
			continue
		}
		rep.backups++
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			rep.failf("backups: %v", err)
		}
		return
	}
	for _, e := range entries {
		if !backupFile.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			rep.failf("backup %s: %v", e.Name(), err)
			continue
		}
		head, _, _ := strings.Cut(string(b), "\n")
		if string(b) != backupContent(head+"\n") {
			rep.failf("backup %s: got %d bytes, not a complete record (%q...); want the whole backup or none", e.Name(), len(b), tail64(b))
			continue
		}
		rep.backupFiles++
	}
}

// tail64 returns the last 64 bytes of b.
func tail64(b []byte) []byte {
	if len(b) > 64 {
		return b[len(b)-64:]
	}
	return b
}
