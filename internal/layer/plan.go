package layer

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Kind is the type of an Entry.
type Kind uint8

const (
	Regular Kind = iota // a file, from Source or Data
	Dir                 // a directory
	Symlink             // a symbolic link to Target
)

func (k Kind) String() string {
	switch k {
	case Regular:
		return "regular file"
	case Dir:
		return "directory"
	case Symlink:
		return "symlink"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Entry is one file, directory or symlink to put in a layer.
type Entry struct {
	Path     string // absolute clean path in the image, "/usr/bin/curl"
	Kind     Kind
	Mode     fs.FileMode // permission bits plus fs.ModeSetuid/ModeSetgid/ModeSticky
	UID, GID int
	Source   string // Regular: host file to copy, or
	Data     []byte // Regular: generated content (when Source == "")
	Target   string // Symlink target
	Origin   string // for errors, e.g. "kiln.yaml:14 contents.files[0]"
}

// modeBits are the bits of Entry.Mode that a layer can carry.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// impliedDirMode is the mode of a parent directory nobody declared.
const impliedDirMode = 0o755

// Plan validates entries and returns them ready for Write: sorted so that
// parents come before children, exact duplicates dropped (two closures may
// name the same library), and missing parent directories added as 0755 0:0.
// A directory declared explicitly beats an implied one. Two different entries
// for one path, or an entry below a symlink or a regular file, are errors
// that name the path and both origins.
func Plan(entries []Entry) ([]Entry, error) {
	for _, e := range entries {
		if err := validate(e); err != nil {
			return nil, err
		}
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int { return comparePaths(a.Path, b.Path) })
	unique, err := dedupe(sorted)
	if err != nil {
		return nil, err
	}
	planned, err := addParents(unique)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(planned, func(a, b Entry) int { return comparePaths(a.Path, b.Path) })
	return planned, nil
}

func validate(e Entry) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s (%s): %s", e.Path, origin(e), fmt.Sprintf(format, args...))
	}
	switch {
	case !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path:
		return fail("path must be absolute and clean")
	case strings.ContainsRune(e.Path, 0) || strings.ContainsRune(e.Target, 0):
		return fail("NUL byte in path")
	case e.Path == "/" && e.Kind != Dir:
		return fail("the root can only be a directory")
	case e.Mode&^modeBits != 0:
		return fail("mode %v has bits other than permissions, setuid, setgid and sticky", e.Mode)
	case e.UID < 0 || e.GID < 0:
		return fail("negative owner %d:%d", e.UID, e.GID)
	}
	switch e.Kind {
	case Regular:
		if e.Source != "" && e.Data != nil {
			return fail("both Source and Data set")
		}
	case Dir:
		if e.Source != "" || e.Data != nil || e.Target != "" {
			return fail("a directory has no Source, Data or Target")
		}
	case Symlink:
		if e.Target == "" {
			return fail("symlink without a target")
		}
		if e.Source != "" || e.Data != nil {
			return fail("a symlink has no Source or Data")
		}
	default:
		return fail("unknown kind %v", e.Kind)
	}
	return nil
}

// comparePaths orders paths component by component, so "/a/b" sorts right
// after "/a" and before "/a-b": a parent always precedes its subtree.
func comparePaths(a, b string) int {
	for a != "" || b != "" {
		var ca, cb string
		ca, a = firstComponent(a)
		cb, b = firstComponent(b)
		if c := strings.Compare(ca, cb); c != 0 {
			return c
		}
	}
	return 0
}

// firstComponent splits "/usr/lib" into "usr" and "/lib".
func firstComponent(p string) (string, string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// dedupe drops exact duplicates from sorted entries and rejects different
// entries for the same path.
func dedupe(sorted []Entry) ([]Entry, error) {
	out := sorted[:0:0]
	for _, e := range sorted {
		if n := len(out); n > 0 && out[n-1].Path == e.Path {
			if !same(out[n-1], e) {
				return nil, conflict(e, out[n-1])
			}
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func same(a, b Entry) bool {
	return a.Kind == b.Kind && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID &&
		a.Source == b.Source && bytes.Equal(a.Data, b.Data) &&
		a.Target == b.Target
}

func conflict(e, earlier Entry) error {
	return fmt.Errorf("%s: %s conflicts with %s", e.Path, origin(e), origin(earlier))
}

func origin(e Entry) string {
	if e.Origin == "" {
		return "an entry without origin"
	}
	return e.Origin
}

// addParents adds the missing parent directories of unique (sorted, one
// entry per path) and rejects entries below a symlink or a regular file.
func addParents(unique []Entry) ([]Entry, error) {
	byPath := make(map[string]Entry, len(unique))
	for _, e := range unique {
		byPath[e.Path] = e
	}
	planned := slices.Clone(unique)
	for _, e := range unique {
		for dir := path.Dir(e.Path); dir != "/" && e.Path != "/"; dir = path.Dir(dir) {
			parent, ok := byPath[dir]
			if !ok {
				parent = Entry{Path: dir, Kind: Dir, Mode: impliedDirMode,
					Origin: "parent of " + e.Path + " (" + origin(e) + ")"}
				byPath[dir] = parent
				planned = append(planned, parent)
				continue
			}
			if parent.Kind != Dir {
				return nil, belowNonDir(e, parent)
			}
		}
	}
	return planned, nil
}

func belowNonDir(e, parent Entry) error {
	return fmt.Errorf("%s: %s is below %s, a %v from %s",
		e.Path, origin(e), parent.Path, parent.Kind, origin(parent))
}
