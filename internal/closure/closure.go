// Package closure works out which files of a root (the host's "/", or a build stage's image) an
// executable needs to run: the file itself, its ELF
// interpreter, every shared library the dynamic loader would map for it (DT_NEEDED, searched the way
// glibc's ld.so searches: DT_RPATH, DT_RUNPATH, /etc/ld.so.cache, the default dirs), the interpreter
// of a #! script, and every symlink met on the way to any of these.
//
// It owns the reading of ELF headers, /etc/ld.so.cache and /etc/ld.so.conf (the root's own). It never
// writes anything, never runs the files it inspects, and never leaves the root it was given: symlinks
// are followed inside that root as if it were chrooted, and files are opened with openat2
// RESOLVE_IN_ROOT, so the kernel holds to that too.
//
//	r, err := closure.NewResolver("/")
//	...
//	files, err := r.Resolve("/usr/bin/curl")
//	for _, f := range files {
//		// f.Target != "": make a symlink f.Path -> f.Target; otherwise copy the host file f.Path.
//	}
package closure

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// File is one path an image needs for an executable to run.
type File struct {
	Path   string // absolute, clean host path (also its path in the image)
	Target string // non-empty: Path is a symlink with this target (as read by readlink, unchanged)
	Origin string // why it is needed: "interpreter of /usr/bin/curl", "needed by /usr/lib/x86_64-linux-gnu/libcurl.so.4"
}

// DefaultPATH is the PATH a Resolver starts with: Debian's default for root, which is also what most
// base images set.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Resolver answers closure questions about the tree under one root. It reads that tree lazily and
// remembers what it read (file types, symlinks, ELF headers, ld.so.cache), so it sees the tree as it
// was when first asked: use one Resolver per build, not one per process lifetime.
// A Resolver is safe for concurrent use; calls are serialised.
type Resolver struct {
	// PATH lists the directories Lookup searches for a bare program name, in order, like $PATH in
	// the image. NewResolver sets it from DefaultPATH; change it before use, not during a call.
	PATH []string

	root     string
	dir      *rootDir                // opens files under root, never outside it
	cache    map[string][]cacheEntry // /etc/ld.so.cache by library name, in file order
	confDirs []string                // /etc/ld.so.conf, includes followed

	mu      sync.Mutex
	stats   map[string]lstatResult
	walks   map[string]walkResult
	objects map[string]objectResult
}

// NewResolver returns a Resolver for the tree under root ("/" for the host). It reads
// /etc/ld.so.cache and /etc/ld.so.conf under root now; either may be missing.
func NewResolver(root string) (*Resolver, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("closure: root %s: %w", root, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("closure: root: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("closure: root %s: not a directory", abs)
	}
	dir, err := openRootDir(abs)
	if err != nil {
		return nil, fmt.Errorf("closure: root: %w", err)
	}
	r := &Resolver{
		PATH:    filepath.SplitList(DefaultPATH),
		root:    abs,
		dir:     dir,
		stats:   map[string]lstatResult{},
		walks:   map[string]walkResult{},
		objects: map[string]objectResult{},
	}
	if r.cache, err = r.readLDCache(ldCachePath); err != nil {
		return nil, err
	}
	if r.confDirs, err = r.readConf(ldConfPath, 0, nil); err != nil {
		return nil, err
	}
	r.confDirs = dedupe(r.confDirs)
	return r, nil
}

// Resolve returns every file the executables at paths (absolute paths under the root) need, the
// executables included, sorted by Path and without duplicates. When two reasons lead to one path,
// the first met is its Origin. A library that cannot be found is a *MissingError.
func (r *Resolver) Resolve(paths ...string) ([]File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &collector{files: map[string]File{}, done: map[string]bool{}}
	for _, p := range paths {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("closure: %s: not an absolute path", p)
		}
		if err := r.executable(c, path.Clean(p), "requested", 0); err != nil {
			return nil, err
		}
	}
	return c.sorted(), nil
}

// MissingError reports a DT_NEEDED library that is nowhere ld.so would look.
type MissingError struct {
	Lib      string   // the DT_NEEDED entry
	NeededBy string   // the object that needs it, as it was found
	Searched []string // the directories (and ld.so.cache) searched, in order
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s needed by %s: not found (searched %s)", e.Lib, e.NeededBy, strings.Join(e.Searched, ", "))
}

// collector gathers the result of one Resolve call.
type collector struct {
	files map[string]File
	done  map[string]bool // executables already resolved: shared interpreters, #! loops
}

func (c *collector) add(f File) {
	if _, ok := c.files[f.Path]; !ok {
		c.files[f.Path] = f
	}
}

func (c *collector) sorted() []File {
	out := make([]File, 0, len(c.files))
	for _, f := range c.files {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// addPath records p, every symlink on the way to it, and the regular file it ends at, all for the
// same reason. It returns that file's path.
func (r *Resolver) addPath(c *collector, p, origin string) (string, error) {
	links, real, err := r.walk(p)
	if err != nil {
		return "", fmt.Errorf("closure: read %s: %w", p, err)
	}
	for _, l := range links {
		c.add(File{Path: l.path, Target: l.target, Origin: origin})
	}
	c.add(File{Path: real, Origin: origin})
	return real, nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
