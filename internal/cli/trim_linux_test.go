package cli

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func rssFileKB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatal("no RssFile")
	return 0
}

// trimResident must shrink the file-backed resident set (the executable's code and data pages)
// and leave the program working.
func TestTrimResident(t *testing.T) {
	before := rssFileKB(t)
	trimResident()
	after := rssFileKB(t)
	t.Logf("RssFile %d kB -> %d kB", before, after)
	if after >= before {
		t.Errorf("RssFile did not shrink: %d kB -> %d kB", before, after)
	}
}

// A Go binary linked by the C linker with BIND_NOW has its whole GOT in a read-only RELRO
// mapping the dynamic linker wrote at start. trimResident must leave that alone, or the next
// call into libc jumps through an unrelocated entry. The test builds this package's tests that
// way; the child trims, then makes threads and calls libc (pthread_create, getpwuid_r).
func TestTrimResidentKeepsRelocations(t *testing.T) {
	if os.Getenv("KILN_TRIM_CHILD") == "1" {
		trimResident()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				runtime.LockOSThread() // the thread ends with the goroutine: a new one next time
				if _, err := user.Current(); err != nil {
					panic(err)
				}
			})
		}
		wg.Wait()
		fmt.Println("trimmed and alive")
		return
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("SKIP: no gcc to link a cgo test binary")
	}
	exe := filepath.Join(t.TempDir(), "cli-bindnow.test")
	build := exec.Command("go", "test", "-c", "-o", exe,
		"-ldflags=-linkmode=external -extldflags=-Wl,-z,now", ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	if fixedAddress(exe) {
		t.Errorf("fixedAddress(%s) = true for a dynamically linked binary", exe)
	}
	cmd := exec.Command(exe, "-test.run=^TestTrimResidentKeepsRelocations$", "-test.v")
	cmd.Env = append(os.Environ(), "KILN_TRIM_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "trimmed and alive") {
		t.Fatalf("child after trimResident: %v\n%s", err, out)
	}
}

// fixedAddress must tell a static executable from a dynamically linked one at a fixed address.
func TestFixedAddress(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("SKIP: no gcc to build a non-PIE dynamic executable")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "m.c")
	if err := os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flags []string
		want  bool
	}{
		{[]string{"-no-pie"}, false},            // ET_EXEC, PT_INTERP, RELRO
		{[]string{"-static", "-no-pie"}, false}, // ET_EXEC, but glibc's IFUNCs are relocated into RELRO
		{[]string{"-pie"}, false},               // ET_DYN
	} {
		bin := filepath.Join(dir, strings.Join(c.flags, ""))
		args := append(append([]string{}, c.flags...), "-o", bin, src)
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Logf("gcc %v: %v\n%s", args, err, out)
			continue
		}
		if got := fixedAddress(bin); got != c.want {
			t.Errorf("fixedAddress(gcc %v) = %v, want %v", c.flags, got, c.want)
		}
	}
	// A static Go binary, as kiln is built: ET_EXEC, no interpreter, no RELRO.
	gosrc := filepath.Join(dir, "main.go")
	if err := os.WriteFile(gosrc, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "static-go")
	build := exec.Command("go", "build", "-o", bin, gosrc)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if !fixedAddress(bin) {
		t.Errorf("fixedAddress(static Go binary) = false, want true")
	}
}
