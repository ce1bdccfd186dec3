package devcgroup

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests re-run the test binary as a helper process born inside
// a test cgroup (CLONE_INTO_CGROUP), which tries device accesses and
// reports what they return.
const helperEnv = "KILN_DEVCGROUP_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helper prints its cgroup2 path, then for each step ("open r|w|rw PATH",
// "mknod b|c MAJOR MINOR PATH") a line: "ok" or the errno's name.
func helper(steps []string) int {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for line := range strings.Lines(string(cg)) {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			fmt.Print(path)
		}
	}
	for _, step := range steps {
		f := strings.Fields(step)
		switch {
		case len(f) == 3 && f[0] == "open":
			flags := map[string]int{"r": unix.O_RDONLY, "w": unix.O_WRONLY, "rw": unix.O_RDWR}[f[1]]
			fd, err := unix.Open(f[2], flags|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			fmt.Println(result(err))
		case len(f) == 5 && f[0] == "mknod":
			mode := uint32(unix.S_IFCHR)
			if f[1] == "b" {
				mode = unix.S_IFBLK
			}
			major, _ := strconv.ParseUint(f[2], 10, 32)
			minor, _ := strconv.ParseUint(f[3], 10, 32)
			fmt.Println(result(unix.Mknod(f[4], mode|0o600, int(unix.Mkdev(uint32(major), uint32(minor))))))
		default:
			fmt.Fprintf(os.Stderr, "bad step %q\n", step)
			return 2
		}
	}
	return 0
}

