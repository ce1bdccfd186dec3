package closure

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// These tests build small ELF files with the host's gcc and place them in a fake root, where the
// search rules can be tested one at a time. The files link without libc (-nostdlib), so the root
// holds only the interpreter (copied from the host) and the test's own libraries.

// tree is a fake root under construction.
type tree struct {
	t      *testing.T
	root   string
	gcc    string
	src    string // where the C sources go, outside the root
	interp string // PT_INTERP of what gcc links, e.g. /lib64/ld-linux-x86-64.so.2
	real   string // where the interpreter really is on the host, and in the tree
}

func newTree(t *testing.T) *tree {
	t.Parallel() // gcc is slow on a busy machine; the trees are independent
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("SKIP LOUDLY: gcc not found, the ld.so search rules are untested: %v", err)
	}
	interp, err := gccInterp(gcc)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tree{t: t, root: t.TempDir(), gcc: gcc, src: t.TempDir(), interp: interp}
	if tr.real, err = filepath.EvalSymlinks(interp); err != nil {
		t.Skipf("gcc links against %s, which this host lacks: %v", interp, err)
	}
	tr.copyFile(tr.real, tr.real)
	if tr.real != tr.interp {
		tr.symlink(tr.interp, tr.real) // an absolute link, which must stay inside the root
	}
	return tr
}

// gccInterp learns, once per test binary, the PT_INTERP gcc gives a dynamic executable.
func gccInterp(gcc string) (string, error) {
	gccProbe.once.Do(func() { gccProbe.interp, gccProbe.err = probeInterp(gcc) })
	return gccProbe.interp, gccProbe.err
}

var gccProbe struct {
	once   sync.Once
	interp string
	err    error
}

func probeInterp(gcc string) (string, error) {
	dir, err := os.MkdirTemp("", "closure-probe")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	lib, exe := filepath.Join(dir, "lib0.so"), filepath.Join(dir, "probe")
	if err := os.WriteFile(filepath.Join(dir, "src.c"), []byte("void _start(void) {}\n"), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"-nostdlib", "-shared", "-fPIC", "-o", lib, filepath.Join(dir, "src.c")},
		{"-nostdlib", "-o", exe, filepath.Join(dir, "src.c"), lib},
	} {
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	obj, err := readObjectFile(exe)
	if err == nil && obj.interp == "" {
		err = errors.New("gcc made an executable without PT_INTERP")
	}
	if err != nil {
		return "", err
	}
	return obj.interp, nil
}

