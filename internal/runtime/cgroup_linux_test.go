package runtime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-project/kiln/internal/devcgroup"
)

// needCgroups skips, loudly, where the host has no cgroup hierarchy to put limits in.
func needCgroups(t *testing.T, controllers ...string) {
	t.Helper()
	needRoot(t)
	var on2 []string
	if u := devcgroup.Unified(); u != "" {
		on2 = v2Controllers(u)
	}
	for _, c := range controllers {
		if v1Hierarchy(c) == "" && !slices.Contains(on2, c) {
			t.Skipf("SKIP: no %s cgroup controller on this host", c)
		}
	}
}

func limited(memory, pids int64, quota int64, shares uint64, cpus string) *specs.LinuxResources {
	period := uint64(100000)
	r := &specs.LinuxResources{}
	if memory > 0 {
		swap := 2 * memory
		r.Memory = &specs.LinuxMemory{Limit: &memory, Swap: &swap}
	}
	if pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: &pids}
	}
	if quota != 0 || shares != 0 || cpus != "" {
		r.CPU = &specs.LinuxCPU{Cpus: cpus}
		if quota != 0 {
			r.CPU.Quota, r.CPU.Period = &quota, &period
		}
		if shares != 0 {
			r.CPU.Shares = &shares
		}
	}
	return r
}

// controlFile reads a control file of the container's cgroup of controller c: the v1 file
// when c is on a v1 hierarchy, else the cgroup2 one.
func controlFile(t *testing.T, cg *cgroup, c, v1file, v2file string) string {
	t.Helper()
	dir, file := cg.v1[v1Hierarchy(c)], v1file
	if dir == "" {
		dir, file = cg.v2, v2file
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("%s limit: %v", c, err)
	}
	return strings.TrimSpace(string(b))
}

