package render_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ccctl/ccctl/coordinator"
	"github.com/ccctl/ccctl/internal/cli/render"
)

// A replica's configuration points at the current master.
func ExampleRenderer_Render() {
	dir, err := os.MkdirTemp("", "render-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "replica.conf.tmpl")
	dst := filepath.Join(dir, "replica.conf")
	tmpl := `{{if eq .Role "slave"}}primary_conninfo = 'host={{.Master.Address}} port={{.Env.PGPORT}}'{{end}}` + "\n"
	if err := os.WriteFile(src, []byte(tmpl), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	r, err := render.New([]render.Template{{Source: src, Destination: dst}},
		render.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	members := []coordinator.Member{
		{ID: "db-1", Address: "10.0.0.1", Role: coordinator.RoleMaster},
		{ID: "db-2", Address: "10.0.0.2", Role: coordinator.RoleSlave},
	}
	d := render.NewData(coordinator.Cluster{Environment: "prod", Service: "db"}, "db-2",
		coordinator.RoleSlave, coordinator.Leader{ID: "db-1", Token: 3}, members)
	d.Env = map[string]string{"PGPORT": "5432"}

	changed, err := r.Render(context.Background(), d)
	fmt.Println(len(changed), err)
	b, _ := os.ReadFile(dst)
	fmt.Print(string(b))
	changed, err = r.Render(context.Background(), d)
	fmt.Println(len(changed), err)
	// Output:
	// 1 <nil>
	// primary_conninfo = 'host=10.0.0.1 port=5432'
	// 0 <nil>
}
