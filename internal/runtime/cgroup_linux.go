package runtime

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/devcgroup"
)

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroup is the container's cgroups: the device allow-list, which keeps a container that may
// mknod (CAP_MKNOD, as in Docker) from opening a host disk, and its resource limits.
//
// Where the host has a cgroup2 hierarchy (cgroup2-only, or hybrid beside v1 controllers) the
// container always gets a cgroup2 directory: the device filter hangs there, and the init is
// born in it (CLONE_INTO_CGROUP). An early init (see Early) is born in it before the filter
// and the limits are written, which is still before its workload can start. A limit goes to
// the cgroup2 directory when its controller is bound to cgroup2, else to a v1 hierarchy the init
// joins before its workload starts. A v1 hierarchy is created only when a limit needs it:
// joining one costs an RCU grace period.
type cgroup struct {
	v1   map[string]string // v1 hierarchy name ("memory", "devices", "cpu,cpuacct"...) -> directory
	v2   string            // cgroup2 directory, or ""
	v2fd *os.File          // open v2 directory, for CLONE_INTO_CGROUP
	in1  map[string]bool   // v1 directories the init is in already (an early init's)
	// An early init's v1 directory where the container's own is elsewhere: removed at the end.
	extra1 []string
}

// cgroup2Only reports whether /sys/fs/cgroup is a cgroup2 mount (a unified, v2-only host).
func cgroup2Only() bool {
	var st unix.Statfs_t
	return unix.Statfs(cgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func cgroupPath(id string, s *specs.Spec) string {
	if s.Linux.CgroupsPath != "" {
		return filepath.Clean("/" + s.Linux.CgroupsPath)
	}
	return "/kiln/" + id
}

// newCgroup makes the container's cgroups and writes its limits, before any of its processes
// exist (but an early init, already in the cgroup2 directory). On error nothing is left behind.
func newCgroup(id string, s *specs.Spec) (*cgroup, error) {
	cg, err := makeCgroup(id, s)
	if err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// makeCgroup is newCgroup leaving the cleanup after an error to the caller: the cgroup2
// directory may hold an early init, to be stopped first.
func makeCgroup(id string, s *specs.Spec) (*cgroup, error) {
	rel := cgroupPath(id, s)
	r := s.Linux.Resources
	if r == nil {
		r = &specs.LinuxResources{}
	}
	cg := &cgroup{v1: map[string]string{}}
	return cg, cg.create(rel, r)
}

func (cg *cgroup) create(rel string, r *specs.LinuxResources) error {
	u := devcgroup.Unified()
	var on2 []string // controllers bound to cgroup2 (none on a hybrid host)
	if u != "" {
		on2 = v2Controllers(u)
	}
	var need1 []string // v1 hierarchies the limits need
	for _, c := range limitControllers(r) {
		switch {
		case slices.Contains(on2, c):
		case v1Hierarchy(c) != "":
			need1 = append(need1, c)
		default:
			return fmt.Errorf("cgroup: this host has no %s controller, needed for the container's %s limit", c, c)
		}
	}
	if u != "" {
		if err := cg.create2(u, rel, r, on2); err != nil {
			return err
		}
	} else if len(r.Devices) > 0 && v1Hierarchy("devices") != "" {
		need1 = append(need1, "devices")
	}
	for _, c := range need1 {
		if err := cg.create1(c, rel, r); err != nil {
			return err
		}
	}
	return nil
}

// create2 makes the cgroup2 directory, with the controllers of on2 that the limits need
// enabled for it, the device filter attached and the limits written. The controllers Docker
// always has (memory, cpu, io, pids) are enabled too where the host allows, for `kiln stats` and
// OOM events: on cgroup2 that costs no migration.
func (cg *cgroup) create2(u, rel string, r *specs.LinuxResources, on2 []string) error {
	dir := filepath.Join(u, rel)
	var need []string
	for _, c := range limitControllers(r) {
		if slices.Contains(on2, c) {
			need = append(need, c)
		}
	}
	if err := enableControllers(u, filepath.Dir(dir), need); err != nil {
		return err
	}
	enableControllers(u, filepath.Dir(dir), slices.DeleteFunc(slices.Clone(on2), func(c string) bool {
		return c == "cpuset" || slices.Contains(need, c)
	})) // best effort: only stats miss them
	cg.v2 = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	if len(r.Devices) > 0 {
		if err := devcgroup.Attach(dir, r.Devices); err != nil {
			return err
		}
	}
	if err := setLimits2(dir, r, need); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	cg.v2fd = f
	return nil
}

// create1 makes the container's directory in the v1 hierarchy of controller c and writes the
// limits that belong there.
func (cg *cgroup) create1(c, rel string, r *specs.LinuxResources) error {
	h := v1Hierarchy(c)
	dir := filepath.Join(cgroupRoot, h, rel)
	cg.v1[h] = dir // before it exists: a failure half way removes it
	if c == "cpuset" {
		if err := mkdirCpuset(filepath.Join(cgroupRoot, h), rel); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s cgroup: %w", c, err)
	}
	return setLimits1(c, dir, r)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// prepare makes the init start inside the cgroup where the kernel can do that atomically.
func (cg *cgroup) prepare(attr *syscall.SysProcAttr) {
	if cg != nil && cg.v2fd != nil {
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cg.v2fd.Fd())
	}
}

// adopt takes dir, a v1 directory made for an early init (or ""), as one of the container's,
// to remove at the end whether the limits needed it or not.
func (cg *cgroup) adopt(dir string) {
	if dir == "" {
		return
	}
	h := v1Hierarchy("devices") // where Early.cgroup made it
	if cur, ok := cg.v1[h]; ok && cur != dir {
		cg.extra1 = append(cg.extra1, dir) // another path for the same hierarchy: remove it too
		return
	}
	cg.v1[h] = dir
}

// joinedBy records whether the early init is in v1 directory dir already: join skips it then.
func (cg *cgroup) joinedBy(dir string, in bool) {
	if !in {
		return
	}
	if cg.in1 == nil {
		cg.in1 = map[string]bool{}
	}
	cg.in1[dir] = true
}

// join moves pid into the v1 hierarchies (before the init has read its config, so before it
// can do anything).
func (cg *cgroup) join(pid int) error {
	if cg == nil {
		return nil
	}
	for _, h := range slices.Sorted(maps.Keys(cg.v1)) {
		if cg.in1[cg.v1[h]] {
			continue
		}
		if err := writeFile(cg.v1[h], "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	return nil
}

// remove deletes the container's cgroups once its processes are gone.
func (cg *cgroup) remove() error {
	if cg == nil {
		return nil
	}
	if cg.v2fd != nil {
		cg.v2fd.Close()
	}
	var errs []error
	for _, d := range cg.dirs() {
		errs = append(errs, rmdirRetry(d))
	}
	return errors.Join(errs...)
}

func (cg *cgroup) dirs() []string {
	var ds []string
	for _, d := range cg.v1 {
		ds = append(ds, d)
	}
	ds = append(ds, cg.extra1...)
	if cg.v2 != "" {
		ds = append(ds, cg.v2)
	}
	return ds
}

// rmdirRetry removes a cgroup directory; it can stay busy for a moment after its last process.
func rmdirRetry(d string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Rmdir(d)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return &os.PathError{Op: "remove cgroup", Path: d, Err: err}
}

// existingCgroup is the cgroup newCgroup made for container id with no cgroupsPath in its spec,
// to remove it; directories that do not exist are left out.
func existingCgroup(id string) *cgroup {
	rel := "/kiln/" + id
	cg := &cgroup{v1: map[string]string{}}
	for _, c := range v1Controllers {
		if h := v1Hierarchy(c); h != "" && isDir(filepath.Join(cgroupRoot, h, rel)) {
			cg.v1[h] = filepath.Join(cgroupRoot, h, rel)
		}
	}
	if u := devcgroup.Unified(); u != "" && isDir(filepath.Join(u, rel)) {
		cg.v2 = filepath.Join(u, rel)
	}
	return cg
}

// Cleanup removes what the runtime made on the host for container id and left behind when its
// monitor was killed: its cgroups. Safe to call when there is nothing.
func Cleanup(id string) error { return existingCgroup(id).remove() }

// SweepCgroups removes the cgroups of kiln containers that no longer exist: empty directories
// under kiln/ of the cgroup2 hierarchy and of each v1 one, made more than a minute ago (a
// younger one may be a start in progress). A cgroup with a process in it cannot be removed, so
// a running container keeps its own whatever its kiln root. It returns how many it removed.
func SweepCgroups() int {
	var dirs []string
	if u := devcgroup.Unified(); u != "" {
		dirs, _ = filepath.Glob(filepath.Join(u, "kiln", "*"))
	}
	if !cgroup2Only() { // then each directory of /sys/fs/cgroup is a hierarchy
		v1, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "kiln", "*"))
		for _, d := range v1 {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	n := 0
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if unix.Rmdir(d) == nil {
			n++
		}
	}
	return n
}

// oomKilled reports whether the OOM killer killed a process of the cgroup. Read it before remove.
func (cg *cgroup) oomKilled() bool {
	if cg == nil {
		return false
	}
	if h := v1Hierarchy("memory"); h != "" && cg.v1[h] != "" {
		d := cg.v1[h]
		return keyedValue(d, "memory.oom_control", "oom_kill") > 0
	}
	return cg.v2 != "" && keyedValue(cg.v2, "memory.events", "oom_kill") > 0
}

// keyedValue reads "key value" lines (memory.events, memory.stat, cpu.stat) and returns key's
// value, or 0.
func keyedValue(dir, file, key string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == key {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// writeFile writes a cgroup control file, with an error that names the file and the value.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}
