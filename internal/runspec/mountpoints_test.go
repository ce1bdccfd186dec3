package runspec

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountpointsFit(t *testing.T) {
	dir := func(t *testing.T, entries map[string]string) string {
		d := t.TempDir()
		for name, kind := range entries {
			p := filepath.Join(d, name)
			var err error
			switch kind {
			case "dir":
				err = os.Mkdir(p, 0o755)
			case "symlink":
				err = os.Symlink("usr/"+name, p)
			case "whiteout":
				err = unix.Mknod(p, unix.S_IFCHR, 0)
			}
			if err != nil {
				t.Skip("SKIP: cannot make a", kind, "here:", err)
			}
		}
		return d
	}
	for _, c := range []struct {
		name   string
		layers []map[string]string // top first
		want   bool
	}{
		{"empty image", []map[string]string{{}}, true},
		{"directories", []map[string]string{{"etc": "dir", "dev": "dir"}}, true},
		{"/etc a symlink", []map[string]string{{"etc": "symlink"}}, false},
		{"a symlink under a directory", []map[string]string{{"etc": "dir"}, {"etc": "symlink"}}, true},
		{"a directory under a symlink", []map[string]string{{"etc": "symlink"}, {"etc": "dir"}}, false},
		{"a symlink whited out", []map[string]string{{"etc": "whiteout"}, {"etc": "symlink"}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var layers []string
			for _, l := range c.layers {
				layers = append(layers, dir(t, l))
			}
			if got := MountpointsFit(layers); got != c.want {
				t.Errorf("MountpointsFit = %v, want %v", got, c.want)
			}
		})
	}
}