func (tr *tree) gccRun(args ...string) {
	tr.t.Helper()
	if out, err := exec.Command(tr.gcc, args...).CombinedOutput(); err != nil {
		tr.t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (tr *tree) host(p string) string { return filepath.Join(tr.root, p) }

func (tr *tree) mkdirFor(p string) {
	if err := os.MkdirAll(filepath.Dir(tr.host(p)), 0o755); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) symlink(p, target string) {
	tr.mkdirFor(p)
	if err := os.Symlink(target, tr.host(p)); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) copyFile(hostSrc, p string) {
	b, err := os.ReadFile(hostSrc)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.writeFile(p, b, 0o755)
}

func (tr *tree) writeFile(p string, b []byte, mode os.FileMode) {
	tr.mkdirFor(p)
	if err := os.WriteFile(tr.host(p), b, mode); err != nil {
		tr.t.Fatal(err)
	}
}

// lib builds the shared library p, with soname path.Base(p), calling into the libraries needs
// (paths in the tree), with extra gcc args.
func (tr *tree) lib(p string, needs []string, args ...string) {
	tr.t.Helper()
	tr.libAs(p, path.Base(p), needs, args...)
}

func (tr *tree) libAs(p, soname string, needs []string, args ...string) {
	tr.t.Helper()
	body := fmt.Sprintf("int %s(void) {\n%s\treturn 0;\n}\n", funcName(soname), tr.calls(needs))
	tr.build(p, body, append([]string{"-shared", "-fPIC", "-Wl,-soname," + soname}, args...), needs)
}

// exe builds the executable p calling into the libraries needs (paths in the tree).
func (tr *tree) exe(p string, needs []string, args ...string) {
	tr.t.Helper()
	tr.build(p, fmt.Sprintf("void _start(void) {\n%s}\n", tr.calls(needs)), args, needs)
}

// calls declares and calls the function each library in needs defines (named after its soname).
func (tr *tree) calls(needs []string) string {
	tr.t.Helper()
	var b strings.Builder
	for _, n := range needs {
		obj, err := readObjectFile(tr.host(n))
		if err != nil {
			tr.t.Fatal(err)
		}
		fmt.Fprintf(&b, "\textern int %s(void); %s();\n", funcName(obj.soname), funcName(obj.soname))
	}
	return b.String()
}

func funcName(soname string) string {
	return "f_" + strings.NewReplacer(".", "_", "-", "_").Replace(soname)
}

func (tr *tree) build(p, body string, args, needs []string) {
	tr.t.Helper()
	src := filepath.Join(tr.src, strings.ReplaceAll(p, "/", "_")+".c")
	if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	all := []string{"-nostdlib", "-o", tr.host(p), src}
	for _, n := range needs {
		all = append(all, tr.host(n), "-Wl,-rpath-link,"+filepath.Dir(tr.host(n)))
	}
	tr.mkdirFor(p)
	tr.gccRun(append(all, args...)...)
}

func (tr *tree) resolver() *Resolver {
	r, err := NewResolver(tr.root)
	if err != nil {
		tr.t.Fatal(err)
	}
	return r
}

func (tr *tree) resolve(paths ...string) ([]File, error) {
	return tr.resolver().Resolve(paths...)
}

// interpFiles is what every executable in the tree brings along: the interpreter and its link.
func (tr *tree) interpFiles(exe string) []File {
	origin := "interpreter of " + exe
	files := []File{{Path: tr.real, Origin: origin}}
	if tr.real != tr.interp {
		files = append(files, File{Path: tr.interp, Target: tr.real, Origin: origin})
	}
	return files
}

func sortFiles(files []File) []File {
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files
}

func checkFiles(t *testing.T, got, want []File) {
	t.Helper()
	want = sortFiles(want)
	if !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", fileList(got), fileList(want))
	}
}

func fileList(files []File) string {
	var lines []string
	for _, f := range files {
		lines = append(lines, f.Path+" -> "+f.Target+" ("+f.Origin+")")
	}
	return strings.Join(lines, "\n\t")
}

// buildFooBar builds /app/lib/libbar.so.1 and /app/lib/libfoo.so.1 (a symlink to libfoo.so.1.0),
// which needs libbar.so.1 but has no search path of its own to find it.
func (tr *tree) buildFooBar() {
	tr.lib("/app/lib/libbar.so.1", nil)
	tr.libAs("/app/lib/libfoo.so.1.0", "libfoo.so.1", []string{"/app/lib/libbar.so.1"})
	tr.symlink("/app/lib/libfoo.so.1", "libfoo.so.1.0")
}

func TestRPATHReachesDepsOfDeps(t *testing.T) {
	tr := newTree(t)
	tr.buildFooBar()
	tr.exe("/app/bin/app", []string{"/app/lib/libfoo.so.1"}, "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib")
	files, err := tr.resolve("/app/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, files, append(tr.interpFiles("/app/bin/app"),
		File{Path: "/app/bin/app", Origin: "requested"},
		File{Path: "/app/lib/libfoo.so.1", Target: "libfoo.so.1.0", Origin: "needed by /app/bin/app"},
		File{Path: "/app/lib/libfoo.so.1.0", Origin: "needed by /app/bin/app"},
		File{Path: "/app/lib/libbar.so.1", Origin: "needed by /app/lib/libfoo.so.1"},
	))
}

