//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/testkit/docstest"
)

// TestContainersDocBuildsTheImage runs the sh blocks of docs/containers.md
// (build the binary, build the image, run it) exactly as written, in a copy
// of the repository as a fresh clone has it: no bin/.
func TestContainersDocBuildsTheImage(t *testing.T) {
	if err := engineReachable(); err != nil {
		if requireDocker() {
			t.Fatalf("CCCTL_E2E_DOCKER=1 but no Docker engine: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	root, _ := filepath.Abs("..")
	blocks := docstest.Blocks(t, filepath.Join(root, "docs", "containers.md"), "", "")
	if len(blocks) == 0 {
		t.Fatal("docs/containers.md: no sh blocks")
	}
	dir := docstest.Copy(t, root)
	t.Cleanup(func() { docker("rmi", "ccctl") }) // the tag the guide builds
	out := docstest.Run(t, dir, strings.Join(blocks, ""), 5*time.Minute)
	if !strings.Contains(out, "ccctl v1.2.3 go") {
		t.Errorf("docker run --rm ccctl version: got %q; want ccctl v1.2.3 go...", out)
	}
}
