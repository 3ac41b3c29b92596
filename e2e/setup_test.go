//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The images the tests build, all labelled.
const (
	imageCcctl = "ccctl-e2e/ccctl:test"
	imageDemo  = "ccctl-e2e/demo:test"
	imageEtcd  = "ccctl-e2e/etcd:test"
)

// env is what every drill shares: the images, one private network and one
// 3-member etcd cluster. Each drill uses a service name of its own, so the
// drills do not see each other's members.
type env struct {
	network   string
	etcd      []string // container names, in member order
	endpoints string   // ETCD_ENDPOINTS for the replicas
	tmp       string
}

var shared struct {
	once    sync.Once
	ran     bool
	env     *env
	skipMsg string
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.ran {
		if err := removeLabelled(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: clean up:", err)
			code = 1
		}
		if os.Getenv("CCCTL_E2E_KEEP_IMAGES") != "1" {
			if err := removeImages(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: remove images:", err)
			}
		}
		if shared.env != nil {
			os.RemoveAll(shared.env.tmp)
		}
	}
	os.Exit(code)
}

// setup returns the shared environment, building it on first use. It skips
// the test when no engine is reachable (unless CCCTL_E2E_DOCKER=1) or the
// product cannot run the drills yet, and fails it when the set-up fails.
func setup(t *testing.T) *env {
	t.Helper()
	shared.once.Do(func() {
		start := time.Now()
		shared.env, shared.skipMsg, shared.err = build(t)
		if shared.skipMsg == "" && shared.err == nil {
			t.Logf("set-up (images, network, etcd cluster) took %v", time.Since(start).Round(time.Millisecond))
		}
	})
	if shared.skipMsg != "" {
		t.Skip(shared.skipMsg)
	}
	if shared.err != nil {
		t.Fatalf("set-up: %v", shared.err)
	}
	return shared.env
}

func build(t *testing.T) (*env, string, error) {
	if err := engineReachable(); err != nil {
		if requireDocker() {
			return nil, "", fmt.Errorf("CCCTL_E2E_DOCKER=1 but no Docker engine is reachable: %v", err)
		}
		return nil, "no Docker engine reachable (set CCCTL_E2E_DOCKER=1 to make this a failure): " + err.Error(), nil
	}
	root, err := repoRoot()
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "ccctl")); err != nil {
		return nil, "cmd/ccctl is not in this tree yet: nothing to drill", nil
	}
	shared.ran = true
	if err := removeLabelled(); err != nil {
		return nil, "", fmt.Errorf("remove leftovers of an earlier run: %w", err)
	}
	tmp, err := os.MkdirTemp("", "ccctl-e2e-")
	if err != nil {
		return nil, "", err
	}
	e := &env{tmp: tmp, network: namePrefix + "net"}
	if err := buildImages(t, root, tmp); err != nil {
		return e, "", err
	}
	if err := startEtcd(e); err != nil {
		return e, "", err
	}
	if msg, err := probe(e); msg != "" || err != nil {
		return e, msg, err
	}
	return e, "", nil
}

// probe runs one short-lived member against the etcd cluster. It returns a
// skip message when this build of ccctl says it cannot use etcd yet.
func probe(e *env) (string, error) {
	out, err := dockerTimed(90*time.Second, "run", "--rm", "--name", namePrefix+"probe", "--label", label+"=1",
		"--network", e.network, "--tmpfs", "/tmp",
		"-e", "ETCD_ENDPOINTS="+e.endpoints, "-e", "ENVIRONMENT=e2e", "-e", "SERVICE=probe",
		"-e", "CCCTL_INSTANCE_ID=probe", "-e", "CCCTL_TTL=3s",
		imageDemo, "true")
	if err != nil && strings.Contains(err.Error(), "not available in this build") {
		return "ccctl run with etcd is not available in this build yet: " + err.Error(), nil
	}
	if err != nil {
		return "", fmt.Errorf("probe member (ccctl run -- true against the etcd cluster): %v\n%s", err, out)
	}
	return "", nil
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the ccctl module")
	}
	return filepath.Dir(mod), nil
}

