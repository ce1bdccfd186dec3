package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// The real thing: kiln-init as /init of a hand-made initramfs with busybox as the app, booted
// in qemu's microvm under TCG (KVM is not dependable on every host: a nested PVM host hangs a
// stock kernel), talking through the three serial ports beside the console.

// guestModules are the drivers the NIC and 9P need, loaded by kiln-init when the kernel has them as
// modules (Debian's kernels do).
var guestModules = []string{"virtio_mmio", "virtio_net", "9pnet_virtio", "9p"}

// bootEnv is what every boot in a test shares: the kernel, and an initramfs built once.
type bootEnv struct {
	kernel, initrd string
	has9P          bool
}

func newBootEnv(t *testing.T, cfg bootconfig.Config) *bootEnv {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("SKIP: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("SKIP: busybox is not installed (apt-get install busybox-static)")
	}
	kernel, modDir := testKernel(t)
	mods, missing, err := moduleOrder(modDir, guestModules...)
	if err != nil {
		t.Skipf("SKIP: modules of %s: %v", kernel, err)
	}
	env := &bootEnv{kernel: kernel, has9P: !slices.Contains(missing, "9p") && !slices.Contains(missing, "9pnet_virtio")}
	if slices.Contains(missing, "virtio_mmio") {
		t.Skipf("SKIP: kernel %s has no virtio_mmio (missing %q)", kernel, missing)
	}
	if len(missing) > 0 {
		t.Logf("kernel %s lacks %q: those checks are skipped", kernel, missing)
	}
	for _, m := range mods {
		cfg.Modules = append(cfg.Modules, "/lib/modules/"+m)
	}
	env.initrd = buildInitramfs(t, cfg, busybox, modDir, mods)
	return env
}

