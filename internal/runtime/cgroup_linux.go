package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/devcgroup"
)

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroup is the container's cgroup: for now the device allow-list, which is what keeps a
// container that may mknod (CAP_MKNOD, as in Docker) from opening a host disk.
type cgroup struct {
	devices string   // v1 devices hierarchy directory, or ""
	v2      string   // cgroup2 directory on a cgroup2-only host, or ""
	v2fd    *os.File // open v2 directory, for CLONE_INTO_CGROUP
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

func newCgroup(id string, s *specs.Spec) (*cgroup, error) {
	rel := cgroupPath(id, s)
	var rules []specs.LinuxDeviceCgroup
	if s.Linux.Resources != nil {
		rules = s.Linux.Resources.Devices
	}
	if u := devcgroup.Unified(); u != "" {
		return newCgroup2(filepath.Join(u, rel), rules)
	}
	cg := &cgroup{}
	devices := filepath.Join(cgroupRoot, "devices")
	if len(rules) == 0 || !isDir(devices) {
		return cg, nil
	}
	cg.devices = filepath.Join(devices, rel)
	if err := os.MkdirAll(cg.devices, 0o755); err != nil {
		return nil, fmt.Errorf("create devices cgroup: %w", err)
	}
	if err := writeDeviceRules(cg.devices, rules); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// newCgroup2 makes the container's cgroup2 cgroup (on a hybrid host too: the kernel checks a
// cgroup2 device program before the v1 controller) with the device allow-list attached. The init
// is then born in it (CLONE_INTO_CGROUP): no migration, which on v1 waits for an RCU grace
// period on every start.
func newCgroup2(dir string, rules []specs.LinuxDeviceCgroup) (*cgroup, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	cg := &cgroup{v2: dir}
	if len(rules) > 0 {
		if err := devcgroup.Attach(dir, rules); err != nil {
			cg.remove()
			return nil, err
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		cg.remove()
		return nil, err
	}
	cg.v2fd = f
	return cg, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func writeDeviceRules(dir string, rules []specs.LinuxDeviceCgroup) error {
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(deviceRule(r)), 0); err != nil {
			return fmt.Errorf("device rule %q: %w", deviceRule(r), err)
		}
	}
	return nil
}

func deviceRule(r specs.LinuxDeviceCgroup) string {
	t, access := r.Type, r.Access
	if t == "" {
		t = "a"
	}
	if access == "" {
		access = "rwm"
	}
	num := func(n *int64) string {
		if n == nil || *n < 0 {
			return "*"
		}
		return strconv.FormatInt(*n, 10)
	}
	return fmt.Sprintf("%s %s:%s %s", t, num(r.Major), num(r.Minor), access)
}

// prepare makes the init start inside the cgroup where the kernel can do that atomically.
func (cg *cgroup) prepare(attr *syscall.SysProcAttr) {
	if cg != nil && cg.v2fd != nil {
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cg.v2fd.Fd())
	}
}

// join moves pid into the v1 hierarchies (before the init has read its config, so before it
// can do anything).
func (cg *cgroup) join(pid int) error {
	if cg == nil || cg.devices == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(cg.devices, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
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
	for _, d := range []string{cg.devices, cg.v2} {
		if d != "" {
			errs = append(errs, rmdirRetry(d))
		}
	}
	return errors.Join(errs...)
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
	cg := &cgroup{}
	if d := filepath.Join(cgroupRoot, "devices", rel); isDir(d) {
		cg.devices = d
	}
	if u := devcgroup.Unified(); u != "" && isDir(filepath.Join(u, rel)) {
		cg.v2 = filepath.Join(u, rel)
	}
	return cg
}

// Cleanup removes what the runtime made on the host for container id and left behind when its
// monitor was killed: its cgroups. Safe to call when there is nothing.
func Cleanup(id string) error { return existingCgroup(id).remove() }

// oomKilled reports whether the OOM killer killed a process of the cgroup. Read it before remove.
func (cg *cgroup) oomKilled() bool { return false }
