// Package render keeps configuration files rendered from Go text/template
// templates current with the cluster: the original's render_config, kept up
// to date like consul-template.
//
// The controller renders every template before the role's init hook and
// again on every role or master change. A template's data is Data: the
// member's role and identity, the cluster's names, the master, the members
// and the environment.
//
// What is guaranteed:
//
//   - Every template is parsed by New, so a bad template is reported at
//     start-up, in one line naming the file and the line. A source is read
//     with internal/smallfile's limit: a device, a FIFO or a source over
//     1 MiB is an error, not a hang.
//   - A missing map key (for example .Env.UNSET) is an error, not "<no
//     value>"; the destination is then left as it was.
//   - A destination is replaced atomically (a temporary file in the same
//     folder, synced, then renamed over it): a reader sees the old content or
//     the new, never a mix. The file keeps the mode (and, when allowed, the
//     owner) of the file it replaces; a new file takes the source's mode.
//   - A destination whose content would not change is not touched, and its
//     reload command does not run. A reload command runs (with /bin/sh -c,
//     through internal/sys/proc) once after each change of its file; when it
//     fails, it runs again at the next Render even if the file did not
//     change again.
//
// What is not guaranteed: that several destinations change together (each
// is replaced on its own, in the order of the templates), or that the
// templates are reread after New (edits to a source need a restart).
package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/sys/proc"
	"github.com/ccctl/ccctl/internal/sys/smallfile"
)

// Template is one entry of the configuration's templates list.
type Template struct {
	// Source is the path of the text/template file.
	Source string `json:"source" yaml:"source" mapstructure:"source"`
	// Destination is the path of the rendered file.
	Destination string `json:"destination" yaml:"destination" mapstructure:"destination"`
	// Reload is a shell command run after the destination changed (none
	// when empty).
	Reload string `json:"reload" yaml:"reload" mapstructure:"reload"`
}

// Master is the master as templates see it.
type Master struct {
	// ID is the master's member id ("" when there is no master).
	ID string
	// Host is the master's host name.
	Host string
	// Address is the address other members use to reach the master.
	Address string
}

// Data is what a template is executed with.
type Data struct {
	// Role is this member's role: "master" or "slave".
	Role coordinator.Role
	// InstanceID is this member's id.
	InstanceID string
	// Environment and Service name the cluster.
	Environment string
	Service     string
	// Master is the current master (zero when none).
	Master Master
	// Token is the master's fencing token (0 when none is known).
	Token int64
	// Members are the cluster's member records, sorted by id.
	Members []coordinator.Member
	// Env is the environment; when nil, Render fills it from the process's
	// environment.
	Env map[string]string
}

// NewData builds Data from the cluster's state as the controller knows it:
// the member's own id and role, the leader and the member records. The
// master's host and address are looked up in members by the leader's id.
// Env is left nil (the process's environment).
func NewData(cluster coordinator.Cluster, id string, role coordinator.Role, leader coordinator.Leader, members []coordinator.Member) Data {
	d := Data{
		Role:        role,
		InstanceID:  id,
		Environment: cluster.Environment,
		Service:     cluster.Service,
		Master:      Master{ID: leader.ID},
		Token:       leader.Token,
		Members:     members,
	}
	for _, m := range members {
		if m.ID == leader.ID && leader.ID != "" {
			d.Master.Host, d.Master.Address = m.Host, m.Address
		}
	}
	return d
}

// Option configures a Renderer.
type Option func(*Renderer)

// WithLogger sets the logger (slog.Default() otherwise).
func WithLogger(l *slog.Logger) Option { return func(r *Renderer) { r.log = l } }

// WithReloadOutput sets where reload commands write their output
// (os.Stdout and os.Stderr otherwise).
func WithReloadOutput(stdout, stderr io.Writer) Option {
	return func(r *Renderer) { r.stdout, r.stderr = stdout, stderr }
}

// WithReloadGrace sets how long a reload command gets between SIGTERM and
// SIGKILL when Render's context is done (5s otherwise).
func WithReloadGrace(d time.Duration) Option { return func(r *Renderer) { r.grace = d } }

// Renderer renders a fixed list of templates. Its methods are safe for
// concurrent use; renders run one at a time. Make it with New.
type Renderer struct {
	log            *slog.Logger
	stdout, stderr io.Writer
	grace          time.Duration

	mu      sync.Mutex
	entries []*entry
}

type entry struct {
	Template
	tmpl    *template.Template
	pending bool // the reload failed and must run again
}