func TestCgroupLimitsWritten(t *testing.T) {
	needCgroups(t, "memory", "pids", "cpu", "cpuset")
	root := busyboxRoot(t)
	s := testSpec(root, "sh", "-c", "grep Cpus_allowed_list /proc/self/status; sleep 30")
	s.Linux.Resources = limited(32<<20, 20, 50000, 512, "0")
	id := "limits-" + filepath.Base(t.TempDir())
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(context.Background(), Config{ID: id, Spec: s, StateDir: t.TempDir(), Stdio: Stdio{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Signal(9); c.Wait() }()
	cg := c.cgroup
	for _, f := range []struct{ c, v1, v2, want string }{
		{"memory", "memory.limit_in_bytes", "memory.max", strconv.Itoa(32 << 20)},
		{"pids", "pids.max", "pids.max", "20"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "50000"},
		{"cpu", "cpu.shares", "cpu.weight", strconv.FormatUint(sharesOr(cg, 512), 10)},
		{"cpuset", "cpuset.cpus", "cpuset.cpus", "0"},
	} {
		if got := controlFile(t, cg, f.c, f.v1, f.v2); !strings.HasPrefix(got, f.want) {
			t.Errorf("%s: %s = %q, want %q", f.c, f.v1, got, f.want)
		}
	}
	procs := readInts(filepath.Join(cg.dirs()[0], "cgroup.procs"))
	if len(procs) == 0 || procs[0] != c.Pid() {
		t.Errorf("cgroup %s holds %v, want the container's process %d", cg.dirs()[0], procs, c.Pid())
	}
	waitFor(t, func() bool {
		b, _ := os.ReadFile(out.Name())
		return strings.Contains(string(b), "Cpus_allowed_list:\t0\n")
	})
	c.Signal(9)
	c.Wait()
	for _, d := range cg.dirs() {
		if isDir(d) {
			t.Errorf("cgroup %s is left after the container ended", d)
		}
	}
}

// sharesOr is what the cgroup holds for shares: the shares on v1, the weight on cgroup2.
func sharesOr(cg *cgroup, shares uint64) uint64 {
	if cg.v1[v1Hierarchy("cpu")] != "" {
		return shares
	}
	return sharesToWeight(shares)
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	// Up to 30 s: the cgroup2-only VM runs these tests emulated, beside whatever else the
	// machine is doing.
	for i := 0; i < 3000 && !ok(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !ok() {
		t.Fatal("condition never became true")
	}
}

func TestCgroupOOMKilled(t *testing.T) {
	needCgroups(t, "memory")
	root := busyboxRoot(t)
	s := testSpec(root, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	s.Linux.Resources = limited(16<<20, 0, 0, 0, "")
	out, exit := run(t, s)
	if exit.Code != 137 || !exit.OOMKilled {
		t.Errorf("64 MiB under a 16 MiB limit: exit %+v, want 137 and OOMKilled\n%s", exit, out)
	}
	s = testSpec(root, "dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1")
	s.Linux.Resources = limited(6<<20, 0, 0, 0, "") // the smallest limit kiln run takes: the init must fit
	if out, exit := run(t, s); exit.Code != 0 || exit.OOMKilled {
		t.Errorf("1 MiB under a 6 MiB limit: exit %+v, want 0 and no OOM\n%s", exit, out)
	}
}

// A limit the kernel refuses fails the start and leaves no cgroup behind.
func TestCgroupRefusedLimit(t *testing.T) {
	needCgroups(t, "cpu")
	root := busyboxRoot(t)
	s := testSpec(root, "true")
	s.Linux.Resources = limited(0, 0, 10, 0, "") // the kernel's smallest quota is 1000 µs
	id := "refused-" + filepath.Base(t.TempDir())
	_, err := Start(context.Background(), Config{ID: id, Spec: s, StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `write "10`) || !strings.Contains(err.Error(), "the kernel refuses this value") {
		t.Fatalf("quota of 10 µs: error %v, want the kernel's refusal naming the file", err)
	}
	if left := existingCgroup(id).dirs(); len(left) > 0 {
		t.Errorf("a refused start left cgroups behind: %v", left)
	}
}

// existingCgroup (kiln rm after the monitor was killed) finds every directory newCgroup made.
func TestCgroupCleanupFindsAll(t *testing.T) {
	needCgroups(t, "memory", "pids", "cpu", "cpuset")
	id := "cleanup-" + filepath.Base(t.TempDir())
	s := testSpec("/", "true")
	s.Linux.Resources = limited(32<<20, 20, 50000, 512, "0")
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	cg, err := newCgroup(id, s)
	if err != nil {
		t.Fatal(err)
	}
	if cg.v2fd != nil {
		cg.v2fd.Close()
	}
	made, found := cg.dirs(), existingCgroup(id).dirs()
	if !slices.Equal(slices.Sorted(slices.Values(made)), slices.Sorted(slices.Values(found))) {
		t.Errorf("newCgroup made %v, existingCgroup found %v", made, found)
	}
	if err := Cleanup(id); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if isDir(d) {
			t.Errorf("Cleanup left %s", d)
		}
	}
}

func TestReadStats(t *testing.T) {
	needCgroups(t, "memory")
	root := busyboxRoot(t)
	s := testSpec(root, "sh", "-c", "sleep 30 & sleep 30 & i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo done; wait")
	s.Linux.Resources = limited(64<<20, 0, 0, 0, "")
	id := "stats-" + filepath.Base(t.TempDir())
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(context.Background(), Config{ID: id, Spec: s, StateDir: t.TempDir(), Stdio: Stdio{Stdout: out}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Signal(9); c.Wait() }()
	waitFor(t, func() bool { b, _ := os.ReadFile(out.Name()); return strings.Contains(string(b), "done") })
	st, err := ReadStats(id, c.Pid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	if st.MemoryLimit != 64<<20 || st.Memory == 0 || st.Memory > st.MemoryLimit {
		t.Errorf("memory %d of %d, want some of 64 MiB", st.Memory, st.MemoryLimit)
	}
	if st.Pids != 3 {
		t.Errorf("pids %d, want 3 (sh and two sleeps)", st.Pids)
	}
	if st.CPU == 0 {
		t.Error("no CPU time counted after a loop of 100000 rounds")
	}
	if st.NetRx != 0 || st.NetTx != 0 {
		t.Errorf("net %d/%d in a network namespace with loopback only", st.NetRx, st.NetTx)
	}
	c.Signal(9)
	c.Wait()
	if _, err := ReadStats(id, c.Pid()); err == nil {
		t.Error("stats of an ended container: no error")
	}
}

// The cgroup2 weight for v1 shares keeps the ends and the default where the OCI runtimes put
// them (runc, crun: 2 -> 1, 1024 -> 39, 262144 -> 10000), and keeps the order.
func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for s := uint64(2); s < 262144; s += 997 {
		if sharesToWeight(s) > sharesToWeight(s+997) {
			t.Fatalf("weight of %d shares above that of %d", s, s+997)
		}
	}
}
