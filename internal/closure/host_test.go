package closure

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// These tests resolve programs installed on the machine and check the answer against ldd, that is,
// against the real ld.so.

func requireFile(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Skipf("this machine has no %s: %v", p, err)
	}
}

func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found, cannot run this test: %v", name, err)
	}
	return p
}

// lddPaths returns the paths ldd prints for exe (libraries and the interpreter), as printed.
func lddPaths(t *testing.T, exe string) []string {
	t.Helper()
	out, err := exec.Command(requireTool(t, "ldd"), exe).CombinedOutput()
	if err != nil {
		t.Fatalf("ldd %s: %v\n%s", exe, err, out)
	}
	var paths []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			t.Fatalf("ldd %s: %s", exe, line)
		case len(f) >= 3 && f[1] == "=>" && path.IsAbs(f[2]):
			paths = append(paths, f[2])
		case len(f) >= 1 && path.IsAbs(f[0]):
			paths = append(paths, f[0])
		}
	}
	return paths
}

// realFiles returns the symlink-free paths of the given paths, as a sorted set.
func realFiles(t *testing.T, paths ...string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		rp, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rp)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// regularFiles returns the Paths of files that are not symlinks.
func regularFiles(files []File) []string {
	var out []string
	for _, f := range files {
		if f.Target == "" {
			out = append(out, f.Path)
		}
	}
	return out
}

// expectedFromLdd is what an executable needs according to ldd: itself and what ldd lists.
func expectedFromLdd(t *testing.T, exes ...string) []string {
	var all []string
	for _, exe := range exes {
		all = append(all, exe)
		all = append(all, lddPaths(t, exe)...)
	}
	return realFiles(t, all...)
}

func resolveHost(t testing.TB, paths ...string) []File {
	t.Helper()
	r, err := NewResolver("/")
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.Resolve(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkAgainstHost checks every File tells the truth about the host and that the list is sorted.
func checkAgainstHost(t *testing.T, files []File) {
	t.Helper()
	if !slices.IsSortedFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) }) {
		t.Error("result not sorted by Path")
	}
	for i, f := range files {
		if i > 0 && files[i-1].Path == f.Path {
			t.Errorf("%s listed twice", f.Path)
		}
		if f.Origin == "" {
			t.Errorf("%s: no Origin", f.Path)
		}
		fi, err := os.Lstat(f.Path)
		switch {
		case err != nil:
			t.Error(err)
		case f.Target != "":
			if target, _ := os.Readlink(f.Path); target != f.Target {
				t.Errorf("%s: Target %q, readlink says %q", f.Path, f.Target, target)
			}
		case !fi.Mode().IsRegular():
			t.Errorf("%s: not a symlink, but not a regular file either: %v", f.Path, fi.Mode())
		}
	}
}

// imageFinds reports whether p leads to a regular file in an image made of exactly files (parent
// directories added), following the symlinks in it.
func imageFinds(files []File, p string) bool {
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	cur, rest := "/", splitPath(p)
	for hops := 0; len(rest) > 0; {
		next := path.Join(cur, rest[0])
		rest = rest[1:]
		f, ok := byPath[next]
		switch {
		case ok && f.Target != "":
			if hops++; hops > maxSymlinks {
				return false
			}
			if path.IsAbs(f.Target) {
				cur = "/"
			}
			rest = append(splitPath(f.Target), rest...)
		case ok && len(rest) == 0:
			return true
		case ok:
			return false // a regular file used as a directory
		default:
			cur = next // must be a directory the image creates as a parent
		}
	}
	return false
}

func TestCurlMatchesLdd(t *testing.T) {
	const curl = "/usr/bin/curl"
	requireFile(t, curl)
	files := resolveHost(t, curl)
	checkAgainstHost(t, files)

	want := expectedFromLdd(t, curl)
	if got := regularFiles(files); !slices.Equal(got, want) {
		t.Errorf("regular files\n got %q\nwant %q (from ldd)", got, want)
	}
	for _, p := range append(lddPaths(t, curl), curl) {
		if !imageFinds(files, p) {
			t.Errorf("%s (as ldd names it) is not reachable in the image", p)
		}
	}
}

