package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	cmd := exec.Command(kiln, "--root", root, "run", "--rm", "busybox", "sh", "-c", "ls /proc/$$/fd; true")
	// fds 3-6 of kiln, not close-on-exec: the init overwrites 3 and 4 with its own, 5 and 6 would leak
	cmd.ExtraFiles = hostDirs(t, 4)
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

// watcherC scans every thread in the container's /proc for as long as argv[1] seconds and
// prints FOREIGN for any whose mount table or root is not the container's own: the helper of a
// `kiln exec` must never show there while it is still in the host's mount namespace (with
// CAP_SYS_PTRACE, /proc/PID/task/TID/root of such a thread is the host's root). It prints how
// many other processes it saw, so a run that saw none proves nothing.
const watcherC = `#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static int firstline(const char *p, char *buf, int n) {
	int fd = open(p, O_RDONLY); if (fd < 0) return -1;
	int r = read(fd, buf, n - 1); close(fd); if (r <= 0) return -1;
	buf[r] = 0; char *nl = strchr(buf, '\n'); if (nl) *nl = 0; return 0;
}
int main(int argc, char **argv) {
	char own[512], other[512], p[128]; struct stat rootst, st;
	firstline("/proc/self/mountinfo", own, sizeof own); stat("/", &rootst);
	int self = getpid(), seen[4096] = {0}, nseen = 0;
	time_t end = time(0) + atoi(argv[1]);
	while (time(0) < end) {
		DIR *d = opendir("/proc"); struct dirent *e;
		while ((e = readdir(d))) {
			int pid = atoi(e->d_name); if (pid <= 1 || pid == self || pid >= 4096) continue;
			if (!seen[pid]) { seen[pid] = 1; nseen++; }
			snprintf(p, sizeof p, "/proc/%d/task", pid); DIR *t = opendir(p); if (!t) continue; struct dirent *te;
			while ((te = readdir(t))) {
				if (te->d_name[0] == '.') continue;
				snprintf(p, sizeof p, "/proc/%d/task/%s/mountinfo", pid, te->d_name);
				if (firstline(p, other, sizeof other) == 0 && strcmp(own, other) != 0) printf("FOREIGN mounts pid %d: %s\n", pid, other);
				snprintf(p, sizeof p, "/proc/%d/task/%s/root/", pid, te->d_name);
				if (stat(p, &st) == 0 && (st.st_dev != rootst.st_dev || st.st_ino != rootst.st_ino)) printf("FOREIGN root pid %d\n", pid);
			}
			closedir(t);
		}
		closedir(d);
	}
	printf("saw %d other processes\n", nseen); return 0;
}
`

// A process of the container, even one with CAP_SYS_PTRACE, never sees a kiln exec's helper
// while the helper still has anything of the host (its mount table, its root).
func TestExecHelperNeverVisibleWithHostMounts(t *testing.T) {
	need(t, "gcc")
	root := t.TempDir()
	busyboxImage(t, root)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "watch.c"), watcherC, 0o644)
	run(t, "gcc", "-static", "-O2", "-o", filepath.Join(dir, "watch"), filepath.Join(dir, "watch.c"))
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: watcher\nbase: busybox\ncontents:\n  files: [{src: ./watch, dst: /watch, mode: 0755}]\n", 0o644)
	mustKiln(t, root, "build", dir)
	mustKiln(t, root, "run", "-d", "--name", "watch", "--cap-add", "SYS_PTRACE", "watcher", "/watch", "6")
	defer kilnIn(t, root, "rm", "-f", "watch")
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 15; i++ {
		mustKiln(t, root, "exec", "watch", "sleep", "0.1")
		mustKiln(t, root, "exec", "-u", "1000", "watch", "true")
	}
	mustKiln(t, root, "wait", "watch")
	out := mustKiln(t, root, "logs", "watch").stdout
	if strings.Contains(out, "FOREIGN") {
		t.Errorf("the container saw a kiln process with the host's mounts or root:\n%s", out)
	}
	if strings.Contains(out, "saw 0 other") || !strings.Contains(out, "other processes") {
		t.Errorf("the watcher saw none of the exec'd processes, so it proves nothing:\n%s", out)
	}
}

// The --init reaper never execs, so close-on-exec does not shed what it holds: once the workload
// runs it must hold nothing but stdio and the Go runtime's own anonymous inodes. (Seen here
// with CAP_SYS_PTRACE, which reaches /proc/1/fd; a descriptor of the host's could be reopened.)
func TestInitReaperHoldsNoHostDescriptors(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	cmd := exec.Command(kiln, "--root", root, "run", "--rm", "--init", "--cap-add", "SYS_PTRACE", "busybox",
		"sh", "-c", "sleep 0.2; ls -l /proc/1/fd")
	cmd.ExtraFiles = hostDirs(t, 4) // fds 3-6 of kiln
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v %s", err, out)
	}
	listed := 0
	for _, line := range strings.Split(string(out), "\n") {
		i := strings.Index(line, " -> ")
		if i < 0 {
			continue
		}
		listed++
		fields := strings.Fields(line[:i])
		fd, _ := strconv.Atoi(fields[len(fields)-1])
		if target := line[i+4:]; fd > 2 && !strings.HasPrefix(target, "anon_inode:") {
			t.Errorf("the reaper holds descriptor %d -> %s", fd, target)
		}
	}
	if listed < 3 {
		t.Fatalf("could not list the reaper's descriptors:\n%s", out)
	}
}

// hostDirs is n descriptors of one host directory, for kiln to inherit.
func hostDirs(t *testing.T, n int) []*os.File {
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	files := make([]*os.File, n)
	for i := range files {
		files[i] = dir
	}
	return files
}

// Where the device filter cannot hang in cgroup2 (a host with v1 controllers only: here, a
// mount namespace with the hybrid layout's cgroup2 unmounted), it is the v1 devices cgroup the
// early init joins while it starts. A disk must still stay closed, and the cgroup must go with
// the container.
func TestDeviceFilterOnV1Hierarchy(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/devices/devices.allow"); err != nil {
		t.Skip("SKIP: no v1 devices hierarchy at /sys/fs/cgroup/devices (a cgroup2-only host)")
	}
	need(t, "unshare")
	root := t.TempDir()
	busyboxImage(t, root)
	script := `mknod /tmp/disk b 8 0 2>/dev/null; head -c 1 /tmp/disk >/dev/null 2>&1 && echo ESCAPED; grep devices /proc/self/cgroup`
	cmd := exec.Command("unshare", "-m", "sh", "-c", `umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"`, "sh",
		kiln, "--root", root, "run", "--rm", "busybox", "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "ESCAPED") {
		t.Fatalf("%v\n%s", err, out)
	}
	_, rel, ok := strings.Cut(strings.TrimSpace(string(out)), ":devices:")
	if !ok || !strings.HasPrefix(rel, "/kiln/") {
		t.Fatalf("the container is not in a kiln devices cgroup:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/devices", rel)); err == nil {
		t.Errorf("the container's devices cgroup %s is left after it ended", rel)
	}
}
