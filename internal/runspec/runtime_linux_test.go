package runspec

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A real OCI runtime is the peer that says whether a spec is right: these
// tests run specs from Build with crun (or runc) in a rootfs made of a
// static busybox, and check from inside what the container got.

// ociRuntime finds crun or runc, a static busybox and root, or skips.
func ociRuntime(t *testing.T) (runtime, busybox string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP (needs root): running a container with crun or runc")
	}
	for _, name := range []string{"crun", "runc"} {
		if p, err := exec.LookPath(name); err == nil {
			runtime = p
			break
		}
	}
	if runtime == "" {
		t.Skip("SKIP: neither crun nor runc is installed; the spec was not checked by a real runtime")
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStatic(p) {
			busybox = p
			break
		}
	}
	if busybox == "" {
		t.Skip("SKIP: no static busybox (apt-get install busybox-static); the spec was not checked by a real runtime")
	}
	return runtime, busybox
}

func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

var busyboxApplets = []string{
	"sh", "id", "cat", "grep", "head", "hostname", "env", "pwd", "echo", "mknod",
	"wc", "mount", "touch", "sort", "true", "ls", "ulimit",
}

// busyboxRoot makes a root filesystem: busybox, the test passwd and group,
// and the directories the processes work in. It is also the image's one layer.
func busyboxRoot(t *testing.T, busybox string) string {
	t.Helper()
	root := makeLayers(t, map[string]string{
		"etc/passwd": testPasswd, "etc/group": testGroup,
		"home/app": mkDir, "tmp": mkDir, "data": mkDir, "mnt": mkDir,
	})[0]
	bin, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	return root
}