func result(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// runHelper runs steps in a helper process started inside the cgroup dir
// and returns one result a step.
func runHelper(t *testing.T, dir string, steps ...string) []string {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, steps...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("helper: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("start helper in %s: %v", dir, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if !strings.HasSuffix(lines[0], "/"+filepath.Base(dir)) {
		t.Fatalf("helper ran in cgroup %q, not %s", lines[0], dir)
	}
	return lines[1:]
}

// requireKernel skips unless this process may load BPF_PROG_TYPE_CGROUP_DEVICE
// programs and make cgroups in a cgroup2 hierarchy.
func requireKernel(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes cgroups and loads BPF programs")
	}
	if Unified() == "" {
		t.Skip("no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	}
	// r0 = 1; exit
	fd, err := loadLog([]byte{opMov, packRegs(regRet, 0), 0, 0, 1, 0, 0, 0, opExit, 0, 0, 0, 0, 0, 0, 0}, nil)
	switch {
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		t.Skipf("kernel cannot load BPF_PROG_TYPE_CGROUP_DEVICE programs (CONFIG_CGROUP_BPF): %v", err)
	case errors.Is(err, unix.EPERM):
		t.Skipf("may not load BPF programs: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	unix.Close(fd)
}

// newCgroup makes an empty cgroup2 cgroup for the test and removes it after.
func newCgroup(t testing.TB) string {
	t.Helper()
	requireKernel(t)
	dir, err := os.MkdirTemp(Unified(), fmt.Sprintf("kiln-test-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
	return dir
}

// removeCgroup retries while the kernel still counts a reaped helper in dir.
func removeCgroup(t testing.TB, dir string) {
	var err error
	for range 100 {
		if err = unix.Rmdir(dir); err != unix.EBUSY {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("remove cgroup %s: %v", dir, err)
	}
}

// device is a device node the host has, found in sysfs.
type device struct {
	name         string
	major, minor uint32
}

func readDevice(t *testing.T, name, devFile string) device {
	t.Helper()
	b, err := os.ReadFile(devFile)
	if err != nil {
		t.Fatal(err)
	}
	d := device{name: name}
	if _, err := fmt.Sscanf(string(b), "%d:%d", &d.major, &d.minor); err != nil {
		t.Fatalf("%s: %v", devFile, err)
	}
	return d
}

// hostMemDevice is a character device of the mem driver that Docker's list
// does not allow: /dev/mem, or /dev/kmsg on kernels built without it.
func hostMemDevice(t *testing.T) device {
	for _, name := range []string{"mem", "kmsg", "port"} {
		if _, err := os.Stat("/sys/class/mem/" + name); err == nil {
			return readDevice(t, name, "/sys/class/mem/"+name+"/dev")
		}
	}
	t.Fatal("no mem, kmsg or port in /sys/class/mem")
	return device{}
}

// hostDisk is the host's first disk that this process can open: a block
// device backed by hardware if one is not refused already (some sandboxes
// do), else a loop or zram device.
func hostDisk(t *testing.T, dir string) device {
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		t.Fatal(err)
	}
	var disks, others []device
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "sr") || strings.HasPrefix(name, "fd") {
			continue // no medium, nothing to open
		}
		d := readDevice(t, name, filepath.Join("/sys/block", name, "dev"))
		if _, err := os.Stat(filepath.Join("/sys/block", name, "device")); err == nil {
			disks = append(disks, d)
		} else {
			others = append(others, d)
		}
	}
	for _, d := range append(disks, others...) {
		node := filepath.Join(dir, "probe-"+d.name)
		if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(d.major, d.minor))); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(node, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
			return d
		}
		t.Logf("block device %s %d:%d: %v already, without a program; trying another", d.name, d.major, d.minor, err)
	}
	t.Fatal("no block device in /sys/block can be opened")
	return device{}
}

// nodeDir is a directory device nodes can be made and opened in.
func nodeDir(t *testing.T) string {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_NODEV != 0 {
		t.Fatalf("%s is on a nodev mount; point TMPDIR elsewhere", dir)
	}
	return dir
}

func checkResults(t *testing.T, what string, steps, got, want []string) {
	t.Helper()
	for i := range steps {
		if got[i] != want[i] {
			t.Errorf("%s: %s: %s, want %s", what, steps[i], got[i], want[i])
		}
	}
}

// TestAttachDockerDefault is the reason the package exists: with Docker's
// list, a process that may mknod can make a node for the host's memory or
// disk but not open it. The same steps in the same cgroup before Attach
// show that nothing else stops them.
func TestAttachDockerDefault(t *testing.T) {
	cg := newCgroup(t)
	dir := nodeDir(t)
	mem, disk := hostMemDevice(t), hostDisk(t, dir)
	t.Logf("cgroup %s; char device %s %d:%d; disk %s %d:%d", cg, mem.name, mem.major, mem.minor, disk.name, disk.major, disk.minor)
	steps := func(run string) []string {
		memNode, diskNode := filepath.Join(dir, run+"-"+mem.name), filepath.Join(dir, run+"-"+disk.name)
		return []string{
			"open rw /dev/null",
			fmt.Sprintf("mknod c %d %d %s", mem.major, mem.minor, memNode),
			"open r " + memNode,
			fmt.Sprintf("mknod b %d %d %s", disk.major, disk.minor, diskNode),
			"open r " + diskNode,
			fmt.Sprintf("mknod c 1 3 %s/%s-null", dir, run),
			fmt.Sprintf("open rw %s/%s-null", dir, run),
		}
	}

	before := steps("before")
	checkResults(t, "without program", before, runHelper(t, cg, before...),
		[]string{"ok", "ok", "ok", "ok", "ok", "ok", "ok"})

	if err := Attach(cg, dockerDefault()); err != nil {
		t.Fatal(err)
	}
	after := steps("after")
	checkResults(t, "with Docker's list", after, runHelper(t, cg, after...),
		[]string{"ok", "ok", "EPERM", "ok", "EPERM", "ok", "ok"})
}

// TestAttachAccessBits checks the bit for each of r, w and m, and a deny
// that takes away part of an earlier allow, against the kernel.
func TestAttachAccessBits(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  []string // open r, open w, open rw, mknod 1:3
	}{
		{"none", nil, []string{"EPERM", "EPERM", "EPERM", "EPERM"}},
		{"r", []specs.LinuxDeviceCgroup{dev(true, "c", num(1), num(3), "r")}, []string{"ok", "EPERM", "EPERM", "EPERM"}},
		{"w", []specs.LinuxDeviceCgroup{dev(true, "c", num(1), num(3), "w")}, []string{"EPERM", "ok", "EPERM", "EPERM"}},
		{"m", []specs.LinuxDeviceCgroup{dev(true, "c", nil, nil, "m")}, []string{"EPERM", "EPERM", "EPERM", "ok"}},
		{"block only", []specs.LinuxDeviceCgroup{dev(true, "b", nil, nil, "rwm")}, []string{"EPERM", "EPERM", "EPERM", "EPERM"}},
		{"all but w", []specs.LinuxDeviceCgroup{dev(true, "a", nil, nil, "rwm"), dev(false, "c", num(1), num(3), "w")}, []string{"ok", "EPERM", "EPERM", "ok"}},
		{"denied then allowed", []specs.LinuxDeviceCgroup{dev(false, "c", num(1), nil, "rw"), dev(true, "", num(1), num(3), "")}, []string{"ok", "ok", "ok", "ok"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cg := newCgroup(t)
			dir := nodeDir(t)
			if err := Attach(cg, c.rules); err != nil {
				t.Fatal(err)
			}
			steps := []string{"open r /dev/null", "open w /dev/null", "open rw /dev/null", "mknod c 1 3 " + dir + "/null"}
			checkResults(t, listRules(c.rules), steps, runHelper(t, cg, steps...), c.want)
		})
	}
}

// TestVerifierAccepts loads programs for random rule lists and for edge
// cases: the interpreter in vm_linux_test.go is not the verifier.
func TestVerifierAccepts(t *testing.T) {
	requireKernel(t)
	lists := [][]specs.LinuxDeviceCgroup{
		nil,
		{dev(true, "", nil, nil, "")},
		{dev(false, "", nil, nil, "rwm")},
		{dev(true, "a", nil, nil, "rwm"), dev(false, "a", nil, nil, "rwm")},
		{dev(true, "c", num(4095), num(1<<20-1), "m"), dev(true, "b", num(1<<31-1), num(0), "r")},
		dockerDefault(),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		lists = append(lists, randomRules(rng))
	}
	for _, rules := range lists {
		prog, err := Compile(rules)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := load(prog)
		if err != nil {
			insns, _ := decode(prog)
			t.Fatalf("%v\nrules:\n%s\nprogram:\n%s", err, listRules(rules), disasm(insns))
		}
		unix.Close(fd)
	}
}

func TestLoadShowsVerifierLog(t *testing.T) {
	requireKernel(t)
	_, err := load([]byte{opExit, 0, 0, 0, 0, 0, 0, 0}) // exit without setting r0
	if err == nil || !strings.Contains(err.Error(), "verifier log:") || !strings.Contains(err.Error(), "R0") {
		t.Fatalf("load = %v, want the verifier's complaint about R0", err)
	}
	t.Log(err)
}

func TestAttachErrors(t *testing.T) {
	requireKernel(t)
	notCgroup := t.TempDir()
	for _, c := range []struct {
		dir   string
		rules []specs.LinuxDeviceCgroup
		want  string
	}{
		{notCgroup, nil, "attach device filter to " + notCgroup + ": open cgroup: not a cgroup2 directory"},
		{notCgroup + "/nope", nil, "attach device filter to " + notCgroup + "/nope: open cgroup: no such file or directory"},
		{notCgroup, []specs.LinuxDeviceCgroup{dev(true, "x", nil, nil, "")}, "attach device filter to " + notCgroup + `: device rule 0 (allow x *:* ): type "x": want a, b or c`},
	} {
		if err := Attach(c.dir, c.rules); err == nil || err.Error() != c.want {
			t.Errorf("Attach = %v, want %s", err, c.want)
		}
	}
}

// TestUnified compares Unified with the mount table.
func TestUnified(t *testing.T) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	cgroup2 := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ID parent major:minor root mountpoint options... - fstype source superoptions
		fields := strings.Fields(s.Text())
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" {
				cgroup2[fields[4]] = true
			}
		}
	}
	want := ""
	switch {
	case cgroup2["/sys/fs/cgroup"]:
		want = "/sys/fs/cgroup"
	case cgroup2["/sys/fs/cgroup/unified"]:
		want = "/sys/fs/cgroup/unified"
	}
	if got := Unified(); got != want {
		t.Errorf("Unified() = %q, want %q (cgroup2 mounts: %v)", got, want, cgroup2)
	}
	t.Logf("Unified() = %q", want)
}

// BenchmarkAttach times Attach of Docker's list to a fresh cgroup, as on
// the container start path (making and removing the cgroup not counted).
func BenchmarkAttach(b *testing.B) {
	requireKernel(b)
	rules := dockerDefault()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, err := os.MkdirTemp(Unified(), fmt.Sprintf("kiln-bench-%d-", os.Getpid()))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		err = Attach(dir, rules)
		b.StopTimer()
		removeCgroup(b, dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
