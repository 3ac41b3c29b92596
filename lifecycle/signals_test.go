package lifecycle_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/testutil"
)

// TestSignalsOfOwnSocketsNotForwarded: SIGPIPE, SIGXFSZ and SIGXCPU sent to
// ccctl (the signals its own sockets, pipes, files and limits raise) do not
// reach the service, whose default action for each would end it, and ccctl
// keeps running. A forwarded SIGWINCH sent after them is the barrier: Go
// delivers pending signals in the order of their numbers, lowest first, and
// the controller forwards them in the order it receives them.
func TestSignalsOfOwnSocketsNotForwarded(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGPIPE, syscall.SIGXFSZ, syscall.SIGXCPU} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			p := startCcctl(t, dir+"/svc.pid", fmt.Sprintf(`echo $$ > %[1]s/svc.pid; trap 'echo winch >> %[1]s/winch' WINCH; touch %[1]s/ready; while :; do sleep 0.01; done`, dir), 5*time.Second, 0)
			waitFile(t, dir+"/ready")
			for _, s := range []syscall.Signal{sig, syscall.SIGWINCH} {
				if err := p.cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
			}
			testutil.Eventually(t, waitTimeout, "the service's SIGWINCH trap, or ccctl's exit", func() bool {
				select {
				case <-p.done:
					return true
				default:
				}
				_, err := os.Stat(dir + "/winch")
				return err == nil
			})
			select {
			case <-p.done:
				t.Fatalf("ccctl exited with %d after %v; want it and its service to keep running", p.code, sig)
			default:
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := p.wait(t); code != 128+int(syscall.SIGTERM) {
				t.Errorf("ccctl exit code after SIGTERM: got %d; want %d (the service killed by SIGTERM, not by %v)", code, 128+int(syscall.SIGTERM), sig)
			}
		})
	}
}