func TestRUNPATHOnlyForDirectDeps(t *testing.T) {
	tr := newTree(t)
	tr.buildFooBar()
	tr.exe("/app/bin/app", []string{"/app/lib/libfoo.so.1"}, "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib")
	_, err := tr.resolve("/app/bin/app")
	var missing *MissingError
	if !errors.As(err, &missing) {
		t.Fatalf("got %v, want a *MissingError", err)
	}
	if missing.Lib != "libbar.so.1" || missing.NeededBy != "/app/lib/libfoo.so.1" || slices.Contains(missing.Searched, "/app/lib") {
		t.Errorf("got %+v, want libbar.so.1 needed by /app/lib/libfoo.so.1, /app/lib not searched", missing)
	}
	if want := "libbar.so.1 needed by /app/lib/libfoo.so.1: not found (searched "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %q, want it to start %q", err, want)
	}
}

// A library with a DT_RUNPATH of its own no longer sees the DT_RPATH of the objects that loaded it.
func TestRUNPATHHidesLoadersRPATH(t *testing.T) {
	tr := newTree(t)
	tr.lib("/app/lib/libbar.so.1", nil)
	tr.lib("/app/lib/libfoo.so.1", []string{"/app/lib/libbar.so.1"}, "-Wl,--enable-new-dtags", "-Wl,-rpath,/nowhere")
	tr.exe("/app/bin/app", []string{"/app/lib/libfoo.so.1"}, "-Wl,--disable-new-dtags", "-Wl,-rpath,/app/lib")
	var missing *MissingError
	_, err := tr.resolve("/app/bin/app")
	if !errors.As(err, &missing) || missing.Lib != "libbar.so.1" || missing.Searched[0] != "/nowhere" {
		t.Fatalf("got %v, want libbar.so.1 missing after searching /nowhere", err)
	}
}

// ld.so does not search again for a name already loaded: the executable loads libbar.so.1 through
// its RUNPATH first, and that copy serves libfoo, which could not have found it.
func TestLoadedLibraryServesLaterNeeds(t *testing.T) {
	tr := newTree(t)
	tr.buildFooBar()
	tr.exe("/app/bin/app", []string{"/app/lib/libbar.so.1", "/app/lib/libfoo.so.1"}, "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib")
	files, err := tr.resolve("/app/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, File{Path: "/app/lib/libbar.so.1", Origin: "needed by /app/bin/app"}) {
		t.Errorf("libbar.so.1 missing: %s", fileList(files))
	}
}

func TestDynamicStringTokens(t *testing.T) {
	tr := newTree(t)
	obj, err := readObjectFile(tr.host(tr.real))
	if err != nil {
		t.Fatal(err)
	}
	lib, platform := libDir(tr.real), obj.platform()
	if platform == "" {
		t.Skipf("no $PLATFORM known for %v", obj.machine)
	}
	tr.lib("/app/a/libx.so.1", nil)
	tr.lib("/opt/"+lib+"/liby.so.1", nil)
	tr.lib("/opt/"+platform+"/libz.so.1", nil)
	tr.exe("/app/bin/app", []string{"/app/a/libx.so.1", "/opt/" + lib + "/liby.so.1", "/opt/" + platform + "/libz.so.1"},
		"-Wl,-rpath,${ORIGIN}/../a:/opt/$LIB:/opt/${PLATFORM}:/nowhere/$ORIGINAL")
	files, err := tr.resolve("/app/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/app/a/libx.so.1", "/opt/" + lib + "/liby.so.1", "/opt/" + platform + "/libz.so.1"} {
		if !slices.Contains(files, File{Path: p, Origin: "needed by /app/bin/app"}) {
			t.Errorf("%s missing: %s", p, fileList(files))
		}
	}
}

