package config_test

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ccctl/ccctl/internal/cli/config"
)

var update = flag.Bool("update", false, "rewrite the configuration reference in README.md from the code")

const (
	readme    = "../../../README.md"
	beginMark = "<!-- BEGIN configuration reference -->"
	endMark   = "<!-- END configuration reference -->"
)

// referenceTable renders the reference as README.md shows it.
func referenceTable() string {
	var b strings.Builder
	b.WriteString("| key (YAML) | environment | flag | default | meaning |\n|---|---|---|---|---|\n")
	code := func(ss []string, suffix string) string {
		if len(ss) == 0 {
			return "—"
		}
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = "`" + s + suffix + "`"
		}
		return strings.Join(out, ", ")
	}
	for _, s := range config.Settings() {
		env := code(s.Env, "")
		if s.Secret {
			env += " (or " + code(s.Env, "_FILE") + ")"
		}
		fl := "—"
		if s.Flag() != "" {
			fl = "`--" + s.Flag() + "`"
		}
		if s.Key == config.KeyConfig {
			fl = "`--config`"
		}
		b.WriteString("| `" + s.Key + "` | " + env + " | " + fl + " | " + s.DocDefault() + " | " + s.Help + " |\n")
	}
	for _, k := range config.YAMLKeys() {
		b.WriteString("| `" + k.Key + "` | — | — | " + k.DefaultDoc + " | " + k.Help + " |\n")
	}
	return b.String()
}

// row is one row of the README's reference.
type row struct{ key, env, flag, def string }

var cell = regexp.MustCompile("`([^`]+)`")

func readReference(t *testing.T) (before, table, after string) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	s := string(b)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		t.Fatalf("README.md: want the markers %q and %q around the configuration reference", beginMark, endMark)
	}
	return s[:i+len(beginMark)], s[i+len(beginMark) : j], s[j:]
}

func parseRows(table string) map[string]row {
	rows := map[string]row{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(line, " | ")
		if len(cols) < 5 {
			continue
		}
		key := strings.Trim(strings.TrimPrefix(cols[0], "| "), "`")
		rows[key] = row{key: key, env: cols[1], flag: cols[2], def: cols[3]}
	}
	return rows
}

// TestREADMEReference checks that every setting in the code is in the
// README's configuration reference with its environment variables, flag and
// default, and that the reference names nothing the code does not know.
// Run it with -update to rewrite the reference from the code.
func TestREADMEReference(t *testing.T) {
	before, table, after := readReference(t)
	want := referenceTable()
	if *update {
		intro := table
		if k := strings.Index(intro, "| key (YAML)"); k >= 0 {
			intro = intro[:k]
		}
		if err := os.WriteFile(readme, []byte(before+intro+want+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := parseRows(table)
	wantRows := parseRows(want)
	for key, w := range wantRows {
		g, ok := got[key]
		if !ok {
			t.Errorf("README reference: setting %q missing; want a row %q", key, w)
			continue
		}
		if g.env != w.env {
			t.Errorf("README reference %s: environment got %s; want %s", key, g.env, w.env)
		}
		if g.flag != w.flag {
			t.Errorf("README reference %s: flag got %s; want %s", key, g.flag, w.flag)
		}
		if g.def != w.def {
			t.Errorf("README reference %s: default got %s; want %s", key, g.def, w.def)
		}
	}
	for key := range got {
		if _, ok := wantRows[key]; !ok {
			t.Errorf("README reference: row %q is unknown to the code; want it removed or added to config.Settings", key)
		}
	}
	// Every environment variable named anywhere in the reference is one the
	// code reads.
	known := map[string]bool{}
	for _, s := range config.Settings() {
		for _, e := range s.Env {
			known[e] = true
			if s.Secret {
				known[e+"_FILE"] = true
			}
		}
	}
	for _, m := range cell.FindAllStringSubmatch(table, -1) {
		if v := m[1]; regexp.MustCompile(`^(CCCTL|ETCD|BACKUP)_[A-Z_]+$`).MatchString(v) && !known[v] {
			t.Errorf("README reference names %s; want only variables the code reads", v)
		}
	}
}

// TestREADMEExample checks that the YAML example of the reference loads.
func TestREADMEExample(t *testing.T) {
	_, table, _ := readReference(t)
	i := strings.Index(table, "```yaml\n")
	if i < 0 {
		t.Fatalf("README reference: want a yaml example")
	}
	rest := table[i+len("```yaml\n"):]
	example := rest[:strings.Index(rest, "```")]
	clearEnv(t)
	t.Setenv("CCCTL_CONFIG", writeFile(t, example))
	c, err := config.Load(nil)
	if err != nil {
		t.Fatalf("Load the README's example: %v", err)
	}
	if c.Cluster.String() != "production/postgres" || len(c.Hooks) != 3 || len(c.Jobs) != 1 {
		t.Errorf("got cluster %s, %d hooks, %d jobs; want production/postgres, 3, 1", c.Cluster, len(c.Hooks), len(c.Jobs))
	}
}