// buildInitramfs writes kiln-init as /init, busybox with its applets in /bin, the modules and
// the config.
func buildInitramfs(t *testing.T, cfg bootconfig.Config, busybox, modDir string, mods []string) string {
	t.Helper()
	dir := t.TempDir()
	init := filepath.Join(dir, "kiln-init")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", init, "github.com/kiln-project/kiln/cmd/kiln-init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kiln-init: %v\n%s", err, out)
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	applets, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initramfs.cpio")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &newcWriter{w: bufio.NewWriter(f)}
	for _, d := range []string{"bin", "dev", "kiln", "lib", "lib/modules"} {
		c.dir(d)
	}
	c.charDev("dev/console", 5, 1)
	c.hostFile(t, "init", init)
	c.hostFile(t, "bin/busybox", busybox)
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" {
			c.symlink("bin/"+a, "busybox")
		}
	}
	c.file(strings.TrimPrefix(bootconfig.Path, "/"), 0o644, cfgJSON)
	for _, m := range mods {
		dirs := strings.Split(filepath.Dir(m), "/")
		for i := range dirs {
			c.dir("lib/modules/" + strings.Join(dirs[:i+1], "/"))
		}
		c.hostFile(t, "lib/modules/"+m, filepath.Join(modDir, m))
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// booted is what one boot left: the app's two streams, the status port, the kernel console.
type booted struct {
	stdout, stderr, status, console string
	elapsed                         time.Duration
}

// boot runs the VM with params appended to the kernel command line and qemu's extra args, and
// waits for it to power off.
func (e *bootEnv) boot(t *testing.T, params []string, extra ...string) booted {
	t.Helper()
	dir := t.TempDir()
	file := func(n string) string { return filepath.Join(dir, n) }
	args := []string{
		"-M", "microvm", "-accel", "tcg", "-m", "256M", "-smp", "1",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", e.kernel, "-initrd", e.initrd,
		"-append", strings.Join(slices.Concat([]string{"console=ttyS0", "panic=-1"}, bootconfig.TCGParams(), params), " "),
		"-serial", "file:" + file("console"),
	}
	ports := map[string]bootconfig.Port{"stdout": bootconfig.PortStdout, "stderr": bootconfig.PortStderr, "status": bootconfig.PortStatus}
	for name, p := range ports {
		args = append(args, "-chardev", "file,id="+name+",path="+file(name),
			"-device", fmt.Sprintf("isa-serial,chardev=%s,iobase=%#x,irq=%d", name, p.IOBase, p.IRQ))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "qemu-system-x86_64", append(args, extra...)...).CombinedOutput()
	b := booted{elapsed: time.Since(start)}
	read := func(n string) string { s, _ := os.ReadFile(file(n)); return string(s) }
	b.stdout, b.stderr, b.status, b.console = read("stdout"), read("stderr"), read("status"), read("console")
	b.status = strings.Replace(b.status, bootconfig.ReadyLine+"\n", "", 1) // the host may now signal: none here
	if err != nil {
		t.Fatalf("qemu: %v\n%s\nconsole:\n%s", err, out, b.console)
	}
	t.Logf("boot took %v; %s", b.elapsed.Round(time.Millisecond), initTimes(b.console))
	return b
}

// initTimes reads, from the kernel's printk times on the console (absent with quiet), when the
// kernel ran /init and when each of kiln-init's steps began.
func initTimes(console string) string {
	var b strings.Builder
	re := regexp.MustCompile(`\[\s*([0-9.]+)\] (Run /init.*|kiln-init: .*)`)
	for _, m := range re.FindAllStringSubmatch(console, -1) {
		fmt.Fprintf(&b, "\n  %8s s  %s", m[1], strings.TrimSpace(m[2]))
	}
	if b.Len() == 0 {
		return "(quiet: no kernel times)"
	}
	return "kernel times:" + b.String()
}

const bootScript = `echo "hello from $A $B"
echo "to stderr" >&2
echo "user $(id -u):$(id -g) host $(hostname) pwd $(pwd)"
ip -4 -o addr show; ip -4 route; cat /etc/resolv.conf
if [ -d /data ]; then cat /data/in.txt; echo "written by the guest" > /data/out.txt; fi
if [ -d /ro ]; then cat /ro/in.txt; touch /ro/new 2>/dev/null && echo "ro share written" || echo "ro share refused"; fi
sleep 600 &
exit 3`

func TestBootUnderQemu(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	cfg := bootconfig.Config{
		Args:     []string{"sh", "-c", bootScript},
		Env:      []string{"A=baked-a", "B=baked-b", "PATH=/bin"},
		User:     "1000:1000",
		Workdir:  "/home/app",
		Hostname: "kilnvm",
		Net:      bootconfig.UserNet(),
	}
	env := newBootEnv(t, cfg)
	share := t.TempDir()
	if err := os.Chmod(share, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "in.txt"), []byte("read from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	params := []string{"kiln.env.B=cmdline-b"}
	extra := []string{"-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"}
	if env.has9P {
		params = append(params, "kiln.mount=data:/data", "kiln.mount=rodata:/ro:ro")
		for i, tag := range []string{"data", "rodata"} {
			id := "fs" + strconv.Itoa(i)
			extra = append(extra, "-fsdev", "local,id="+id+",path="+share+",security_model=none",
				"-device", "virtio-9p-device,fsdev="+id+",mount_tag="+tag)
		}
	}
	b := env.boot(t, params, extra...)
	if b.status != StatusLine(3) {
		t.Fatalf("status port: %q, want %q\nstdout:\n%s\nstderr:\n%s\nconsole:\n%s", b.status, StatusLine(3), b.stdout, b.stderr, b.console)
	}
	for _, want := range []string{
		"hello from baked-a cmdline-b\n", // baked env, with the command line winning
		"user 1000:1000 host kilnvm pwd /home/app\n",
		"inet 10.0.2.15/24", "default via 10.0.2.2", "nameserver 10.0.2.3\n",
	} {
		if !strings.Contains(b.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, b.stdout)
		}
	}
	if b.stderr != "to stderr\n" {
		t.Errorf("stderr = %q, want %q", b.stderr, "to stderr\n")
	}
	t.Run("9p", func(t *testing.T) {
		if !env.has9P {
			t.Skipf("SKIP: kernel %s has no 9p or 9pnet_virtio (Debian's cloud kernel; set KILN_TEST_KERNEL to a linux-image-amd64 vmlinuz)", env.kernel)
		}
		if n := strings.Count(b.stdout, "read from the host\n"); n != 2 {
			t.Errorf("the guest read the file %d times, want 2 (through /data and /ro):\n%s", n, b.stdout)
		}
		if !strings.Contains(b.stdout, "ro share refused\n") {
			t.Errorf("the read-only share was not refused:\n%s", b.stdout)
		}
		if _, err := os.Stat(filepath.Join(share, "new")); err == nil {
			t.Errorf("a file was created through the read-only share")
		}
		if got, err := os.ReadFile(filepath.Join(share, "out.txt")); err != nil || string(got) != "written by the guest\n" {
			t.Errorf("out.txt on the host: %q, %v", got, err)
		}
	})
}

// TestBootErrors boots images that cannot run their app: the status and a message naming the
// problem must still reach the host through the ports.
func TestBootErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	env := newBootEnv(t, bootconfig.Config{Args: []string{"true"}, Env: []string{"PATH=/bin"}})
	for _, tc := range []struct {
		param, stderr string
		status        int
	}{
		{`kiln.args=["no-such-command"]`, "no-such-command: not found", StatusNotFound},
		{`kiln.args=["/dev/null"]`, "exec /dev/null: permission denied", StatusCannotExecute},
		{`kiln.workdir=relative`, `workdir "relative" is not absolute`, StatusSetupFailed},
	} {
		b := env.boot(t, []string{tc.param, "quiet"})
		if b.status != StatusLine(tc.status) {
			t.Errorf("%s: status port %q, want %q\nconsole:\n%s", tc.param, b.status, StatusLine(tc.status), b.console)
		}
		if !strings.Contains(b.stderr, tc.stderr) {
			t.Errorf("%s: stderr port %q, want %q", tc.param, b.stderr, tc.stderr)
		}
	}
}

