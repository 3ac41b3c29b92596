package retention

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// copyBuffer is the size of the reads from the command's standard output
// and of the writes to the backup's file.
const copyBuffer = 1 << 20

// pipeSize is asked for the command's standard output pipe (the default of
// 64 KiB makes a context switch every 64 KiB); the kernel may refuse it.
const pipeSize = 1 << 20

// outputDrain bounds the reading of the command's standard output after the
// command's process group is gone: what is left is in the pipe's buffer,
// unless a process outside the group holds the pipe open.
const outputDrain = 2 * time.Second

// stdoutCopy copies a command's standard output, through a pipe, to a file
// with checked writes. The command gets the pipe's write end; the copy
// counts every byte it wrote, stops at the first failed read or write and
// then closes the read end, so that the command's next write fails (EPIPE)
// rather than blocking.
type stdoutCopy struct {
	pr, pw *os.File
	dst    *os.File
	done   chan struct{}
	n      int64 // bytes written to dst; read after done
	rerr   error // failed read (nil at EOF); read after done
	werr   error // failed write; read after done
}

// startCopy makes the pipe and starts copying from it to dst. The caller
// gives Writer() to the command, then calls finish once.
func startCopy(dst *os.File) (*stdoutCopy, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if rc, err := pr.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) // best effort
		})
	}
	c := &stdoutCopy{pr: pr, pw: pw, dst: dst, done: make(chan struct{})}
	go c.copy()
	return c, nil
}

// Writer is the command's standard output.
func (c *stdoutCopy) Writer() *os.File { return c.pw }

func (c *stdoutCopy) copy() {
	defer close(c.done)
	defer c.pr.Close()
	buf := make([]byte, copyBuffer)
	for {
		n, err := c.pr.Read(buf)
		if n > 0 {
			w, werr := c.dst.Write(buf[:n])
			c.n += int64(w)
			if werr == nil && w != n {
				werr = &os.PathError{Op: "write", Path: c.dst.Name(), Err: io.ErrShortWrite}
			}
			if werr != nil {
				c.werr = werr
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.rerr = err
			}
			return
		}
	}
}

// finish is called once the command's process group is gone. It closes the
// parent's write end, lets the copy drain what the pipe holds (bounded by
// outputDrain) and returns the bytes written, the write error and the read
// error.
func (c *stdoutCopy) finish() (n int64, werr, rerr error) {
	c.pw.Close()
	c.pr.SetReadDeadline(time.Now().Add(outputDrain)) // fails harmlessly once the copy closed it
	<-c.done
	if errors.Is(c.rerr, os.ErrDeadlineExceeded) {
		c.rerr = fmt.Errorf("standard output still open %v after the command ended (a process outside its group holds it): the backup may be incomplete", outputDrain)
	}
	return c.n, c.werr, c.rerr
}

// abort closes both ends when the command could not start.
func (c *stdoutCopy) abort() {
	c.pw.Close()
	c.pr.SetReadDeadline(time.Now())
	<-c.done
}

// ErrNoSpace is returned when the backup's file system ran out of space
// during the run: a write of ccctl failed with ENOSPC (the error wraps
// syscall.ENOSPC too), or, for a backup the command wrote itself to
// $CC_BACKUP_FILE, less than MinFree was free when the command ended.
var ErrNoSpace = errors.New("retention: no space left for the backup")

// MinFree is the free space below which a backup written by the command
// itself ($CC_BACKUP_FILE) is refused: a file system that full may have
// refused one of the command's writes, which ccctl cannot see. It is at
// least 16 blocks of the file system.
const MinFree = 64 << 10

// spaceError is a failed write (or a full file system) with a note on the
// free space, wrapping ErrNoSpace.
type spaceError struct {
	err  error
	note string
}

func (e *spaceError) Error() string   { return e.err.Error() + " (" + e.note + ")" }
func (e *spaceError) Unwrap() []error { return []error{ErrNoSpace, e.err} }

// freeSpace returns the bytes this process may still write on dir's file
// system, and its size.
func freeSpace(dir string) (free, total uint64, bsize int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	blocks := st.Bavail
	if hasCapSysResource() {
		blocks = st.Bfree // may use the blocks reserved for root
	}
	bs := int64(st.Bsize)
	return blocks * uint64(bs), st.Blocks * uint64(bs), bs, nil
}

// spaceNote describes the free space on dir's file system, e.g.
// "0 B of 1.0 MiB free on /backup/db".
func spaceNote(dir string) string {
	free, total, _, err := freeSpace(dir)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s of %s free on %s", formatBytes(free), formatBytes(total), dir)
}

// writeError describes a failed write to the backup's file, adding the free
// space when it is ENOSPC or EDQUOT.
func writeError(err error, dir string) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &spaceError{err: err, note: spaceNote(dir)}
	}
	return err
}

// checkRoom fails with ErrNoSpace when dir's file system has less than
// MinFree (or 16 blocks) free.
func checkRoom(dir string) error {
	free, total, bs, err := freeSpace(dir)
	if err != nil {
		return err
	}
	min := max(uint64(MinFree), 16*uint64(bs))
	if free >= min {
		return nil
	}
	return &spaceError{
		err: fmt.Errorf("$%s: the file system was full when the command ended, so one of its writes may have failed unseen; free some space and run again", EnvBackupFile),
		note: fmt.Sprintf("%s of %s free on %s, want at least %s",
			formatBytes(free), formatBytes(total), dir, formatBytes(min)),
	}
}

// formatBytes prints n as "512 B", "12 KiB", "1.0 MiB", "3.2 GiB".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	if n < unit*unit {
		return strconv.FormatUint(n/unit, 10) + " KiB"
	}
	v, suffix := float64(n)/(unit*unit), "MiB"
	for _, s := range []string{"GiB", "TiB", "PiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + suffix
}

// hasCapSysResource reports whether this process may use the blocks a file
// system reserves for root (CAP_SYS_RESOURCE in its effective set).
func hasCapSysResource() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}
