// Package smallfile reads the files that settings name (certificates, keys,
// secrets, the YAML configuration, templates) with a bound on their size.
//
// A setting may name anything: /dev/zero, a FIFO nobody writes to, a
// directory, a 20 GB log. Read opens without blocking (O_NONBLOCK, so a
// FIFO without a writer does not hang the open), refuses what is not a
// regular file, and reads at most the limit, so that none of these can
// exhaust memory or hang the caller. Every error is one line: the path is
// quoted (a path may hold a newline) and cut to a readable length.
//
// What it does not guarantee: the file may change after it was read; the
// caller reads it once and uses those bytes.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"unicode/utf8"
)

// DefaultLimit is the limit for certificates, keys and configuration files:
// a CA bundle of every public root is about 200 KiB.
const DefaultLimit = 1 << 20

// SecretLimit is the limit for a secret read from a <NAME>_FILE file.
const SecretLimit = 64 << 10

var (
	// ErrTooLarge is wrapped by the error of a file larger than the limit.
	ErrTooLarge = errors.New("larger than the limit")
	// ErrNotRegular is wrapped by the error of a path that is not a regular
	// file (a directory, a device, a FIFO, a socket).
	ErrNotRegular = errors.New("not a regular file")
)

// maxPath is how much of a path an error shows.
const maxPath = 128

// Read returns the content of the regular file at path (symbolic links
// followed), or an error wrapping ErrNotRegular, ErrTooLarge or the
// system's error (fs.ErrNotExist, fs.ErrPermission) when it is not a
// regular file, holds more than limit bytes or cannot be read.
func Read(path string, limit int64) ([]byte, error) {
	name := quote(path)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, cause(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", name, cause(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", name, ErrNotRegular, kind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w of %d bytes (%d bytes)", name, ErrTooLarge, limit, fi.Size())
	}
	// The size can change under us (a file still being written; /proc
	// files report 0): read one byte more than the limit to know.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, cause(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w of %d bytes", name, ErrTooLarge, limit)
	}
	return data, nil
}

// cause returns the system error inside a *fs.PathError, whose message
// would repeat the path unquoted.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "type " + m.Type().String()
}

// quote returns path quoted, cut after maxPath bytes with "...".
func quote(path string) string {
	if len(path) <= maxPath {
		return fmt.Sprintf("%q", path)
	}
	cut := maxPath
	for cut > 0 && !utf8.RuneStart(path[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", path[:cut])
}