// An executable run through a symlink has the $ORIGIN of its real location (ld.so reads
// /proc/self/exe); libraries keep the directory they were found in.
func TestExecutableOriginIsItsRealDir(t *testing.T) {
	tr := newTree(t)
	tr.lib("/app/lib/libx.so.1", nil)
	tr.exe("/app/bin/app", []string{"/app/lib/libx.so.1"}, "-Wl,-rpath,$ORIGIN/../lib")
	tr.symlink("/usr/local/bin/app", "../../../app/bin/app")
	files, err := tr.resolve("/usr/local/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, File{Path: "/app/lib/libx.so.1", Origin: "needed by /usr/local/bin/app"}) {
		t.Errorf("libx.so.1 missing: %s", fileList(files))
	}
}

// A library of the wrong machine or a linker script under the right name does not stop the search.
func TestSkipsCandidatesLdSoCannotLoad(t *testing.T) {
	tr := newTree(t)
	tr.buildFooBar()
	b, err := os.ReadFile(tr.host("/app/lib/libbar.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	other := slices.Clone(b)
	machine := elf.EM_AARCH64
	if elf.Machine(other[18]) == machine {
		machine = elf.EM_X86_64
	}
	other[18], other[19] = byte(machine), 0 // e_machine, little endian
	tr.writeFile("/wrong/libbar.so.1", other, 0o644)
	tr.writeFile("/script/libbar.so.1", []byte("INPUT(/app/lib/libbar.so.1)\n"), 0o644)
	tr.exe("/app/bin/app", []string{"/app/lib/libbar.so.1"}, "-Wl,-rpath,/wrong:/script:/app/lib")
	files, err := tr.resolve("/app/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasPrefix(f.Path, "/wrong") || strings.HasPrefix(f.Path, "/script") {
			t.Errorf("took %s", f.Path)
		}
	}
	if !slices.Contains(files, File{Path: "/app/lib/libbar.so.1", Origin: "needed by /app/bin/app"}) {
		t.Errorf("libbar.so.1 missing: %s", fileList(files))
	}
}

// buildSystemLibs puts libconf.so.1 in a dir listed by ld.so.conf (through an include) and
// libdef.so.1 in a default dir reached through /lib -> usr/lib, and returns the default dir.
func (tr *tree) buildSystemLibs() string {
	a := tr.abi()
	if a.triplet() == "" {
		tr.t.Skipf("no multiarch dir known for %v", a.machine)
	}
	dir := "/lib/" + a.triplet()
	if !tr.resolver().isDir("/lib") {
		tr.symlink("/lib", "usr/lib")
	}
	tr.lib("/opt/conf/lib/libconf.so.1", nil)
	tr.lib("/usr"+dir+"/libdef.so.1", nil)
	tr.writeFile("/etc/ld.so.conf", []byte("# comment\ninclude ld.so.conf.d/*.conf\n"), 0o644)
	tr.writeFile("/etc/ld.so.conf.d/conf.conf", []byte("/opt/conf/lib\n"), 0o644)
	tr.writeFile("/etc/ld.so.conf.d/.hidden.conf", []byte("/nowhere\n"), 0o644)
	return dir
}

func (tr *tree) abi() abi {
	obj, err := readObjectFile(tr.host(tr.real))
	if err != nil {
		tr.t.Fatal(err)
	}
	return obj.abi
}

func TestLdSoConfAndDefaultDirs(t *testing.T) {
	tr := newTree(t)
	dir := tr.buildSystemLibs()
	tr.exe("/app/bin/app", []string{"/opt/conf/lib/libconf.so.1", "/usr" + dir + "/libdef.so.1"})
	r := tr.resolver()
	if want := []string{"/opt/conf/lib"}; !slices.Equal(r.confDirs, want) {
		t.Errorf("ld.so.conf dirs %q, want %q", r.confDirs, want)
	}
	files, err := r.Resolve("/app/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []File{
		{Path: "/opt/conf/lib/libconf.so.1", Origin: "needed by /app/bin/app"},
		{Path: "/lib", Target: "usr/lib", Origin: "needed by /app/bin/app"},
		{Path: "/usr" + dir + "/libdef.so.1", Origin: "needed by /app/bin/app"},
	} {
		if !slices.Contains(files, f) {
			t.Errorf("%+v missing: %s", f, fileList(files))
		}
	}
}

func TestNodefaultlib(t *testing.T) {
	tr := newTree(t)
	dir := tr.buildSystemLibs()
	tr.exe("/app/bin/app", []string{"/usr" + dir + "/libdef.so.1"}, "-Wl,-z,nodefaultlib")
	var missing *MissingError
	if _, err := tr.resolve("/app/bin/app"); !errors.As(err, &missing) || len(missing.Searched) != 0 {
		t.Errorf("got %v, want a *MissingError with nothing searched", err)
	}
}

// ldconfig -r builds a real cache for the fake root; with ld.so.conf emptied afterwards, only the
// cache can find libconf.so.1.
func TestLdSoCacheInRoot(t *testing.T) {
	tr := newTree(t)
	dir := tr.buildSystemLibs()
	tr.exe("/app/bin/app", []string{"/opt/conf/lib/libconf.so.1", "/usr" + dir + "/libdef.so.1"})
	ldconfig := requireTool(t, "ldconfig")
	if out, err := exec.Command(ldconfig, "-X", "-r", tr.root).CombinedOutput(); err != nil {
		t.Skipf("ldconfig -r (needs chroot rights): %v\n%s", err, out)
	}
	tr.writeFile("/etc/ld.so.conf", nil, 0o644)
	r := tr.resolver()
	if len(r.cache) == 0 || len(r.confDirs) != 0 {
		t.Fatalf("cache %v, conf dirs %v: want a cache and no conf dirs", r.cache, r.confDirs)
	}
	files, err := r.Resolve("/app/bin/app")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, File{Path: "/opt/conf/lib/libconf.so.1", Origin: "needed by /app/bin/app"}) {
		t.Errorf("libconf.so.1 missing: %s", fileList(files))
	}
}