// runContainer writes spec into a bundle and runs it to completion with the
// runtime; it returns the container's output. crun 1.8 refuses the hybrid
// cgroup layout of some hosts, so the runtime runs in a mount namespace of
// its own with the cgroup2 hierarchy under /sys/fs/cgroup/unified unmounted.
func runContainer(t *testing.T, runtime string, spec *specs.Spec) (string, error) {
	t.Helper()
	bundle := t.TempDir()
	// crun before 1.9 accepts only ociVersion 1.0.x; every field runspec
	// sets is in runtime-spec 1.0.2, so the older runtime can judge it.
	spec.Version = "1.0.2"
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	id := fmt.Sprintf("kiln-runspec-%d-%d", os.Getpid(), time.Now().UnixNano())
	script := `umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --root "$1" run --bundle "$2" "$3"`
	if filepath.Base(runtime) == "crun" {
		script = `umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --root "$1" --cgroup-manager=cgroupfs run --bundle "$2" "$3"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script, runtime, state, bundle, id)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &out, nil
	err = cmd.Run()
	t.Cleanup(func() { _ = exec.Command(runtime, "--root", state, "delete", "-f", id).Run() })
	return out.String(), err
}

// fields reads "key: value" lines of the container's output.
func fields(out string) map[string]string {
	m := map[string]string{}
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok && strings.HasPrefix(k, "@") {
			m[k[1:]] = strings.TrimSpace(v)
		}
	}
	return m
}

func capMask(names []string) string {
	var m uint64
	for _, n := range names {
		m |= 1 << slices.Index(allCaps, n)
	}
	return fmt.Sprintf("%016x", m)
}

// TestRuntimeAcceptsSpec runs the default spec of an image with user app,
// plus a read-only bind, a tmpfs and an env file, and checks from inside.
func TestRuntimeAcceptsSpec(t *testing.T) {
	runtime, busybox := ociRuntime(t)
	root := busyboxRoot(t, busybox)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
echo "@ids=$(id -u) $(id -g) $(id -G)"
echo "@hostname=$(hostname)"
echo "@pwd=$(pwd)"
echo "@home=$HOME"
echo "@hostenv=$HOSTNAME"
echo "@lang=$LANG"
echo "@fromfile=$FROMFILE"
echo "@nofile=$(ulimit -n)"
grep -E '^(CapBnd|CapEff|CapPrm|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | sed 's/:[[:space:]]*/=/; s/^/@/'
for f in $MASKED; do echo "@masked:$f=$(cat $f | wc -c)"; done
for d in $MASKEDDIRS; do echo "@masked:$d=$(ls -A $d | wc -l)"; done
echo "@ping=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\t' ' ')"
echo "@bind=$(cat /data/hello)"
touch /data/x 2>/dev/null && echo "@bindwrite=yes" || echo "@bindwrite=no"
touch /scratch/x && echo "@tmpfswrite=yes"
echo "@tmpfsopts=$(grep ' /scratch ' /proc/mounts | cut -d' ' -f4)"
echo "@sysopts=$(grep ' /sys ' /proc/mounts | cut -d' ' -f4)"
echo "@procsys=$(grep ' /proc/sys ' /proc/mounts | cut -d' ' -f4)"
echo "@done=yes"
`
	for _, a := range []string{"sed", "tr", "cut"} {
		_ = os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	// The masked paths this host has: files read empty, directories list empty.
	var files, dirs []string
	for _, p := range maskedPaths() {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		} else if err == nil {
			files = append(files, p)
		}
	}
	if len(files)+len(dirs) == 0 {
		t.Log("no masked path exists on this host: masking not checked")
	}
	envFile := writeFile(t, "app.env", "# test\nFROMFILE=env file value\nMASKED\nMASKEDDIRS\n")
	img := simpleImage()
	spec, err := Build(Options{
		ID: testID, Image: img, LayerDirs: []string{root}, RootPath: root,
		Args:     []string{"/bin/sh", "-c", script},
		EnvFiles: []string{envFile},
		HostEnv:  hostEnv("MASKED="+strings.Join(files, " "), "MASKEDDIRS="+strings.Join(dirs, " ")),
		Binds:    []Bind{{Source: hostDir, Destination: "/data", ReadOnly: true}},
		Tmpfs:    []string{"/scratch:size=1m"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runContainer(t, runtime, spec)
	if err != nil {
		t.Fatalf("%s run: %v\n%s", filepath.Base(runtime), err, out)
	}
	got := fields(out)
	want := map[string]string{
		"ids":        "1000 1000 1000 10 50 100",
		"hostname":   testID[:12],
		"pwd":        "/home/app",
		"home":       "/home/app",
		"hostenv":    testID[:12],
		"lang":       "C.UTF-8",
		"fromfile":   "env file value",
		"nofile":     hostNoFile(t), // inherited
		"CapBnd":     capMask(DefaultCaps()),
		"CapEff":     "0000000000000000", // a non-root user keeps none across exec, as in Docker
		"CapInh":     "0000000000000000",
		"CapAmb":     "0000000000000000",
		"NoNewPrivs": "1",
		"Seccomp":    "2",
		"ping":       "0 2147483647",
		"bind":       "from the host",
		"bindwrite":  "no",
		"tmpfswrite": "yes",
		"done":       "yes",
	}
	for _, p := range append(files, dirs...) {
		want["masked:"+p] = "0"
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	for k, opts := range map[string][]string{
		"tmpfsopts": {"rw", "nosuid", "nodev", "noexec", "size=1024k"},
		"sysopts":   {"ro", "nosuid", "nodev", "noexec"},
		"procsys":   {"ro"},
	} {
		have := strings.Split(got[k], ",")
		for _, o := range opts {
			if !slices.Contains(have, o) {
				t.Errorf("%s = %q, want %s", k, got[k], o)
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("container output:\n%s", out)
	}
}

// TestRuntimeRootDefaults runs as root in the container: Docker's 14
// capabilities are effective, and yet a device the host can open cannot be
// opened through mknod (the device cgroup), /proc/sysrq-trigger cannot be
// written, and nothing can be mounted.
func TestRuntimeRootDefaults(t *testing.T) {
	runtime, busybox := ociRuntime(t)
	root := busyboxRoot(t, busybox)
	dev, ok := openableHostDevice()
	if !ok {
		t.Skip("SKIP: no device node this host lets root open, to try mknod with")
	}
	script := fmt.Sprintf(`
grep -E '^(CapBnd|CapEff)' /proc/self/status | sed 's/:[[:space:]]*/=/; s/^/@/'
mknod /dev/probe %s && echo "@mknod=yes"
head -c 0 /dev/probe 2>/tmp/err; echo "@open=$?: $(cat /tmp/err)"
echo hello > /dev/null && echo "@devnull=yes"
echo x 2>/dev/null > /proc/sysrq-trigger; echo "@sysrq=$?"
mount -t tmpfs none /mnt 2>/dev/null; echo "@mount=$?"
echo "@done=yes"
`, dev)
	_ = os.Symlink("busybox", filepath.Join(root, "bin", "sed"))
	img := simpleImage()
	img.Config.User = ""
	img.Config.WorkingDir = ""
	spec, err := Build(Options{
		ID: testID, Image: img, LayerDirs: []string{root}, RootPath: root,
		Args: []string{"/bin/sh", "-c", script},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runContainer(t, runtime, spec)
	if err != nil {
		t.Fatalf("%s run: %v\n%s", filepath.Base(runtime), err, out)
	}
	got := fields(out)
	def := capMask(DefaultCaps())
	checks := map[string]func(string) bool{
		"CapBnd": func(v string) bool { return v == def },
		"CapEff": func(v string) bool { return v == def },
		"mknod":  func(v string) bool { return v == "yes" },
		"open": func(v string) bool {
			return strings.HasPrefix(v, "1:") && strings.Contains(v, "Operation not permitted")
		},
		"devnull": func(v string) bool { return v == "yes" },
		"sysrq":   func(v string) bool { return v != "0" && v != "" },
		"mount":   func(v string) bool { return v != "0" && v != "" },
		"done":    func(v string) bool { return v == "yes" },
	}
	for k, ok := range checks {
		if !ok(got[k]) {
			t.Errorf("%s = %q", k, got[k])
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("container output:\n%s", out)
	}
}

// TestRuntimePrivileged: every capability, no seccomp, /sys writable.
func TestRuntimePrivileged(t *testing.T) {
	runtime, busybox := ociRuntime(t)
	root := busyboxRoot(t, busybox)
	dev, hasDev := openableHostDevice()
	script := fmt.Sprintf(`
grep -E '^(CapEff|Seccomp|NoNewPrivs)' /proc/self/status | sed 's/:[[:space:]]*/=/; s/^/@/'
echo "@sysopts=$(grep ' /sys ' /proc/mounts | cut -d' ' -f4)"
echo "@masks=$(grep -c -E ' /(proc/(keys|timer_list|acpi|interrupts|sys)|sys/firmware) ' /proc/mounts)"
[ %t = true ] && mknod /dev/probe %s && head -c 0 /dev/probe && echo "@open=yes"
`, hasDev, dev)
	for _, a := range []string{"sed", "cut"} {
		_ = os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	img := simpleImage()
	img.Config.User = ""
	spec, err := Build(Options{
		ID: testID, Image: img, LayerDirs: []string{root}, RootPath: root, Privileged: true,
		Args: []string{"/bin/sh", "-c", script},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Only the capabilities this kernel has and this process may give (the
	// runtime's job in kiln; a sandbox may lack some, CAP_SYS_RESOURCE here).
	have := ownBoundingSet(t)
	c := spec.Process.Capabilities
	keep := func(names []string) []string {
		return slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(have, n) })
	}
	c.Bounding, c.Effective, c.Permitted = keep(c.Bounding), keep(c.Effective), keep(c.Permitted)
	out, err := runContainer(t, runtime, spec)
	if err != nil {
		t.Fatalf("%s run: %v\n%s", filepath.Base(runtime), err, out)
	}
	got := fields(out)
	want := map[string]string{
		"CapEff":     capMask(have),
		"Seccomp":    "0",
		"NoNewPrivs": "1",
		"masks":      "0",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if hasDev && got["open"] != "yes" {
		// Every device is allowed: the workload makes the nodes it needs.
		t.Errorf("a device made with mknod (%s) does not open", dev)
	}
	if !slices.Contains(strings.Split(got["sysopts"], ","), "rw") {
		t.Errorf("/sys is %q, want rw", got["sysopts"])
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("container output:\n%s", out)
	}
}

// openableHostDevice finds a device node the host lets this process open
// and that is not on the container's allow-list, as mknod arguments ("b 7 0").
func openableHostDevice() (string, bool) {
	for _, p := range []string{"/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/tty1"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		if err != nil {
			continue // the host itself refuses it: it would prove nothing
		}
		f.Close()
		typ := "c"
		if fi.Mode()&os.ModeCharDevice == 0 {
			typ = "b"
		}
		return fmt.Sprintf("%s %d %d", typ, unix.Major(st.Rdev), unix.Minor(st.Rdev)), true
	}
	return "", false
}

// hostNoFile is the RLIMIT_NOFILE a process the test starts gets.
func hostNoFile(t *testing.T) string {
	out, err := exec.Command("sh", "-c", "ulimit -n").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// ownBoundingSet is the capabilities of this process's bounding set that
// kiln knows.
func ownBoundingSet(t *testing.T) []string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var mask uint64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if mask, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out []string
	for i, c := range allCaps {
		if mask&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}
