package layer

import (
	"io/fs"
	"strings"
	"testing"
)

func paths(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Path)
	}
	return out
}

func TestPlanSortsAndAddsParents(t *testing.T) {
	planned, err := Plan([]Entry{
		{Path: "/usr/bin/curl", Kind: Regular, Mode: 0o755, Data: []byte("x"), Origin: "curl"},
		{Path: "/a-b", Kind: Regular, Mode: 0o644, Origin: "a-b"},
		{Path: "/a/b", Kind: Regular, Mode: 0o644, Origin: "a/b"},
		{Path: "/etc/passwd", Kind: Regular, Mode: 0o644, Origin: "accounts"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "/a /a/b /a-b /etc /etc/passwd /usr /usr/bin /usr/bin/curl"
	if got := strings.Join(paths(planned), " "); got != want {
		t.Fatalf("order:\n got %s\nwant %s", got, want)
	}
	for _, e := range planned {
		if e.Kind == Dir && (e.Mode != 0o755 || e.UID != 0 || e.GID != 0) {
			t.Errorf("implied %s: mode %v owner %d:%d, want 0755 0:0", e.Path, e.Mode, e.UID, e.GID)
		}
	}
}

func TestPlanExplicitDirBeatsImplied(t *testing.T) {
	planned, err := Plan([]Entry{
		{Path: "/tmp/x", Kind: Regular, Mode: 0o644},
		{Path: "/tmp", Kind: Dir, Mode: 0o777 | fs.ModeSticky, UID: 0, GID: 0, Origin: "dirs[0]"},
		{Path: "/home/app", Kind: Dir, Mode: 0o700, UID: 1000, GID: 1000},
		{Path: "/home/app/.profile", Kind: Regular, Mode: 0o644, UID: 1000, GID: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range planned {
		got[e.Path] = e
	}
	if e := got["/tmp"]; e.Mode != 0o777|fs.ModeSticky || e.Origin != "dirs[0]" {
		t.Errorf("/tmp = %+v, want the declared 01777 directory", e)
	}
	if e := got["/home/app"]; e.Mode != 0o700 || e.UID != 1000 {
		t.Errorf("/home/app = %+v, want declared 0700 1000:1000", e)
	}
	if e := got["/home"]; e.Mode != 0o755 || e.UID != 0 {
		t.Errorf("/home = %+v, want implied 0755 0:0", e)
	}
	if len(planned) != 5 {
		t.Errorf("planned %v, want 5 entries", paths(planned))
	}
}

func TestPlanDropsExactDuplicates(t *testing.T) {
	lib := Entry{Path: "/usr/lib/libc.so.6", Kind: Regular, Mode: 0o755, Source: "/usr/lib/libc.so.6"}
	a, b := lib, lib
	a.Origin, b.Origin = "needed by /usr/bin/curl", "needed by /usr/bin/jq"
	link := Entry{Path: "/lib", Kind: Symlink, Target: "usr/lib"}
	planned, err := Plan([]Entry{a, link, b, link})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(paths(planned), " "); got != "/lib /usr /usr/lib /usr/lib/libc.so.6" {
		t.Fatalf("planned %s", got)
	}
	if planned[3].Origin != a.Origin {
		t.Errorf("kept origin %q, want the first one %q", planned[3].Origin, a.Origin)
	}
}

func TestPlanConflicts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"two contents", []Entry{
			{Path: "/etc/passwd", Kind: Regular, Mode: 0o644, Data: []byte("root:x:0:0::/root:/bin/sh\n"), Origin: "accounts"},
			{Path: "/etc/passwd", Kind: Regular, Mode: 0o644, Source: "passwd", Origin: "contents.files[2] (kiln.yaml:20)"},
		}, "/etc/passwd: contents.files[2] (kiln.yaml:20) conflicts with accounts"},
		{"mode differs", []Entry{
			{Path: "/bin/sh", Kind: Regular, Mode: 0o755, Source: "/bin/sh", Origin: "a"},
			{Path: "/bin/sh", Kind: Regular, Mode: 0o700, Source: "/bin/sh", Origin: "b"},
		}, "/bin/sh: b conflicts with a"},
		{"dir and file", []Entry{
			{Path: "/data", Kind: Dir, Mode: 0o755, Origin: "dirs[0]"},
			{Path: "/data", Kind: Symlink, Target: "/var/data", Origin: "symlinks[0]"},
		}, "/data: symlinks[0] conflicts with dirs[0]"},
		{"below symlink", []Entry{
			{Path: "/lib", Kind: Symlink, Target: "usr/lib", Origin: "closure of /usr/bin/curl"},
			{Path: "/lib/foo", Kind: Regular, Mode: 0o644, Origin: "contents.files[0]"},
		}, "/lib/foo: contents.files[0] is below /lib, a symlink from closure of /usr/bin/curl"},
		{"below file", []Entry{
			{Path: "/etc/hosts", Kind: Regular, Mode: 0o644, Origin: "files[0]"},
			{Path: "/etc/hosts/x", Kind: Regular, Mode: 0o644, Origin: "files[1]"},
		}, "/etc/hosts/x: files[1] is below /etc/hosts, a regular file from files[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Plan(tc.entries)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Plan error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestPlanRejectsInvalid(t *testing.T) {
	for _, e := range []Entry{
		{Path: "usr/bin/curl", Kind: Regular},
		{Path: "/usr//bin", Kind: Dir},
		{Path: "/usr/../etc", Kind: Dir},
		{Path: "/usr/", Kind: Dir},
		{Path: "/", Kind: Regular},
		{Path: "/", Kind: Symlink, Target: "x"},
		{Path: "/x", Kind: Symlink},
		{Path: "/x", Kind: Regular, Source: "a", Data: []byte("b")},
		{Path: "/x", Kind: Dir, Source: "a"},
		{Path: "/x", Kind: Regular, Mode: fs.ModeDir | 0o755},
		{Path: "/x", Kind: Regular, UID: -1},
		{Path: "/x", Kind: Kind(9)},
	} {
		if _, err := Plan([]Entry{e}); err == nil {
			t.Errorf("Plan(%+v) = nil error", e)
		}
	}
}

func TestPlanKeepsRootDir(t *testing.T) {
	planned, err := Plan([]Entry{
		{Path: "/etc", Kind: Dir, Mode: 0o755},
		{Path: "/", Kind: Dir, Mode: 0o755},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(paths(planned), " "); got != "/ /etc" {
		t.Fatalf("planned %s", got)
	}
}
