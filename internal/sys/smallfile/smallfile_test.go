package smallfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccctl/ccctl/internal/sys/smallfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       string // "" for success
		is         error
	}{
		{"regular", small, "", nil},
		{"symlink to regular", link, "", nil},
		{"too large", big, "larger than the limit of 100 bytes", smallfile.ErrTooLarge},
		{"endless device", "/dev/zero", "not a regular file (a character device)", smallfile.ErrNotRegular},
		{"fifo without writer", fifo, "not a regular file (a FIFO)", smallfile.ErrNotRegular},
		{"directory", dir, "not a regular file (a directory)", smallfile.ErrNotRegular},
		{"missing", filepath.Join(dir, "none"), "no such file or directory", fs.ErrNotExist},
		{"newline in path", dir + "/a\nb", `a\nb": no such file or directory`, fs.ErrNotExist},
		{"huge path", "/" + strings.Repeat("x", 5000), `xxx"...: file name too long`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var data []byte
			var err error
			go func() {
				defer close(done)
				data, err = smallfile.Read(tt.path, 100)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Read(%q): no return after 10s; want an answer at once", tt.path)
			}
			if tt.want == "" {
				if err != nil || string(data) != "hello\n" {
					t.Fatalf("Read: got %q, %v; want the file's content", data, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Read: got no error; want %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || len(msg) > 300 {
				t.Errorf("error: got %q; want one short line containing %q", msg, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v): got false; want true", err, tt.is)
			}
		})
	}
}
