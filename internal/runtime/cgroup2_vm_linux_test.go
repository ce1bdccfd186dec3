package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// vmTests are the cgroup tests run again on a cgroup2-only host.
var vmTests = []string{"TestCgroupLimitsWritten", "TestCgroupOOMKilled", "TestCgroupRefusedLimit",
	"TestCgroupCleanupFindsAll", "TestReadStats", "TestRunBasics"}

// vmInit mounts what the tests need, with cgroup2 alone at /sys/fs/cgroup as on a unified host,
// after moving to a tmpfs root (pivot_root cannot leave an initramfs).
const vmInit = `#!/bin/sh
export PATH=/bin
if [ "$1" != stage2 ]; then
	mount -t tmpfs -o size=400m tmpfs /newroot
	mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp
	cp -a /bin /init /runtime.test /newroot/
	exec switch_root /newroot /init stage2
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
echo "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
cd /tmp && /runtime.test -test.run '^(%s)$' -test.count=1 -test.v 2>&1
echo VM-TESTS-DONE
poweroff -f
`

// TestCgroupV2OnlyHost runs the cgroup tests in a qemu VM whose only cgroup hierarchy is
// cgroup2 with every controller (this CI host is hybrid): the limits written as cpu.max,
// memory.max..., the controllers enabled down the tree, OOM from memory.events.
func TestCgroupV2OnlyHost(t *testing.T) {
	needRoot(t)
	if os.Getenv("KILN_TEST_NO_VM") != "" {
		t.Skip("SKIP: KILN_TEST_NO_VM is set")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	bb, bbErr := exec.LookPath("busybox")
	switch {
	case goruntime.GOARCH != "amd64":
		t.Skip("SKIP: the VM test boots x86_64 only")
	case err != nil:
		t.Skip("SKIP: qemu-system-x86_64 is not installed")
	case len(kernels) == 0:
		t.Skip("SKIP: no kernel in /boot to boot")
	case bbErr != nil:
		t.Skip("SKIP: busybox-static is not installed (.ci/run installs it)")
	}
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := writeVMInitrd(initrd, bb); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// TCG, not KVM: nested KVM is unreliable in CI VMs (this one's aborts on an MSR), and the
	// tests are short.
	cmd := exec.CommandContext(ctx, qemu, "-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "2",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-serial", "stdio",
		"-kernel", kernels[len(kernels)-1], "-initrd", initrd, "-append", strings.Join(append([]string{"console=ttyS0", "panic=-1", "quiet"}, bootconfig.TCGParams()...), " "))
	out, err := cmd.CombinedOutput()
	t.Logf("VM (%s):\n%s", kernels[len(kernels)-1], out)
	if !bytes.Contains(out, []byte("VM-TESTS-DONE")) {
		t.Fatalf("the VM did not finish its tests: %v", err)
	}
	for _, name := range vmTests {
		if !bytes.Contains(out, []byte("--- PASS: "+name+" ")) {
			t.Errorf("%s did not pass on a cgroup2-only host", name)
		}
	}
}

// writeVMInitrd writes an uncompressed newc cpio with busybox, this test binary and vmInit.
func writeVMInitrd(path, busybox string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := &cpioWriter{w: f}
	w.dir("bin")
	w.dir("newroot")
	w.file("bin/busybox", 0o755, busybox)
	for _, a := range []string{"sh", "mount", "mkdir", "cp", "cat", "switch_root", "poweroff"} {
		w.symlink("bin/"+a, "busybox")
	}
	w.data("init", 0o755, []byte(fmt.Sprintf(vmInit, strings.Join(vmTests, "|"))))
	w.file("runtime.test", 0o755, self)
	w.trailer()
	return w.err
}

// cpioWriter writes the "newc" format the kernel unpacks into its initramfs.
type cpioWriter struct {
	w   io.Writer
	ino int
	n   int64
	err error
}

func (c *cpioWriter) header(name string, mode uint32, size int) {
	c.ino++
	fields := []uint32{uint32(c.ino), mode, 0, 0, 1, 0, uint32(size), 0, 0, 0, 0, uint32(len(name) + 1), 0}
	var b bytes.Buffer
	b.WriteString("070701")
	for _, v := range fields {
		fmt.Fprintf(&b, "%08x", v)
	}
	b.WriteString(name + "\x00")
	c.write(b.Bytes())
}

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	_, c.err = c.w.Write(p)
	c.n += int64(len(p))
	if pad := (4 - c.n%4) % 4; pad > 0 && c.err == nil {
		_, c.err = c.w.Write(make([]byte, pad))
		c.n += pad
	}
}

func (c *cpioWriter) dir(name string) { c.header(name, 0o040755, 0) }

func (c *cpioWriter) symlink(name, target string) {
	c.header(name, 0o120777, len(target))
	c.write([]byte(target))
}

func (c *cpioWriter) data(name string, perm uint32, b []byte) {
	c.header(name, 0o100000|perm, len(b))
	c.write(b)
}

func (c *cpioWriter) file(name string, perm uint32, src string) {
	b, err := os.ReadFile(src)
	if err != nil && c.err == nil {
		c.err = err
	}
	c.data(name, perm, b)
}

func (c *cpioWriter) trailer() { c.header("TRAILER!!!", 0, 0) }