// New reads and parses every template. An error names the template's file
// (and, for a syntax error, the line) in one line.
func New(templates []Template, opts ...Option) (*Renderer, error) {
	r := &Renderer{log: slog.Default(), stdout: os.Stdout, stderr: os.Stderr, grace: 5 * time.Second}
	for _, o := range opts {
		o(r)
	}
	seen := make(map[string]string)
	for i, t := range templates {
		if t.Source == "" || t.Destination == "" {
			return nil, fmt.Errorf("template %d: source and destination are required", i+1)
		}
		dst := filepath.Clean(t.Destination)
		if prev, ok := seen[dst]; ok {
			return nil, fmt.Errorf("template %s: destination %s is also rendered from %s", t.Source, t.Destination, prev)
		}
		seen[dst] = t.Source
		text, err := smallfile.Read(t.Source, smallfile.DefaultLimit)
		if err != nil {
			return nil, fmt.Errorf("read template: %w", err)
		}
		tmpl, err := template.New(t.Source).Option("missingkey=error").Parse(string(text))
		if err != nil {
			// text/template says "template: NAME:LINE: what", NAME being
			// the source path: one line naming the file and the line.
			return nil, fmt.Errorf("parse %w", err)
		}
		if fi, err := os.Stat(filepath.Dir(dst)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("template %s: destination folder %s does not exist", t.Source, filepath.Dir(dst))
		}
		r.entries = append(r.entries, &entry{Template: t, tmpl: tmpl})
	}
	return r, nil
}

// Render renders every template with d, replaces the destinations whose
// content changed, and runs their reload commands (and those that failed
// before). It returns the destinations it replaced, in the order of the
// templates. It goes on after an error with the next template, and returns
// every error joined.
func (r *Renderer) Render(ctx context.Context, d Data) (changed []string, err error) {
	return r.render(ctx, d, true)
}

// RenderWithoutReload renders every template like Render but runs no reload
// command: for the first render, before the service has started. A reload
// is not remembered as due: the service reads the files when it starts.
func (r *Renderer) RenderWithoutReload(ctx context.Context, d Data) (changed []string, err error) {
	return r.render(ctx, d, false)
}

func (r *Renderer) render(ctx context.Context, d Data, reload bool) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.Env == nil {
		d.Env = environ()
	}
	var changed []string
	var errs []error
	for _, e := range r.entries {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("render %s: %w", e.Destination, err))
			break
		}
		did, err := e.write(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if did {
			changed = append(changed, e.Destination)
			r.log.Info("template rendered", "source", e.Source, "destination", e.Destination)
		}
		if !reload {
			continue
		}
		if (did || e.pending) && e.Reload != "" {
			if err := r.reload(ctx, e); err != nil {
				e.pending = true
				errs = append(errs, err)
				continue
			}
		}
		e.pending = false
	}
	return changed, errors.Join(errs...)
}

// write renders e into its destination if the content changed, and reports
// whether it did.
func (e *entry) write(d Data) (bool, error) {
	var buf bytes.Buffer
	if err := e.tmpl.Execute(&buf, d); err != nil {
		return false, fmt.Errorf("render %w", err)
	}
	old, err := os.ReadFile(e.Destination)
	if err == nil && bytes.Equal(old, buf.Bytes()) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("render %s: %w", e.Destination, err)
	}
	if err := writeAtomic(e.Destination, e.Source, buf.Bytes()); err != nil {
		return false, fmt.Errorf("render %s: %w", e.Destination, err)
	}
	return true, nil
}

// writeAtomic replaces dst with data through a synced temporary file in the
// same folder, keeping dst's mode and owner, or taking src's mode when dst
// does not exist.
func writeAtomic(dst, src string, data []byte) error {
	mode := fs.FileMode(0o644)
	uid, gid := -1, -1
	if fi, err := os.Stat(dst); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if fi, err := os.Stat(src); err == nil {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 && (uid != os.Getuid() || gid != os.Getgid()) {
		// Only root may give a file away; elsewhere the new file keeps
		// our owner, which is the best we can do.
		_ = f.Chown(uid, gid)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// reload runs e's reload command and waits for it.
func (r *Renderer) reload(ctx context.Context, e *entry) error {
	cmd := exec.Command("/bin/sh", "-c", e.Reload)
	cmd.Env = append(os.Environ(), "CC_TEMPLATE_SOURCE="+e.Source, "CC_TEMPLATE_DESTINATION="+e.Destination)
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	st, err := proc.Run(ctx, cmd, r.grace)
	if err != nil {
		return fmt.Errorf("reload %s: %w", e.Destination, err)
	}
	if err := st.Err(); err != nil {
		return fmt.Errorf("reload %s: %w", e.Destination, err)
	}
	r.log.Info("template reload ran", "destination", e.Destination)
	return nil
}

func environ() map[string]string {
	env := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}
