// Command stamp appends one line "EVENT NANOSECONDS" to FILE, NANOSECONDS
// being the CLOCK_MONOTONIC time (machine-wide on Linux) read first thing in
// main. The bench driver uses it as ccctl's hooks and service, so that the
// time a hook or the service started can be compared with the time the
// driver sent a signal.
//
// Usage:
//
//	stamp FILE EVENT [wait]
//
// With wait, stamp then waits for SIGTERM or SIGINT, stamps
// "EVENT-signalled NANOSECONDS" when it comes and exits; it is killed when its
// parent dies (PR_SET_PDEATHSIG), so that a service left behind by a killed
// ccctl does not outlive it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		fmt.Fprintln(os.Stderr, "stamp:", err)
		os.Exit(1)
	}
	if len(os.Args) < 3 || len(os.Args) > 4 || (len(os.Args) == 4 && os.Args[3] != "wait") {
		fmt.Fprintln(os.Stderr, "usage: stamp FILE EVENT [wait]")
		os.Exit(2)
	}
	wait := len(os.Args) == 4
	var sig chan os.Signal
	if wait {
		ppid := os.Getppid()
		sig = make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil || os.Getppid() != ppid {
			os.Exit(1) // the parent is already gone
		}
	}
	write(os.Args[1], os.Args[2], ts)
	if wait {
		<-sig
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
			write(os.Args[1], os.Args[2]+"-signalled", ts)
		}
	}
}

// write appends "event nanoseconds" to file, or exits with status 1.
func write(file, event string, ts unix.Timespec) {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		// One write of a short line to an O_APPEND file: lines never mix.
		_, err = fmt.Fprintf(f, "%s %d\n", event, ts.Nano())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stamp:", err)
		os.Exit(1)
	}
}
