package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// hideEnv removes the variables named from the environment of this process
// (so that no child inherits them) and overwrites them with zero bytes in
// the process's initial environment, the memory that Linux shows in
// /proc/<pid>/environ to every process of the same user. The Go runtime
// copied that memory at start-up and never reads it again, so overwriting
// it changes nothing but what /proc shows. An error means the copy in /proc
// could not be wiped; the variables are removed from the environment
// whatever happens.
func hideEnv(names []string) error {
	hide := map[string]bool{}
	for _, name := range names {
		if _, ok := os.LookupEnv(name); ok {
			os.Unsetenv(name)
			hide[name] = true
		}
	}
	if len(hide) == 0 {
		return nil
	}
	start, end, err := environArea()
	if err != nil {
		return err
	}
	initial, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return err
	}
	if uint64(len(initial)) > end-start {
		return fmt.Errorf("/proc/self/environ: %d bytes, more than the %d of the area", len(initial), end-start)
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer mem.Close()
	off := 0
	for _, entry := range bytes.Split(initial, []byte{0}) {
		name, _, _ := bytes.Cut(entry, []byte("="))
		if len(entry) > 0 && hide[string(name)] {
			if _, err := mem.WriteAt(make([]byte, len(entry)), int64(start)+int64(off)); err != nil {
				return err
			}
		}
		off += len(entry) + 1
	}
	return nil
}

// environArea returns the bounds of the initial environment: fields 50 and
// 51 (env_start, env_end) of /proc/self/stat.
func environArea() (start, end uint64, err error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold anything;
	// the fields after its last ')' start with field 3.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/self/stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 51-2 {
		return 0, 0, fmt.Errorf("/proc/self/stat: %d fields; want at least 51 (Linux 3.5 or later)", len(fields)+2)
	}
	start, err1 := strconv.ParseUint(fields[50-3], 10, 64)
	end, err2 := strconv.ParseUint(fields[51-3], 10, 64)
	if err1 != nil || err2 != nil || start == 0 || end <= start {
		return 0, 0, fmt.Errorf("/proc/self/stat: environment area %q to %q: not readable", fields[50-3], fields[51-3])
	}
	return start, end, nil
}
