package runspec

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestMountpointsFor(t *testing.T) {
	layer := func(t *testing.T, entries map[string]string) string {
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
	all := &specs.Spec{Mounts: []specs.Mount{{Destination: "/proc"}, {Destination: "/dev"}, {Destination: "/sys"},
		{Destination: "/etc/hosts"}, {Destination: "/etc/hostname"}, {Destination: "/etc/resolv.conf"}}}
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
				layers = append(layers, layer(t, l))
			}
			if _, got := MountpointsFor(layers, all); got != c.want {
				t.Errorf("MountpointsFor = %v, want %v", got, c.want)
			}
		})
	}
}

// The layer holds the network files the spec binds, no others (a container joining another's
// network gets no /etc/hostname bound: the image's must show), and /etc as the image has it.
func TestMountpointsForFollowsSpec(t *testing.T) {
	img := t.TempDir()
	if err := os.Mkdir(filepath.Join(img, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(img, "etc"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(img, "etc"), 1000, 1000)
	spec := &specs.Spec{Mounts: []specs.Mount{{Destination: "/proc"}, {Destination: "/etc/hosts"}}}
	mp, ok := MountpointsFor([]string{img}, spec)
	if !ok || !slices.Equal(mp.Dirs, []string{"proc", "etc"}) || !slices.Equal(mp.Files, []string{"etc/hosts"}) {
		t.Fatalf("MountpointsFor = %+v, %v", mp, ok)
	}
	a := mp.Like["etc"]
	st, _ := a.Sys().(*syscall.Stat_t)
	if a.Mode()&(fs.ModePerm|fs.ModeSticky) != 0o777|fs.ModeSticky || (os.Geteuid() == 0 && (st.Uid != 1000 || st.Gid != 1000)) {
		t.Errorf("etc attributes %v %d:%d, want the image's 1777 1000:1000", a.Mode(), st.Uid, st.Gid)
	}
	if _, ok := MountpointsFor([]string{img}, &specs.Spec{}); ok {
		t.Error("a spec without mounts got a mountpoints layer")
	}
}
