package closure

import (
	"debug/elf"
	"path"
	"slices"
	"strings"
)

// loaded is one object in a simulated process: the executable, its interpreter, or a library.
type loaded struct {
	path   string // as ld.so found it; errors and Origins name this
	origin string // $ORIGIN
	obj    *object
	loader *loaded // the object whose DT_NEEDED brought this one in; nil for the executable
}

// process replays what ld.so does for one executable. Objects load breadth first, and a name already
// loaded (as a DT_NEEDED name, a DT_SONAME or a path) is not searched again, so a library found
// through one object's RPATH also serves later objects that could not have found it themselves.
type process struct {
	r     *Resolver
	c     *collector
	abi   abi
	lib   string             // $LIB
	names map[string]*loaded // what each loaded object answers to
	reals map[string]*loaded // by symlink-free path: one file is loaded once, whatever its name
}

// loadELF adds the interpreter and the libraries the ELF executable p (whose file is real) loads.
func (r *Resolver) loadELF(c *collector, p, real string, obj *object, depth int) error {
	pr := &process{r: r, c: c, abi: obj.abi, names: map[string]*loaded{}, reals: map[string]*loaded{}}
	// ld.so takes the executable's $ORIGIN from /proc/self/exe, which has every symlink resolved;
	// a library's comes from the path it was found at.
	exe := &loaded{path: p, origin: path.Dir(real), obj: obj}
	pr.reals[real] = exe
	if err := pr.addInterpreter(exe, depth); err != nil {
		return err
	}
	queue := []*loaded{exe}
	for len(queue) > 0 {
		l := queue[0]
		queue = queue[1:]
		for _, name := range l.obj.needed {
			dep, err := pr.load(name, l)
			if err != nil {
				return err
			}
			if dep != nil {
				queue = append(queue, dep)
			}
		}
	}
	return nil
}

// addInterpreter adds the PT_INTERP of exe, if any, and registers it as loaded: libc.so.6 lists
// ld-linux-x86-64.so.2 in DT_NEEDED, and ld.so answers that with itself. It also settles $LIB.
func (pr *process) addInterpreter(exe *loaded, depth int) error {
	interp := exe.obj.interp
	if interp == "" {
		pr.lib = pr.r.defaultLib(pr.abi)
		return nil
	}
	if err := pr.r.executable(pr.c, interp, "interpreter of "+exe.path, depth+1); err != nil {
		return err
	}
	_, real, _ := pr.r.walk(interp) // cached, and known good since executable succeeded
	pr.lib = libDir(real)
	obj, err := pr.r.object(real)
	if err != nil {
		return nil // not an ELF interpreter: nothing to register
	}
	il := &loaded{path: interp, origin: path.Dir(interp), obj: obj}
	pr.names[interp], pr.reals[real] = il, il
	if obj.soname != "" {
		pr.names[obj.soname] = il
	}
	return nil
}

// libDir derives $LIB from where the interpreter really is: glibc expands $LIB to the directory
// it was built to live in (its slibdir) without the /usr prefix, so a Debian ld.so in
// /usr/lib/x86_64-linux-gnu gives "lib/x86_64-linux-gnu", Fedora's in /usr/lib64 gives "lib64"
// and Arch's in /usr/lib gives "lib".
func libDir(interpReal string) string {
	d := strings.TrimPrefix(path.Dir(interpReal), "/")
	return strings.TrimPrefix(d, "usr/")
}

// defaultLib is $LIB for an object with no interpreter (a shared library resolved on its own): the
// multiarch dir if the root has one, else lib64 or lib.
func (r *Resolver) defaultLib(a abi) string {
	if t := a.triplet(); t != "" && (r.isDir("/lib/"+t) || r.isDir("/usr/lib/"+t)) {
		return "lib/" + t
	}
	if a.class == elf.ELFCLASS64 && r.isDir("/lib64") {
		return "lib64"
	}
	return "lib"
}

// load finds the library name needed by l. It returns the new object, or nil if one already loaded
// answers to name.
func (pr *process) load(name string, l *loaded) (*loaded, error) {
	if pr.names[name] != nil {
		return nil, nil
	}
	found, err := pr.find(name, l)
	if err != nil {
		return nil, err
	}
	real, err := pr.r.addPath(pr.c, found, "needed by "+l.path)
	if err != nil {
		return nil, err
	}
	if dep := pr.reals[real]; dep != nil {
		pr.names[name] = dep
		return nil, nil
	}
	obj, _ := pr.r.object(real) // cached: find checked it is a matching ELF
	dep := &loaded{path: found, origin: path.Dir(found), obj: obj, loader: l}
	pr.names[name], pr.names[found], pr.reals[real] = dep, dep, dep
	if obj.soname != "" {
		pr.names[obj.soname] = dep
	}
	return dep, nil
}