func TestCurlSymlinksAndOrigins(t *testing.T) {
	const curl = "/usr/bin/curl"
	requireFile(t, curl)
	files := resolveHost(t, curl)
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	// Whatever this host's layout, every symlink on the way to the interpreter must be listed.
	obj, err := readObjectFile(curl)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range hostLinks(t, obj.interp) {
		if f := byPath[l.path]; f.Target != l.target || f.Origin != "interpreter of "+curl {
			t.Errorf("symlink %s -> %s: got %+v", l.path, l.target, f)
		}
	}
	// And on this Debian-like host, spelled out:
	for p, target := range map[string]string{"/lib": "usr/lib", "/lib64": "usr/lib64"} {
		if hostTarget, err := os.Readlink(p); err == nil && hostTarget == target {
			if byPath[p].Target != target {
				t.Errorf("%s: got %+v, want a symlink to %s", p, byPath[p], target)
			}
		}
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libcurl.so.4"); err == nil {
		libcurl := realFiles(t, "/usr/lib/x86_64-linux-gnu/libcurl.so.4")[0]
		if f := byPath[libcurl]; f.Origin != "needed by "+curl {
			t.Errorf("%s: got %+v, want it needed by %s", libcurl, f, curl)
		}
	}
}

// hostLinks lists the symlinks met on the way to p on the host, by asking the kernel one
// component at a time.
func hostLinks(t *testing.T, p string) []link {
	var links []link
	cur, rest := "/", splitPath(p)
	for len(rest) > 0 {
		next := path.Join(cur, rest[0])
		rest = rest[1:]
		target, err := os.Readlink(next)
		if err != nil {
			cur = next
			continue
		}
		links = append(links, link{next, target})
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(splitPath(target), rest...)
	}
	return links
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "script")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShellScript(t *testing.T) {
	requireFile(t, "/bin/sh")
	script := writeScript(t, "#!/bin/sh\necho hello\n")
	files := resolveHost(t, script)
	checkAgainstHost(t, files)
	want := realFiles(t, append(expectedFromLdd(t, "/bin/sh"), script)...)
	if got := regularFiles(files); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if !imageFinds(files, "/bin/sh") {
		t.Error("/bin/sh is not reachable in the image")
	}
}

func TestEnvScript(t *testing.T) {
	requireFile(t, "/usr/bin/env")
	r, err := NewResolver("/")
	if err != nil {
		t.Fatal(err)
	}
	bash, err := r.Lookup("bash")
	if err != nil {
		t.Skipf("no bash in PATH: %v", err)
	}
	want := expectedFromLdd(t, "/usr/bin/env", bash)
	for _, line := range []string{"#!/usr/bin/env bash", "#! /usr/bin/env -S bash -e", "#!/usr/bin/env -iS LANG=C bash"} {
		t.Run(line, func(t *testing.T) {
			script := writeScript(t, line+"\necho hello\n")
			files := resolveHost(t, script)
			checkAgainstHost(t, files)
			if got := regularFiles(files); !slices.Equal(got, realFiles(t, append(want, script)...)) {
				t.Errorf("got %q\nwant %q plus the script", got, want)
			}
			if !imageFinds(files, bash) {
				t.Errorf("%s is not reachable in the image", bash)
			}
		})
	}
}

func TestEnvScriptMissingProgram(t *testing.T) {
	requireFile(t, "/usr/bin/env")
	script := writeScript(t, "#!/usr/bin/env kiln-no-such-program\n")
	r, _ := NewResolver("/")
	_, err := r.Resolve(script)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), script) {
		t.Errorf("got %v, want a not-found error naming %s", err, script)
	}
}

func TestStaticBinary(t *testing.T) {
	goTool := requireTool(t, "go")
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"go.mod":  "module static\n\ngo 1.21\n",
		"main.go": "package main\n\nfunc main() { println(\"static\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goTool, "build", "-o", "static", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "static")
	files := resolveHost(t, bin)
	if want := []File{{Path: bin, Origin: "requested"}}; !slices.Equal(files, want) {
		t.Errorf("got %+v, want %+v", files, want)
	}
}

func TestNotAnExecutable(t *testing.T) {
	data := writeScript(t, "just data\n")
	r, _ := NewResolver("/")
	for _, p := range []string{data, filepath.Dir(data), "relative/path"} {
		if _, err := r.Resolve(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Resolve(%s): got %v, want an error naming it", p, err)
		}
	}
}

func BenchmarkResolveCurl(b *testing.B) {
	requireFile(b, "/usr/bin/curl")
	for b.Loop() {
		resolveHost(b, "/usr/bin/curl") // a new Resolver each time: ld.so.cache parse included
	}
}

func BenchmarkResolveCurlWarm(b *testing.B) {
	requireFile(b, "/usr/bin/curl")
	r, err := NewResolver("/")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.Resolve("/usr/bin/curl"); err != nil {
			b.Fatal(err)
		}
	}
}
