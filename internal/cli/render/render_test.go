package render_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/render"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reloadCounter returns a reload command that appends a line to a file, and
// a function that counts the lines.
func reloadCounter(t *testing.T) (string, func() int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reloads")
	return "echo \"$CC_TEMPLATE_DESTINATION\" >> " + path, func() int {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte("\n"))
	}
}

func newRenderer(t *testing.T, ts ...render.Template) *render.Renderer {
	t.Helper()
	r, err := render.New(ts, render.WithReloadOutput(io.Discard, io.Discard),
		render.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func data(master string) render.Data {
	members := []coordinator.Member{
		{ID: "db-1", Host: "h1", Address: "10.0.0.1", Role: coordinator.RoleMaster, State: coordinator.StateActive},
		{ID: "db-2", Host: "h2", Address: "10.0.0.2", Role: coordinator.RoleSlave, State: coordinator.StateRunning},
	}
	d := render.NewData(coordinator.Cluster{Environment: "prod", Service: "db"}, "db-2", coordinator.RoleSlave,
		coordinator.Leader{ID: master, Token: 7}, members)
	d.Env = map[string]string{"PGPORT": "5432"}
	return d
}

func TestRenderData(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "conf.tmpl"), filepath.Join(dir, "conf")
	writeFile(t, src, `role={{.Role}} id={{.InstanceID}} cluster={{.Environment}}/{{.Service}}
{{if eq .Role "slave"}}primary_conninfo='host={{.Master.Address}} port={{.Env.PGPORT}}' # {{.Master.ID}}@{{.Master.Host}} token {{.Token}}{{end}}
{{range .Members}}{{.ID}}:{{.State}} {{end}}`, 0o644)
	r := newRenderer(t, render.Template{Source: src, Destination: dst})
	changed, err := r.Render(testContext(t), data("db-1"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{dst}; !slices.Equal(changed, want) {
		t.Errorf("changed = %v; want %v", changed, want)
	}
	want := `role=slave id=db-2 cluster=prod/db
primary_conninfo='host=10.0.0.1 port=5432' # db-1@h1 token 7
db-1:active db-2:running `
	if got := readFile(t, dst); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

func TestNewReportsBadTemplateInOneLine(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bad.tmpl")
	writeFile(t, src, "line 1\nline 2\n{{if .Role}}never closed\n", 0o644)
	_, err := render.New([]render.Template{{Source: src, Destination: filepath.Join(dir, "out")}})
	if err == nil {
		t.Fatal("New = nil error; want a parse error")
	}
	msg := err.Error()
	if !strings.Contains(msg, src+":") || strings.Contains(msg, "\n") {
		t.Errorf("error = %q; want one line naming %s", msg, src)
	}
	if !strings.Contains(msg, src+":3:") && !strings.Contains(msg, src+":4:") {
		t.Errorf("error = %q; want the line of the unclosed action", msg)
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tmpl")
	writeFile(t, good, "x", 0o644)
	tests := []struct {
		name string
		ts   []render.Template
		want string
	}{
		{"no source", []render.Template{{Destination: filepath.Join(dir, "a")}}, "source and destination are required"},
		{"no destination", []render.Template{{Source: good}}, "source and destination are required"},
		{"missing source", []render.Template{{Source: filepath.Join(dir, "nope"), Destination: filepath.Join(dir, "a")}}, "read template"},
		{"endless source", []render.Template{{Source: "/dev/zero", Destination: filepath.Join(dir, "a")}}, "not a regular file"},
		{"source is a folder", []render.Template{{Source: dir, Destination: filepath.Join(dir, "a")}}, "not a regular file"},
		{"missing folder", []render.Template{{Source: good, Destination: filepath.Join(dir, "no", "a")}}, "does not exist"},
		{"same destination twice", []render.Template{
			{Source: good, Destination: filepath.Join(dir, "a")},
			{Source: good, Destination: filepath.Join(dir, ".", "a")},
		}, "also rendered from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render.New(tt.ts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestMissingKeyIsErrorAndLeavesFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "t"), filepath.Join(dir, "out")
	writeFile(t, src, "port={{.Env.UNSET}}\n", 0o644)
	writeFile(t, dst, "previous\n", 0o644)
	r := newRenderer(t, render.Template{Source: src, Destination: dst})
	changed, err := r.Render(testContext(t), data("db-1"))
	if err == nil || !strings.Contains(err.Error(), "UNSET") || !strings.Contains(err.Error(), src) {
		t.Errorf("Render error = %v; want one naming the key UNSET and %s", err, src)
	}
	if len(changed) != 0 {
		t.Errorf("changed = %v; want none", changed)
	}
	if got := readFile(t, dst); got != "previous\n" {
		t.Errorf("destination = %q; want %q (untouched)", got, "previous\n")
	}
}

func TestReloadRunsOnlyWhenOutputChanged(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "t"), filepath.Join(dir, "out")
	writeFile(t, src, "master={{.Master.Address}}\n", 0o644)
	reload, reloads := reloadCounter(t)
	r := newRenderer(t, render.Template{Source: src, Destination: dst, Reload: reload})
	ctx := testContext(t)

	steps := []struct {
		master      string
		wantChanged bool
		wantReloads int
	}{
		{"db-1", true, 1},
		{"db-1", false, 1}, // same master: same output, no reload
		{"db-2", true, 2},  // new master: new output, reload
		{"db-2", false, 2},
	}
	for i, s := range steps {
		changed, err := r.Render(ctx, data(s.master))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := len(changed) == 1; got != s.wantChanged {
			t.Errorf("step %d: changed = %v; want changed %v", i, changed, s.wantChanged)
		}
		if got := reloads(); got != s.wantReloads {
			t.Errorf("step %d: reloads = %d; want %d", i, got, s.wantReloads)
		}
	}
	if got, want := readFile(t, dst), "master=10.0.0.2\n"; got != want {
		t.Errorf("destination = %q; want %q", got, want)
	}
}

func TestFailedReloadRunsAgain(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "t"), filepath.Join(dir, "out")
	flag := filepath.Join(dir, "service-up")
	writeFile(t, src, "master={{.Master.ID}}\n", 0o644)
	reload, reloads := reloadCounter(t)
	r := newRenderer(t, render.Template{Source: src, Destination: dst, Reload: reload + " && test -f " + flag})
	ctx := testContext(t)

	if _, err := r.Render(ctx, data("db-1")); err == nil || !strings.Contains(err.Error(), "reload "+dst) {
		t.Fatalf("Render error = %v; want a reload failure naming %s", err, dst)
	}
	writeFile(t, flag, "", 0o644)
	changed, err := r.Render(ctx, data("db-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 0 {
		t.Errorf("changed = %v; want none (same output)", changed)
	}
	if got := reloads(); got != 2 {
		t.Errorf("reloads = %d; want 2 (the failed one is run again)", got)
	}
	if _, err := r.Render(ctx, data("db-1")); err != nil {
		t.Fatal(err)
	}
	if got := reloads(); got != 2 {
		t.Errorf("reloads = %d; want still 2 after a successful reload", got)
	}
}

func TestRenderWithoutReload(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "t"), filepath.Join(dir, "out")
	writeFile(t, src, "{{.Role}}\n", 0o644)
	reload, reloads := reloadCounter(t)
	r := newRenderer(t, render.Template{Source: src, Destination: dst, Reload: reload})
	changed, err := r.RenderWithoutReload(testContext(t), data("db-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || reloads() != 0 {
		t.Errorf("changed = %v, reloads = %d; want the file written and no reload", changed, reloads())
	}
	if _, err := r.Render(testContext(t), data("db-1")); err != nil {
		t.Fatal(err)
	}
	if got := reloads(); got != 0 {
		t.Errorf("reloads = %d; want 0: the first render's output is not a change to reload", got)
	}
}

func TestKeepsModeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "t")
	existing, fresh := filepath.Join(dir, "existing"), filepath.Join(dir, "fresh")
	writeFile(t, src, "{{.InstanceID}}\n", 0o640)
	writeFile(t, existing, "old\n", 0o600)
	r := newRenderer(t,
		render.Template{Source: src, Destination: existing},
		render.Template{Source: src, Destination: fresh},
	)
	changed, err := r.Render(testContext(t), data("db-1"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{existing, fresh}; !slices.Equal(changed, want) {
		t.Errorf("changed = %v; want %v", changed, want)
	}
	for path, want := range map[string]os.FileMode{existing: 0o600, fresh: 0o640} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v; want %v", filepath.Base(path), got, want)
		}
		if got := readFile(t, path); got != "db-2\n" {
			t.Errorf("%s = %q; want %q", filepath.Base(path), got, "db-2\n")
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"existing", "fresh", "t"}; !slices.Equal(names, want) {
		t.Errorf("folder holds %v; want %v (no temporary file left)", names, want)
	}
}
