package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each attempt runs inside a real container with the default security and must fail. The
// command prints ESCAPED only if the attempt worked.
func TestEscapesFail(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	hostMarker := fmt.Sprintf("kiln-escape-%d", os.Getpid())
	attempts := map[string]string{
		"see host processes":             `[ "$(ls /proc | grep -c '^[0-9]')" -gt 10 ] && echo ESCAPED; true`,
		"remount / read-write and mount": `mount -o remount,rw / 2>/dev/null && echo ESCAPED; mount -t tmpfs x /mnt 2>/dev/null && echo ESCAPED; true`,
		"write /proc/sys":                `echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo ESCAPED; true`,
		"read /proc/kcore":               `[ -s /proc/kcore ] && head -c 16 /proc/kcore >/dev/null 2>&1 && [ "$(head -c 16 /proc/kcore | wc -c)" -gt 0 ] && echo ESCAPED; true`,
		"mknod and open a disk":          `mknod /tmp/disk b 8 0 2>/dev/null; head -c 1 /tmp/disk >/dev/null 2>&1 && echo ESCAPED; mknod /tmp/mem c 1 1 2>/dev/null; head -c 1 /tmp/mem >/dev/null 2>&1 && echo ESCAPED; true`,
		"load a module":                  `touch /sys/module/x 2>/dev/null && echo ESCAPED; echo /x > /proc/sys/kernel/modprobe 2>/dev/null && echo ESCAPED; true`,
		"ptrace outside (pid 1 of host)": `[ "$(cat /proc/1/comm)" = sh ] || echo ESCAPED; true`,
		"sysrq trigger":                  `echo h > /proc/sysrq-trigger 2>/dev/null && echo ESCAPED; true`,
		"keys and keyrings":              `cat /proc/keys 2>/dev/null | grep -q . && echo ESCAPED; true`,
	}
	for name, script := range attempts {
		t.Run(name, func(t *testing.T) {
			r := kilnIn(t, root, "run", "--rm", "busybox", "sh", "-c", script)
			if r.code != 0 || strings.Contains(r.stdout, "ESCAPED") {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join("/tmp", hostMarker)); err == nil {
		t.Errorf("a container wrote on the host")
	}
}

// A symlink in the image pointing out of the root must not redirect a volume mount or a
// masked path onto the host.
func TestSymlinksInImageStayInside(t *testing.T) {
	root := t.TempDir()
	need(t, "busybox")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: containers need root")
	}
	hostDir := t.TempDir()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: evil
contents:
  files: [{src: /bin/busybox, dst: /usr/bin/busybox, mode: 0755}]
  symlinks:
    - {path: /bin, target: usr/bin}
    - {path: /usr/bin/sh, target: busybox}
    - {path: /usr/bin/touch, target: busybox}
    - {path: /usr/bin/ls, target: busybox}
    - {path: /escape, target: `+hostDir+`}
    - {path: /mnt, target: /../../../`+hostDir+`}
config:
  cmd: [/bin/sh]
`, 0o644)
	mustKiln(t, root, "build", dir)
	vol := t.TempDir()
	// -v onto /mnt, a symlink climbing out: the mount lands inside the root.
	r := kilnIn(t, root, "run", "--rm", "-v", vol+":/mnt", "evil", "sh", "-c", "touch /mnt/through-volume; touch /escape/through-link; true")
	if r.code != 0 && !strings.Contains(r.stderr, "/mnt") {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	// Resolving /mnt inside the root leads to a directory the image lacks: kiln refuses (fails
	// closed) rather than create it; either way nothing may reach the host directory.
	r = kilnIn(t, root, "run", "--rm", "evil", "sh", "-c", "touch /escape/through-link; true")
	if r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	for _, f := range []string{"through-volume", "through-link"} {
		if _, err := os.Stat(filepath.Join(hostDir, f)); err == nil {
			t.Errorf("%s: a symlink in the image reached the host directory %s", f, hostDir)
		}
	}
}

// The kiln binary cannot be overwritten from inside a container through /proc/PID/exe of a
// kiln process (CVE-2019-5736): here, the --init reaper, which stays the kiln binary as PID 1.
func TestHostBinaryNotWritable(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	before, err := os.ReadFile(kiln)
	if err != nil {
		t.Fatal(err)
	}
	r := kilnIn(t, root, "run", "--rm", "--init", "busybox", "sh", "-c",
		`readlink /proc/1/exe; echo pwned > /proc/1/exe 2>/dev/null && echo ESCAPED; true`)
	if strings.Contains(r.stdout, "ESCAPED") {
		t.Errorf("wrote /proc/1/exe: %s %s", r.stdout, r.stderr)
	}
	after, _ := os.ReadFile(kiln)
	if string(before) != string(after) {
		t.Fatalf("the kiln binary on the host changed")
	}
}

// A descriptor kiln inherits from its caller must not reach the container (CVE-2024-21626 was
// such a leak).
func TestInheritedDescriptorsDoNotLeak(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	hostDir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	cmd := exec.Command(kiln, "--root", root, "run", "--rm", "busybox", "sh", "-c", "ls /proc/$$/fd; true")
	// fds 3-6 of kiln, not close-on-exec: the init overwrites 3 and 4 with its own, 5 and 6 would leak
	cmd.ExtraFiles = []*os.File{hostDir, hostDir, hostDir, hostDir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v %s", err, out)
	}
	if fds := strings.Fields(string(out)); strings.Join(fds, " ") != "0 1 2" {
		t.Errorf("the container's shell holds descriptors %v, want 0 1 2", fds)
	}
}

// A fifo the image has at a bind mount's target must not hang the start (opening it would wait
// for a writer forever).
func TestBindOverImageFifo(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: fifo\nbase: busybox\nsteps:\n  - busybox mkfifo /etc/x\n", 0o644)
	mustKiln(t, root, "build", dir)
	host := filepath.Join(t.TempDir(), "f")
	writeFile(t, host, "bound\n", 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kiln, "--root", root, "run", "--rm", "-v", host+":/etc/x", "fifo", "cat", "/etc/x").CombinedOutput()
	if err != nil || string(out) != "bound\n" {
		t.Errorf("run with a bind over the image's fifo: %v %q", err, out)
	}
}

// A host file given as stdio (kiln run ... > file, < file) must not be reachable through
// /proc/self/fd: the container gets a pipe, kiln copies.
func TestStdioFilesAreShielded(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in")
	writeFile(t, in, "original\n", 0o444)
	stdin, _ := os.Open(in)
	cmd := exec.Command(kiln, "--root", root, "run", "--rm", "-i", "busybox", "sh", "-c",
		"echo hello; chmod 4755 /proc/self/fd/1; echo pwned > /proc/self/fd/0; true")
	var stderr strings.Builder
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v %s", err, stderr.String())
	}
	out.Close()
	if fi, _ := os.Stat(out.Name()); fi.Mode()&os.ModeSetuid != 0 || fi.Mode().Perm() != 0o644 {
		t.Errorf("the container changed the mode of kiln's stdout file: %v", fi.Mode())
	}
	if b, _ := os.ReadFile(out.Name()); string(b) != "hello\n" {
		t.Errorf("stdout file: %q", b)
	}
	if b, _ := os.ReadFile(in); string(b) != "original\n" {
		t.Errorf("the container rewrote kiln's stdin file: %q", b)
	}
}
