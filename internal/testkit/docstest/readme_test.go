package docstest_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/docstest"
)

// TestReadmeQuickStart runs the quick start of README.md as written, in a
// copy of the repository, and checks what the text says it shows.
func TestReadmeQuickStart(t *testing.T) {
	for _, port := range []string{"2379", "2380"} {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("the quick start needs the port %s free: %v", port, err)
		}
		l.Close()
	}
	root, _ := filepath.Abs("../../..")
	blocks := docstest.Blocks(t, filepath.Join(root, "README.md"), "<!-- BEGIN quick start -->", "<!-- END quick start -->")
	if len(blocks) < 4 {
		t.Fatalf("README.md quick start: got %d sh blocks; want at least 4", len(blocks))
	}
	dir := docstest.Copy(t, root)
	out := docstest.Run(t, dir, strings.Join(blocks, ""), 4*time.Minute)
	for _, want := range []string{"web1\n", "master*", "refused web1 token", "is master (token"} {
		if !strings.Contains(out, want) {
			t.Errorf("quick start output: no %q in\n%s", want, out)
		}
	}
	if st := docstest.Git(t, dir, "status", "--porcelain"); st != "" {
		t.Errorf("the quick start left files git does not ignore:\n%s", st)
	}
}
