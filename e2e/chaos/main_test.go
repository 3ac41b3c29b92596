//go:build e2e

package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	flagSeeds    = flag.Int("chaos.seeds", 20, "number of seeds to run (from -chaos.first)")
	flagFirst    = flag.Int64("chaos.first", 1, "first seed")
	flagSeed     = flag.Int64("chaos.seed", 0, "replay this one seed (0: run -chaos.seeds seeds)")
	flagDuration = flag.Duration("chaos.duration", 6*time.Second, "fault phase of each seed")
	flagMembers  = flag.Int("chaos.members", 3, "ccctl members")
	flagNoFence  = flag.Int("chaos.nofence-seeds", 5, "seeds the planted-bug test may use to see a failure")
	flagHistory  = flag.Bool("chaos.history", false, "log every seed's history and members' logs, not only a failing one's")
)

// Arguments that make the test binary a helper instead of running tests.
const (
	helperHook    = "chaos-hook"    // a hook: one line in the history
	helperJob     = "chaos-job"     // the master-only job: one line
	helperService = "chaos-service" // the service: waits for SIGTERM
	helperBackup  = "chaos-backup"  // the master-only backup job: ccctl backup run, then one line
)

// Environment of the helpers, set by the harness on each ccctl process and
// inherited by its hooks, jobs and service.
const (
	envHistory = "CHAOS_HISTORY" // the history file
	envCCCTL   = "CHAOS_CCCTL"   // the ccctl binary: a helper whose parent is not it writes nothing
	envPIDFile = "CHAOS_PIDFILE" // where the service writes its pid
	envHang    = "CHAOS_HANG"    // while this file exists, hooks hang
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case helperHook, helperJob, helperService, helperBackup:
			os.Exit(helper(os.Args[1]))
		}
	}
	flag.Parse()
	os.Exit(m.Run())
}

// monotonic returns CLOCK_MONOTONIC in nanoseconds, the one clock of every
// process on the machine.
func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// parentIsCCCTL reports whether this process's parent is still the ccctl
// binary (not the process that adopted an orphan).
func parentIsCCCTL() bool {
	want := os.Getenv(envCCCTL)
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", os.Getppid()))
	return err == nil && want != "" && exe == want
}

func helper(mode string) int {
	switch mode {
	case helperService:
		return service()
	case helperBackup:
		return backup()
	case helperHook, helperJob:
		// The time first: if the parent is still ccctl after it, the event
		// happened before the member's death.
		now := monotonic()
		if !parentIsCCCTL() {
			return 0
		}
		token := os.Getenv("CC_FENCING_TOKEN")
		if token == "" {
			token = "0"
		}
		var line string
		if mode == helperHook {
			line = fmt.Sprintf("%d %s %s %s role=%s\n", now, os.Getenv("CC_INSTANCE_ID"), os.Getenv("CC_EVENT"), token, os.Getenv("CC_ROLE"))
		} else {
			line = fmt.Sprintf("%d %s job %s %s@%s\n", now, os.Getenv("CC_INSTANCE_ID"), token, os.Getenv("CC_JOB"), os.Getenv("CC_SCHEDULED_TIME"))
		}
		if err := appendLine(os.Getenv(envHistory), line); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if mode == helperHook && hangs(os.Getenv("CC_EVENT")) {
			if _, err := os.Stat(os.Getenv(envHang)); err == nil {
				return hang()
			}
		}
		return 0
	}
	return 2
}

// hangs reports whether a hook of event hangs under a hang fault: every
// hook but start and the init hooks, which ccctl documents it does not stop
// when the leadership is lost (they run before the service starts).
func hangs(event string) bool {
	switch event {
	case "start", "started_as_master", "started_as_slave":
		return false
	}
	return true
}

// hang is a hook that hangs: it appends "hang" to the history, then waits
// until the hang fault ends ("hang_released"), ccctl stops it with SIGTERM
// ("hang_stopped") or its ccctl is gone (nothing). SIGKILL ends it with
// nothing written either.
func hang() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	event := "event=" + os.Getenv("CC_EVENT")
	write := func(kind string) {
		now := monotonic()
		if parentIsCCCTL() {
			_ = appendLine(os.Getenv(envHistory), fmt.Sprintf("%d %s %s 0 %s\n", now, os.Getenv("CC_INSTANCE_ID"), kind, event))
		}
	}
	write(recHang)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sig:
			write(recHangStopped)
			return 1
		case <-tick.C:
			if !parentIsCCCTL() {
				return 0
			}
			if _, err := os.Stat(os.Getenv(envHang)); err != nil {
				write(recHangReleased)
				return 0
			}
		}
	}
}

// appendLine appends one line to path with a single write on an O_APPEND
// descriptor, so that lines of concurrent writers never interleave.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open history: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("append history: %w", err)
	}
	return f.Close()
}

// service writes its pid for the harness, then runs until SIGTERM or until
// its ccctl is gone (a container's processes die together).
func service() int {
	pidFile := os.Getenv(envPIDFile)
	tmp := pidFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o600); err == nil {
		_ = os.Rename(tmp, filepath.Clean(pidFile))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sig:
			return 0
		case <-tick.C:
			if !parentIsCCCTL() {
				return 0
			}
		}
	}
}

// backupScript writes a backup's content to its standard output in two
// parts, 200 ms apart, so that faults hit backups half written.
const backupScript = `printf '%s' "$CHAOS_BACKUP_HEAD"; sleep 0.2; printf '%s' "$CHAOS_BACKUP_REST"`

// backup is the master-only backup job: it appends "backup_start" to the
// history, runs ccctl backup run with
// backupScript and, when ccctl reports the backup stored and this process's
// parent is still ccctl, appends "backup file=<file> sha256=<hash of the
// content it asked for>" to the history. When its ccctl dies it kills its
// own process group (itself, ccctl backup run and the script) at once, as a
// container's processes die together.
func backup() int {
	if !parentIsCCCTL() {
		return 0
	}
	head := fmt.Sprintf("chaos backup member=%s token=%s slot=%s pid=%d\n",
		os.Getenv("CC_INSTANCE_ID"), os.Getenv("CC_FENCING_TOKEN"), os.Getenv("CC_SCHEDULED_TIME"), os.Getpid())
	content := backupContent(head)
	if err := appendLine(os.Getenv(envHistory), fmt.Sprintf("%d %s %s %s\n", monotonic(), os.Getenv("CC_INSTANCE_ID"), recBackupStart, tokenOr0())); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Getenv(envCCCTL), "backup", "run", backupName, "--ext", backupExt, "--", "sh", "-c", backupScript)
	cmd.Env = append(os.Environ(), "CHAOS_BACKUP_HEAD="+head, "CHAOS_BACKUP_REST="+content[len(head):])
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if !parentIsCCCTL() {
				_ = syscall.Kill(0, syscall.SIGKILL)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos-backup: %v\n", err)
		return 1
	}
	path, _, _ := strings.Cut(out.String(), "\t")
	sum := sha256.Sum256([]byte(content))
	now := monotonic()
	if !parentIsCCCTL() {
		return 0
	}
	line := fmt.Sprintf("%d %s %s %s file=%s sha256=%s\n", now, os.Getenv("CC_INSTANCE_ID"), recBackup, tokenOr0(), filepath.Base(path), hex.EncodeToString(sum[:]))
	if err := appendLine(os.Getenv(envHistory), line); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func tokenOr0() string {
	if t := os.Getenv("CC_FENCING_TOKEN"); t != "" {
		return t
	}
	return "0"
}