// TestBootOutputComplete: everything the app writes on both streams at once reaches the host,
// in order, with the status, even though what it left running still holds the streams open.
func TestBootOutputComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	const n = 20000
	// printf's escapes, for 8 bits and a "\n" not made "\r\n" on the way.
	script := fmt.Sprintf(`seq 1 %d >&2 & seq 1 %d; wait; printf 'a\r\nb\377\000\t\n'; sleep 600 & exit 7`, n, n)
	env := newBootEnv(t, bootconfig.Config{Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"}})
	b := env.boot(t, []string{"quiet"})
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if b.status != StatusLine(7) {
		t.Errorf("status port %q, want %q\nconsole:\n%s", b.status, StatusLine(7), b.console)
	}
	seq := want.String()
	for _, s := range []struct{ name, got, want string }{
		{"stdout", b.stdout, seq + "a\r\nb\xff\x00\t\n"}, {"stderr", b.stderr, seq},
	} {
		if s.got != s.want {
			t.Errorf("%s: %d bytes, want %d; it ends %q", s.name, len(s.got), len(s.want), s.got[max(0, len(s.got)-40):])
		}
	}
}

// TestBootFewUARTs boots as a kernel built with CONFIG_SERIAL_8250_RUNTIME_UARTS=1 does
// (8250.nr_uarts=1). Without more, the driver registers one port, and the firmware's serial
// devices take its slot in turn: the app's output and the kernel's messages end up mixed on
// whichever port comes last. bootconfig.UARTsParam, later on the command line as in a bake's,
// brings the four ports back.
func TestBootFewUARTs(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	env := newBootEnv(t, bootconfig.Config{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 4"}, Env: []string{"PATH=/bin"}})
	b := env.boot(t, []string{"8250.nr_uarts=1", bootconfig.UARTsParam, "quiet"})
	if b.status != StatusLine(4) || b.stdout != "out\n" || b.stderr != "err\n" {
		t.Errorf("status %q, stdout %q, stderr %q; want %q, %q, %q\nconsole:\n%s",
			b.status, b.stdout, b.stderr, StatusLine(4), "out\n", "err\n", b.console)
	}
}
