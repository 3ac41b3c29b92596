// Package docstest runs the commands of the documentation as a test: it
// extracts the fenced sh blocks of a Markdown file (or of one section
// between two marker lines) and runs them, exactly as written, in one bash
// shell in a copy of the repository, so that a documentation step that
// fails fails the test. The README's quick start runs in this package's
// test; the blocks that need docker run in the e2e package.
//
// It guarantees that every process the script started is killed when it
// ends (they share its process group); it does not guarantee that the
// ports a script needs are free.
package docstest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Blocks returns the contents of the fenced code blocks tagged sh in the
// Markdown file at path, between the line begin and the line end when
// those are not empty, in order.
func Blocks(tb testing.TB, path, begin, end string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	var blocks []string
	var cur *strings.Builder
	in := begin == ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in:
			in = line == begin
		case end != "" && line == end && cur == nil:
			return blocks
		case cur == nil && line == "```sh":
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if !in || end != "" {
		tb.Fatalf("%s: no section between %q and %q", path, begin, end)
	}
	return blocks
}

// Copy copies the files of the repository at root that git tracks or
// would track (not the ignored ones) into a new temporary directory, makes
// it a git repository with one commit, as a fresh clone is, and returns it.
func Copy(tb testing.TB, root string) string {
	tb.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		tb.Fatalf("git ls-files in %s: %v", root, err)
	}
	dst := tb.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			tb.Fatalf("copy %s: %v", name, err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, st.Mode().Perm()); err != nil {
			tb.Fatalf("copy %s: %v", name, err)
		}
	}
	Git(tb, dst, "init", "-q")
	Git(tb, dst, "add", "-A")
	Git(tb, dst, "-c", "user.name=docs", "-c", "user.email=docs@localhost", "commit", "-q", "-m", "copy")
	return dst
}

// Git runs git with args in dir and returns its output.
func Git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Run runs script with bash -e in dir, with the test's environment but for
// ccctl's own settings, bounded by timeout, and returns its output. It
// fails the test when the script fails. Every process the script left
// running is killed when it ends.
func Run(tb testing.TB, dir, script string, timeout time.Duration) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CCCTL_") && !strings.HasPrefix(kv, "ETCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start bash: %v", err)
	}
	err := cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what it left behind
	if ctx.Err() != nil {
		err = fmt.Errorf("no end within %s", timeout)
	}
	if err != nil {
		tb.Fatalf("the documented commands failed: %v\n--- script:\n%s--- output:\n%s", err, script, out.String())
	}
	return out.String()
}