// find searches for name the way ld.so does for a DT_NEEDED entry of l, returning the path the
// library is found at (not resolved: its directory is the library's $ORIGIN).
func (pr *process) find(name string, l *loaded) (string, error) {
	expanded, ok := pr.expand(name, l.origin)
	if ok && strings.Contains(expanded, "/") {
		p := absolute(expanded)
		if pr.usable(p) {
			return p, nil
		}
		return "", &MissingError{Lib: name, NeededBy: l.path, Searched: []string{p}}
	}
	s := search{pr: pr, name: name, tried: map[string]bool{}}
	if !ok {
		return "", s.missing(l)
	}
	if p, ok := s.inDirs(pr.searchPath(l)); ok {
		return p, nil
	}
	if l.obj.nodeflib {
		return "", s.missing(l)
	}
	if p, ok := s.inCache(); ok {
		return p, nil
	}
	if p, ok := s.inDirs(slices.Concat(pr.r.confDirs, pr.abi.defaultDirs())); ok {
		return p, nil
	}
	return "", s.missing(l)
}

// searchPath is where ld.so looks for the deps of l before the cache: the DT_RPATH of l and of
// each object up its loader chain (all of them ignored when l has a DT_RUNPATH), then l's own
// DT_RUNPATH, which unlike DT_RPATH does not apply to deps of deps.
func (pr *process) searchPath(l *loaded) []string {
	var dirs []string
	if !l.obj.hasRunpath {
		for x := l; x != nil; x = x.loader {
			dirs = append(dirs, pr.expandList(x.obj.rpath, x.origin)...)
		}
	}
	return append(dirs, pr.expandList(l.obj.runpath, l.origin)...)
}

// search is one library search, remembering where it looked for the error.
type search struct {
	pr       *process
	name     string
	tried    map[string]bool
	searched []string
}

func (s *search) inDirs(dirs []string) (string, bool) {
	for _, d := range dirs {
		if s.tried[d] {
			continue
		}
		s.tried[d] = true
		s.searched = append(s.searched, d)
		if p := path.Join(d, s.name); s.pr.usable(p) {
			return p, true
		}
	}
	return "", false
}

func (s *search) inCache() (string, bool) {
	if s.pr.r.cache == nil {
		return "", false
	}
	s.searched = append(s.searched, ldCachePath)
	for _, p := range s.pr.r.cached(s.name, s.pr.abi) {
		if s.pr.usable(p) {
			return p, true
		}
	}
	return "", false
}

func (s *search) missing(l *loaded) error {
	return &MissingError{Lib: s.name, NeededBy: l.path, Searched: s.searched}
}

// usable reports whether p is an ELF file ld.so would take for this process; anything else (a
// missing file, a linker script like libc.so, a 32-bit library) makes it keep searching.
func (pr *process) usable(p string) bool {
	_, real, err := pr.r.walk(p)
	if err != nil {
		return false
	}
	obj, err := pr.r.object(real)
	return err == nil && obj.abi.matches(pr.abi)
}

// expandList expands a DT_RPATH or DT_RUNPATH. Empty entries (the current directory to ld.so,
// unknowable here) and entries whose tokens have no value are dropped.
func (pr *process) expandList(list []string, origin string) []string {
	var dirs []string
	for _, d := range list {
		if d == "" {
			continue
		}
		if e, ok := pr.expand(d, origin); ok {
			dirs = append(dirs, absolute(e))
		}
	}
	return dirs
}

// absolute makes p absolute: relative paths are relative to ld.so's working directory, which for a
// container is "/" unless the image says otherwise.
func absolute(p string) string {
	return path.Join("/", p)
}

// expand replaces ld.so's dynamic string tokens $ORIGIN, $LIB and $PLATFORM (or ${ORIGIN} etc.)
// in s. ok is false when a token has no value here; ld.so then drops the entry.
func (pr *process) expand(s, origin string) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		name, n := dstToken(s[i:])
		if n == 0 {
			b.WriteByte(s[i])
			i++
			continue
		}
		val := origin
		switch name {
		case "LIB":
			val = pr.lib
		case "PLATFORM":
			val = pr.abi.platform()
		}
		if val == "" {
			return "", false
		}
		b.WriteString(val)
		i += n
	}
	return b.String(), true
}

// dstToken reports the token s starts with and its length in s, or n == 0 if it starts with none.
// Like glibc, "$ORIGINAL" is not "$ORIGIN" followed by "AL"; unknown tokens stay as they are.
func dstToken(s string) (name string, n int) {
	if len(s) < 2 || s[0] != '$' {
		return "", 0
	}
	for _, name := range []string{"ORIGIN", "LIB", "PLATFORM"} {
		if strings.HasPrefix(s[1:], "{"+name+"}") {
			return name, len(name) + 3
		}
		if strings.HasPrefix(s[1:], name) && !isIdentByte(s, len(name)+1) {
			return name, len(name) + 1
		}
	}
	return "", 0
}

func isIdentByte(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
