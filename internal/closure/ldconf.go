package closure

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

const (
	ldConfPath = "/etc/ld.so.conf"
	// maxIncludeDepth stops include cycles; real configurations nest once.
	maxIncludeDepth = 8
)

// readConf appends to dirs the library directories listed in the ld.so.conf file p under the root,
// following include lines. ld.so itself only reads the cache ldconfig builds from these; they are
// searched here too so that a stale or missing cache still finds what ldconfig would have listed.
func (r *Resolver) readConf(p string, depth int, dirs []string) ([]string, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("closure: %s: includes nested more than %d deep", p, maxIncludeDepth)
	}
	data, err := r.readFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return dirs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("closure: read %s: %w", p, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0, fields[0] == "hwcap":
		case fields[0] == "include":
			if dirs, err = r.readIncludes(p, fields[1:], depth, dirs); err != nil {
				return nil, err
			}
		default:
			dirs = append(dirs, confDirs(line)...)
		}
	}
	return dirs, nil
}

// readIncludes reads the files matching patterns, which are relative to the including file's dir.
func (r *Resolver) readIncludes(from string, patterns []string, depth int, dirs []string) ([]string, error) {
	for _, pat := range patterns {
		if !path.IsAbs(pat) {
			pat = path.Join(path.Dir(from), pat)
		}
		files, err := r.glob(path.Clean(pat))
		if err != nil {
			return nil, fmt.Errorf("closure: %s: include %s: %w", from, pat, err)
		}
		for _, f := range files {
			if dirs, err = r.readConf(f, depth+1, dirs); err != nil {
				return nil, err
			}
		}
	}
	return dirs, nil
}

// confDirs splits a directory line: ldconfig accepts spaces, tabs, commas and colons between dirs,
// and an old "dir=libc5" suffix naming the library kind.
func confDirs(line string) []string {
	var dirs []string
	for _, d := range strings.FieldsFunc(line, func(c rune) bool { return strings.ContainsRune(" \t,:", c) }) {
		d, _, _ = strings.Cut(d, "=")
		if path.IsAbs(d) {
			dirs = append(dirs, path.Clean(d))
		}
	}
	return dirs
}

// glob expands pattern inside the root like glob(3): sorted, and "*" does not match a leading dot.
func (r *Resolver) glob(pattern string) ([]string, error) {
	if !hasMeta(pattern) {
		return []string{pattern}, nil
	}
	dir, base := path.Split(pattern)
	parents, err := r.glob(path.Clean(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range parents {
		names, err := r.readDirNames(d)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if ok, err := path.Match(base, n); err != nil {
				return nil, err
			} else if ok && (n[0] != '.' || base[0] == '.') {
				out = append(out, path.Join(d, n))
			}
		}
	}
	return out, nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// readDirNames lists the directory d under the root, sorted; a missing one is empty.
func (r *Resolver) readDirNames(d string) ([]string, error) {
	_, real, err := r.walk(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries, err := r.dir.readDir(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, renamePathError(err, real)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}