func TestMissingLibrary(t *testing.T) {
	tr := newTree(t)
	tr.lib("/app/lib/libgone.so.1", nil)
	tr.exe("/app/bin/app", []string{"/app/lib/libgone.so.1"}, "-Wl,-rpath,/app/lib")
	if err := os.Remove(tr.host("/app/lib/libgone.so.1")); err != nil {
		t.Fatal(err)
	}
	_, err := tr.resolve("/app/bin/app")
	var missing *MissingError
	if !errors.As(err, &missing) || missing.Lib != "libgone.so.1" || missing.NeededBy != "/app/bin/app" {
		t.Fatalf("got %v, want libgone.so.1 missing for /app/bin/app", err)
	}
	if len(missing.Searched) == 0 || missing.Searched[0] != "/app/lib" {
		t.Errorf("searched %q, want /app/lib first", missing.Searched)
	}
}

func TestSymlinksStayInsideRoot(t *testing.T) {
	tr := newTree(t)
	tr.exe("/app/bin/app", nil, "-static")
	tr.symlink("/up", "../../../../../../../../app/bin/app")
	tr.symlink("/abs", "/app/bin/app")
	tr.symlink("/passwd", "/etc/passwd") // the host's, were it to escape
	files, err := tr.resolve("/up", "/abs")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, files, []File{
		{Path: "/abs", Target: "/app/bin/app", Origin: "requested"},
		{Path: "/app/bin/app", Origin: "requested"},
		{Path: "/up", Target: "../../../../../../../../app/bin/app", Origin: "requested"},
	})
	if _, err := tr.resolve("/passwd"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/passwd") {
		t.Errorf("got %v, want /etc/passwd not to exist in the root", err)
	}
}

func TestSymlinkLoop(t *testing.T) {
	root := t.TempDir()
	for name, target := range map[string]string{"loop1": "loop2", "loop2": "/loop1"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewResolver(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve("/loop1"); !errors.Is(err, syscall.ELOOP) || !strings.Contains(err.Error(), "/loop1") {
		t.Errorf("got %v, want ELOOP naming /loop1", err)
	}
}
