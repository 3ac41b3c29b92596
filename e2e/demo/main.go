// Command demo is the service and the hook helper inside the image that the
// end-to-end drills run under ccctl. It is test scaffolding, not product.
//
//	demo mark EVENT   append "<unix-nanos> <member> EVENT <token>" to the timeline
//	demo serve        the demo service: marks service_started, listens on
//	                  DEMO_ADDR (default :8080) and, while its member is master,
//	                  writes to the fenced store every DEMO_WRITE_EVERY (200ms),
//	                  marking write_ok on a new token and then once a second,
//	                  and write_stale on every refused write;
//	                  on SIGTERM or SIGINT marks service_stopped and exits 0
//
// Every container of a drill shares the timeline folder (TIMELINE_DIR,
// default /timeline) through a volume. Containers on one host share the
// kernel's clock, so the timestamps of different members can be compared.
//
// Hooks are run by ccctl with CC_EVENT, CC_ROLE and CC_FENCING_TOKEN in their
// environment; "demo mark" records the role and token it was given in a state
// file inside the container, which the service reads to know whether it is
// master and with which token it writes.
//
// The store is the fencing check a real downstream system would make: a write
// is accepted (write_ok) only when its token is at least the highest token
// written to the store before it, and refused (write_stale) otherwise.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const stateFile = "/tmp/demo-role"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demo mark EVENT | demo serve")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "mark":
		if len(os.Args) != 3 {
			err = errors.New("usage: demo mark EVENT")
			break
		}
		err = markHook(os.Args[2])
	case "serve":
		err = serve()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func timelineDir() string {
	if d := os.Getenv("TIMELINE_DIR"); d != "" {
		return d
	}
	return "/timeline"
}

func memberID() string {
	if id := os.Getenv("CC_INSTANCE_ID"); id != "" {
		return id
	}
	if id := os.Getenv("CCCTL_INSTANCE_ID"); id != "" {
		return id
	}
	h, _ := os.Hostname()
	return h
}

// mark appends one line to the timeline. Lines are short and written with
// one write(2) on an O_APPEND file, so lines of different members never mix.
func mark(event, token string) error {
	if token == "" {
		token = "-"
	}
	line := fmt.Sprintf("%d %s %s %s\n", time.Now().UnixNano(), memberID(), event, token)
	f, err := os.OpenFile(filepath.Join(timelineDir(), "events"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// markHook records a hook: the timeline line, and the role and token the
// hook was given, for the service to read.
func markHook(event string) error {
	token := os.Getenv("CC_FENCING_TOKEN")
	if role := os.Getenv("CC_ROLE"); role != "" {
		if err := os.WriteFile(stateFile+".tmp", []byte(role+" "+token), 0o644); err != nil {
			return err
		}
		if err := os.Rename(stateFile+".tmp", stateFile); err != nil {
			return err
		}
	}
	return mark(event, token)
}

// role returns the role and token recorded by the last hook.
func role() (string, string) {
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return "", ""
	}
	f := strings.Fields(string(b))
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return f[0], ""
	default:
		return f[0], f[1]
	}
}

func serve() error {
	_, token := role()
	if err := mark("service_started", token); err != nil {
		return err
	}
	addr := os.Getenv("DEMO_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	every := 200 * time.Millisecond
	if s := os.Getenv("DEMO_WRITE_EVERY"); s != "" {
		if every, err = time.ParseDuration(s); err != nil {
			return err
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(every)
	defer tick.Stop()
	accepted := ""       // the last token the store accepted from this member
	var marked time.Time // when the last write_ok was marked
	for {
		select {
		case <-sigs:
			ln.Close()
			_, token := role()
			return mark("service_stopped", token)
		case <-tick.C:
			r, token := role()
			if r != "master" {
				continue
			}
			ok, err := write(token)
			if err != nil {
				return err
			}
			switch {
			case !ok:
				err = mark("write_stale", token)
			case token != accepted || time.Since(marked) >= time.Second:
				accepted, marked = token, time.Now()
				err = mark("write_ok", token)
			}
			if err != nil {
				return err
			}
		}
	}
}

// write is one write to the fenced store: accepted when token is at least
// every token written before it. The store is a log that every writer
// appends one line to (one write(2) on an O_APPEND file, so the kernel
// orders the writes) and then reads back to find its line: no writer holds a
// lock, so a frozen writer (docker pause) cannot block the others.
func write(token string) (bool, error) {
	n, err := strconv.ParseInt(token, 10, 64)
	if err != nil {
		return false, fmt.Errorf("fencing token %q: %w", token, err)
	}
	path := filepath.Join(timelineDir(), "store.log")
	line := fmt.Sprintf("%d %s %d\n", n, memberID(), time.Now().UnixNano())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return false, err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	i := strings.Index(string(b), line)
	if i < 0 {
		return false, fmt.Errorf("store: own write %q not found", strings.TrimSpace(line))
	}
	for _, l := range strings.Split(string(b[:i]), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if t, err := strconv.ParseInt(f[0], 10, 64); err == nil && t > n {
			return false, nil
		}
	}
	return true, nil
}
