// Package retention stores backups made by a command and removes old ones
// by a retention policy with the semantics of restic's `forget`.
//
// Layout. The backups of NAME live in DESTINATION/NAME/ as
// NAME-YYYYMMDDTHHMMSSZ<ext> (the UTC time at which the run started; ext
// is optional, e.g. ".sql.gz"), each a file or a directory. Nothing else in
// that folder is ever taken for a backup, or removed: List, Plan and Prune
// only see names matching that pattern. The folder also holds the lock file
// .ccctl.lock (see package fslock) and, during a run, the run's temporary
// names .NAME-YYYYMMDDTHHMMSSZ.tmp-PID[.file], which never match.
//
// What is guaranteed:
//
//   - A backup is published only when its command exited 0 within its time
//     limit and wrote something, and every write of it is known to have
//     succeeded: the output is written under a temporary name, fsynced
//     (every file and directory of a directory backup), renamed without
//     replacing anything, and the folder is fsynced. A failure, a timeout,
//     a kill of the command or of the runner, or a full disk leaves every
//     earlier backup untouched and no name that matches the pattern.
//   - Standard output is copied by RunBackup itself, through a pipe: each
//     write is checked (a short or failed write, ENOSPC and EDQUOT included,
//     fails the run even when the command exits 0; the read end is then
//     closed so that the command stops on EPIPE), the file is fsynced, and
//     its size on disk must equal the bytes written. Output still open
//     2 s after the command's process group ended (a process outside the
//     group holds it) fails the run.
//   - A backup the command writes itself to $CC_BACKUP_FILE is fsynced (an
//     error of the sync, as NFS or a thin volume may give, fails the run),
//     and it is refused with ErrNoSpace when the file system has less than
//     MinFree (or 16 blocks) free after the command: on a disk that full one
//     of its writes may have failed.
//   - A run holds the folder's filesystem lock (fslock on DESTINATION/NAME)
//     from before it creates its temporary names until it has pruned. So
//     every temporary name found while holding the lock belongs to a run
//     that died, and is removed at the start of the next run.
//   - Pruning runs only after a successful backup (or by Prune), under the
//     same lock, removes only names matching the pattern, and never removes
//     the newest backup nor the one the run just made.
//
// What is not guaranteed:
//
//   - A command killed with the runner (the runner is SIGKILLed) may go on
//     running as an orphan; its output goes to a temporary name that the
//     next run removes.
//   - Content is not verified: a command that exits 0 after writing a bad
//     dump produces a bad backup.
//   - In the $CC_BACKUP_FILE mode the writes are the command's: a command
//     that ignores a failed write (ENOSPC, EIO, EFBIG) and exits 0 is
//     caught only when the disk is still full when it ends, not when the
//     space was freed meanwhile, nor for errors other than a full disk.
//     Prefer standard output, or a command that fails on a failed write.
//   - Two runs of the same NAME in the same second: the second fails with
//     ErrExists rather than replace the first.
//   - The folder's lock is only as good as flock on its filesystem (see
//     fslock).
package retention

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// TimeLayout is the layout of the time in a backup's name (always UTC).
const TimeLayout = "20060102T150405Z"

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	extRE  = regexp.MustCompile(`^(\.[A-Za-z0-9][A-Za-z0-9_-]*)*$`)
)

// ErrInvalidName is returned for a backup name or extension that could
// escape the folder or be confused with other files.
var ErrInvalidName = errors.New("retention: invalid name")

// ValidateName checks a backup name: letters, digits, '.', '_' and '-',
// starting with a letter or digit.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("backup name %q: %w (want letters, digits, '.', '_', '-', starting with a letter or digit)", name, ErrInvalidName)
	}
	return nil
}

// ValidateExt checks an extension: empty, or dot-separated parts of
// letters, digits, '_' and '-', each after a dot (".sql.gz").
func ValidateExt(ext string) error {
	if !extRE.MatchString(ext) {
		return fmt.Errorf("backup extension %q: %w (want e.g. \".sql.gz\")", ext, ErrInvalidName)
	}
	return nil
}

// Backup is one stored backup.
type Backup struct {
	// File is the backup's base name, NAME-YYYYMMDDTHHMMSSZ<ext>.
	File string `json:"file"`
	// Path is the backup's path: DESTINATION/NAME/File.
	Path string `json:"-"`
	// Time is the time in the name, in UTC.
	Time time.Time `json:"-"`
	// Ext is the extension part of the name, possibly empty.
	Ext string `json:"-"`
	// IsDir reports whether the backup is a directory.
	IsDir bool `json:"-"`
}

// FileName returns the base name of NAME's backup made at t with ext.
func FileName(name string, t time.Time, ext string) string {
	return name + "-" + t.UTC().Format(TimeLayout) + ext
}

// ParseFileName reports whether file is a backup of name, and its time and
// extension.
func ParseFileName(name, file string) (t time.Time, ext string, ok bool) {
	rest, found := strings.CutPrefix(file, name+"-")
	if !found || len(rest) < len(TimeLayout) {
		return time.Time{}, "", false
	}
	stamp, ext := rest[:len(TimeLayout)], rest[len(TimeLayout):]
	t, err := time.Parse(TimeLayout, stamp)
	if err != nil || t.Format(TimeLayout) != stamp || !extRE.MatchString(ext) {
		return time.Time{}, "", false
	}
	return t, ext, true
}

// Folder returns DESTINATION/NAME, the folder of name's backups.
func Folder(destination, name string) string {
	return filepath.Join(destination, name)
}

// List returns the backups of name in destination, newest first. Only
// regular files and directories whose names match the pattern are listed;
// temporary names, the lock file and anything else are ignored. A missing
// folder is an error wrapping fs.ErrNotExist.
func List(destination, name string) ([]Backup, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	dir := Folder(destination, name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list backups of %s: %w", name, err)
	}
	backups := []Backup{}
	for _, e := range entries {
		t, ext, ok := ParseFileName(name, e.Name())
		if !ok || !(e.Type().IsRegular() || e.IsDir()) {
			continue
		}
		backups = append(backups, Backup{
			File:  e.Name(),
			Path:  filepath.Join(dir, e.Name()),
			Time:  t,
			Ext:   ext,
			IsDir: e.IsDir(),
		})
	}
	slices.SortStableFunc(backups, func(a, b Backup) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.File, a.File)
	})
	return backups, nil
}

// remove deletes a backup listed in dir, after checking again that its name
// matches the pattern and that it is directly inside dir.
func remove(dir, name string, b Backup) error {
	if _, _, ok := ParseFileName(name, b.File); !ok || filepath.Base(b.File) != b.File || filepath.Join(dir, b.File) != b.Path {
		return fmt.Errorf("remove backup %s: %w: not a backup of %s in %s", b.Path, ErrInvalidName, name, dir)
	}
	fi, err := os.Lstat(b.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove backup: %w", err)
	}
	if fi.IsDir() {
		err = os.RemoveAll(b.Path)
	} else {
		err = os.Remove(b.Path)
	}
	if err != nil {
		return fmt.Errorf("remove backup: %w", err)
	}
	return nil
}