// goBuild builds a static binary of pkg (relative to root) into out.
func goBuild(root, pkg, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func buildImages(t *testing.T, root, tmp string) error {
	// The ccctl image, from the repository's Dockerfile, with the context it
	// documents (bin/ccctl).
	ccctlCtx := filepath.Join(tmp, "ccctl")
	if err := goBuild(root, "./cmd/ccctl", filepath.Join(ccctlCtx, "bin", "ccctl")); err != nil {
		return err
	}
	if err := dockerBuild(imageCcctl, filepath.Join(root, "Dockerfile"), ccctlCtx); err != nil {
		return err
	}

	// The demo image on top of it.
	demoCtx := filepath.Join(tmp, "demo")
	if err := goBuild(root, "./e2e/demo", filepath.Join(demoCtx, "demo")); err != nil {
		return err
	}
	bb, err := staticBusybox(tmp)
	if err != nil {
		return err
	}
	if err := copyFile(bb, filepath.Join(demoCtx, "busybox"), 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(root, "e2e", "testdata", "ccctl.yaml"), filepath.Join(demoCtx, "ccctl.yaml"), 0o644); err != nil {
		return err
	}
	if err := dockerBuild(imageDemo, filepath.Join(root, "e2e", "testdata", "demo.Dockerfile"), demoCtx, "--build-arg", "BASE="+imageCcctl); err != nil {
		return err
	}

	// The etcd image: Debian's etcd and etcdctl with what ldd says they load.
	etcdCtx := filepath.Join(tmp, "etcd")
	etcdBin := os.Getenv("CCCTL_ETCD_BINARY")
	if etcdBin == "" {
		if etcdBin, err = exec.LookPath("etcd"); err != nil {
			return fmt.Errorf("no etcd binary (install Debian's etcd-server or set CCCTL_ETCD_BINARY): %v", err)
		}
	}
	bins := []string{etcdBin}
	if ctl, err := exec.LookPath("etcdctl"); err == nil {
		bins = append(bins, ctl)
	} else {
		return fmt.Errorf("no etcdctl (install Debian's etcd-client): %v", err)
	}
	for i, b := range bins {
		dst := filepath.Join(etcdCtx, "rootfs", "usr", "bin", []string{"etcd", "etcdctl"}[i])
		if err := copyFile(b, dst, 0o755); err != nil {
			return err
		}
		libs, err := sharedLibs(b)
		if err != nil {
			return err
		}
		for _, l := range libs {
			if err := copyFile(l, filepath.Join(etcdCtx, "rootfs", l), 0o755); err != nil {
				return err
			}
		}
	}
	t.Logf("etcd image from %s", etcdBin)
	return dockerBuild(imageEtcd, filepath.Join(root, "e2e", "testdata", "etcd.Dockerfile"), etcdCtx)
}

func dockerBuild(tag, dockerfile, dir string, args ...string) error {
	a := append([]string{"build", "-q", "--label", label + "=1", "-t", tag, "-f", dockerfile}, args...)
	_, err := dockerTimed(5*time.Minute, append(a, dir)...)
	return err
}

// sharedLibs returns the absolute paths of the shared libraries bin loads,
// the dynamic loader included, as ldd prints them.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs, nil
}

// staticBusybox finds a statically linked busybox: CCCTL_E2E_BUSYBOX, the
// host's own, or one extracted from Debian's busybox-static package.
func staticBusybox(tmp string) (string, error) {
	if p := os.Getenv("CCCTL_E2E_BUSYBOX"); p != "" {
		return p, nil
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStatic(p) {
			return p, nil
		}
	}
	dir := filepath.Join(tmp, "busybox-static")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dl := exec.CommandContext(ctx, "apt-get", "download", "busybox-static")
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("no static busybox on this host, and apt-get download busybox-static: %v: %s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "busybox-static_*.deb"))
	if len(debs) == 0 {
		return "", errors.New("apt-get download busybox-static: no .deb file")
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, out)
	}
	p := filepath.Join(root, "bin", "busybox")
	if !isStatic(p) {
		return "", fmt.Errorf("%s: not a static executable", p)
	}
	return p, nil
}

// isStatic reports whether path is an ELF executable with no interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// startEtcd creates the private network and a 3-member etcd cluster on it,
// and waits until every member is healthy.
func startEtcd(e *env) error {
	if _, err := docker("network", "create", "--label", label+"=1", e.network); err != nil {
		return err
	}
	var initial, eps []string
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("etcd%d", i)
		initial = append(initial, fmt.Sprintf("%s=http://%s:2380", n, n))
		eps = append(eps, fmt.Sprintf("http://%s:2379", n))
	}
	e.endpoints = strings.Join(eps, ",")
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("etcd%d", i)
		c := namePrefix + n
		_, err := docker("create", "--name", c, "--hostname", n, "--label", label+"=1",
			"--network", e.network, "--network-alias", n, imageEtcd,
			"--name", n, "--data-dir", "/data/"+n,
			"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://"+n+":2379",
			"--listen-peer-urls", "http://0.0.0.0:2380", "--initial-advertise-peer-urls", "http://"+n+":2380",
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "ccctl-e2e")
		if err != nil {
			return err
		}
		e.etcd = append(e.etcd, c)
	}
	if _, err := docker(append([]string{"start"}, e.etcd...)...); err != nil {
		return err
	}
	return e.waitEtcdHealthy(60 * time.Second)
}

// waitEtcdHealthy waits until every etcd member answers as healthy.
func (e *env) waitEtcdHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		// etcdctl endpoint health exits non-zero when any member is not
		// healthy; it reports on stderr.
		out, err := e.etcdctl("endpoint", "health", "--cluster")
		if err == nil {
			return nil
		}
		last = fmt.Errorf("%v: %s", err, out)
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	var logs bytes.Buffer
	for _, c := range e.etcd {
		l, _ := dockerLogs(c, 20)
		fmt.Fprintf(&logs, "--- %s\n%s\n", c, l)
	}
	return fmt.Errorf("etcd cluster not healthy after %v: %v\n%s", timeout, last, logs.String())
}

// etcdctl runs etcdctl in the first running etcd member.
func (e *env) etcdctl(args ...string) (string, error) {
	var lastErr error
	for _, c := range e.etcd {
		out, err := dockerTimed(20*time.Second, append([]string{"exec", c, "etcdctl", "--command-timeout=5s"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "is not running") {
			return out, err
		}
		lastErr = err
	}
	return "", lastErr
}

// dockerLogs returns the last n lines of a container's output.
func dockerLogs(container string, n int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", "--timestamps", "--tail", fmt.Sprint(n), container).CombinedOutput()
	return string(out), err
}
