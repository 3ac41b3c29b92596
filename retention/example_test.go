package retention_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ccctl/ccctl/retention"
)

func ExampleRunBackup() {
	dest, err := os.MkdirTemp("", "backups")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dest)

	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		res, err := retention.RunBackup(context.Background(), retention.BackupOptions{
			Destination: dest,
			Name:        "db",
			Ext:         ".sql",
			Command:     []string{"/bin/sh", "-c", "echo 'CREATE TABLE t (id int);'"},
			Policy:      retention.Policy{Daily: 2},
			Now:         func() time.Time { return now },
			Logger:      quietLogger(),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("stored", res.Backup.File, "removed", len(res.Plan.Remove))
		now = now.AddDate(0, 0, 1)
	}
	backups, _ := retention.List(dest, "db")
	for _, b := range backups {
		fmt.Println("have", b.File)
	}
	// Output:
	// stored db-20260301T020000Z.sql removed 0
	// stored db-20260302T020000Z.sql removed 0
	// stored db-20260303T020000Z.sql removed 1
	// have db-20260303T020000Z.sql
	// have db-20260302T020000Z.sql
}
