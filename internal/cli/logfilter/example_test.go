package logfilter_test

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/ccctl/ccctl/internal/cli/logfilter"
	"github.com/ccctl/ccctl/internal/sys/proc"
)

// A service's health-check lines are dropped from its output.
func ExampleFilter() {
	re, err := logfilter.Compile(`GET /health`)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := logfilter.New(os.Stdout, re, logfilter.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	cmd := exec.Command("/bin/sh", "-c", `echo "GET /health 200"; echo "GET /orders 200"; echo "GET /health 200"`)
	cmd.Stdout = f
	p, err := proc.Start(cmd)
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Wait()
	f.Close() // flushes what is queued
	fmt.Println("suppressed:", f.Stats().Suppressed)
	// Output:
	// GET /orders 200
	// suppressed: 2
}
