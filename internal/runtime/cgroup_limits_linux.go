package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/devcgroup"
)

// v1Controllers are the v1 controllers the runtime uses (devices) or reads (the rest).
var v1Controllers = []string{"devices", "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio"}

// v1Hierarchy is the name under /sys/fs/cgroup of the v1 hierarchy controller c is mounted
// in ("cpu,cpuacct" when the two share one), or "" when c has none.
func v1Hierarchy(c string) string {
	p, err := filepath.EvalSymlinks(filepath.Join(cgroupRoot, c))
	if err != nil || filepath.Dir(p) != cgroupRoot {
		return ""
	}
	var st unix.Statfs_t
	if unix.Statfs(p, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		return ""
	}
	return filepath.Base(p)
}

// v2Controllers lists the controllers bound to the cgroup2 hierarchy at u (none on a hybrid
// host, where the v1 hierarchies hold them) that the runtime uses.
func v2Controllers(u string) []string {
	b, err := os.ReadFile(filepath.Join(u, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	var cs []string
	for c := range strings.FieldsSeq(string(b)) {
		switch c {
		case "memory", "cpu", "cpuset", "pids", "io":
			cs = append(cs, c)
		}
	}
	return cs
}

// limitControllers are the controllers the limits in r need.
func limitControllers(r *specs.LinuxResources) []string {
	var cs []string
	if m := r.Memory; m != nil && (m.Limit != nil || m.Swap != nil) {
		cs = append(cs, "memory")
	}
	if c := r.CPU; c != nil && (c.Shares != nil || c.Quota != nil) {
		cs = append(cs, "cpu")
	}
	if c := r.CPU; c != nil && (c.Cpus != "" || c.Mems != "") {
		cs = append(cs, "cpuset")
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		cs = append(cs, "pids")
	}
	return cs
}

// enableControllers turns ctrls on in cgroup.subtree_control of every directory from the
// cgroup2 root u down to dir (creating them), so that dir's children have them.
func enableControllers(u, dir string, ctrls []string) error {
	if len(ctrls) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	rel, err := filepath.Rel(u, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not under %s", dir, u)
	}
	d := u
	for _, part := range append([]string{""}, strings.Split(rel, "/")...) {
		d = filepath.Join(d, part)
		b, err := os.ReadFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			return err
		}
		on := strings.Fields(string(b))
		for _, c := range ctrls {
			if !slices.Contains(on, c) {
				if err := writeFile(d, "cgroup.subtree_control", "+"+c); err != nil {
					return fmt.Errorf("enable the %s controller: %w", c, err)
				}
			}
		}
	}
	return nil
}

// setLimits2 writes r's limits into the cgroup2 directory dir, for the controllers in on2 (the
// others are left to v1 hierarchies).
func setLimits2(dir string, r *specs.LinuxResources, on2 []string) error {
	var w limitWriter
	has := func(c string) bool { return slices.Contains(on2, c) }
	if m := r.Memory; m != nil && m.Limit != nil && has("memory") {
		w.set(dir, "memory.max", max2(*m.Limit))
		if m.Swap != nil && exists(dir, "memory.swap.max") {
			swap := "max"
			if *m.Swap >= *m.Limit {
				swap = strconv.FormatInt(*m.Swap-*m.Limit, 10)
			}
			w.set(dir, "memory.swap.max", swap)
		}
	}
	if c := r.CPU; c != nil && has("cpu") {
		if c.Shares != nil {
			w.set(dir, "cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10))
		}
		if c.Quota != nil {
			period := uint64(100000)
			if c.Period != nil {
				period = *c.Period
			}
			w.set(dir, "cpu.max", fmt.Sprintf("%s %d", max2(*c.Quota), period))
		}
	}
	if c := r.CPU; c != nil && has("cpuset") {
		w.setIf(dir, "cpuset.cpus", c.Cpus)
		w.setIf(dir, "cpuset.mems", c.Mems)
	}
	if r.Pids != nil && r.Pids.Limit != nil && has("pids") {
		w.set(dir, "pids.max", max2(*r.Pids.Limit))
	}
	return w.err
}

// max2 is a cgroup2 limit: "max" for none (<= 0).
func max2(n int64) string {
	if n <= 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// sharesToWeight maps v1 cpu.shares [2, 262144] onto cgroup2 cpu.weight [1, 10000], as the
// OCI runtimes do (1024 shares, the default, is weight 39).
func sharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// setLimits1 writes the limits in r that belong to v1 controller c into its directory dir.
func setLimits1(c, dir string, r *specs.LinuxResources) error {
	var w limitWriter
	switch c {
	case "devices":
		return writeDeviceRules(dir, r.Devices)
	case "memory":
		m := r.Memory
		if m.Limit != nil {
			w.set(dir, "memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10))
		}
		// Without swap accounting the swap limit cannot be set: the CLI refuses an explicit
		// --memory-swap then (see SwapLimitSupported), and Docker's default one is dropped.
		if m.Swap != nil && exists(dir, "memory.memsw.limit_in_bytes") {
			w.set(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(*m.Swap, 10))
		}
	case "cpu":
		if s := r.CPU.Shares; s != nil {
			w.set(dir, "cpu.shares", strconv.FormatUint(*s, 10))
		}
		if q := r.CPU.Quota; q != nil {
			if p := r.CPU.Period; p != nil {
				w.set(dir, "cpu.cfs_period_us", strconv.FormatUint(*p, 10))
			}
			w.set(dir, "cpu.cfs_quota_us", strconv.FormatInt(*q, 10))
		}
	case "cpuset":
		w.setIf(dir, "cpuset.cpus", r.CPU.Cpus)
		w.setIf(dir, "cpuset.mems", r.CPU.Mems)
	case "pids":
		w.set(dir, "pids.max", max2(*r.Pids.Limit))
	}
	return w.err
}

// limitWriter writes control files until the first error, which it keeps.
type limitWriter struct{ err error }

func (w *limitWriter) set(dir, file, value string) {
	if w.err == nil {
		w.err = writeFile(dir, file, value)
		if errors.Is(w.err, unix.EINVAL) || errors.Is(w.err, unix.EBUSY) {
			w.err = fmt.Errorf("%w (the kernel refuses this value)", w.err)
		}
	}
}

func (w *limitWriter) setIf(dir, file, value string) {
	if value != "" {
		w.set(dir, file, value)
	}
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// mkdirCpuset makes rel in the v1 cpuset hierarchy at h. A new cpuset starts with no CPUs and
// no memory nodes, and no task may join it so: each directory made gets its parent's.
func mkdirCpuset(h, rel string) error {
	d := h
	for part := range strings.SplitSeq(strings.Trim(rel, "/"), "/") {
		parent := d
		d = filepath.Join(d, part)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cpuset cgroup: %w", err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if err := inheritCpuset(parent, d, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func inheritCpuset(parent, dir, file string) error {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) != "" {
		return nil
	}
	if b, err = os.ReadFile(filepath.Join(parent, file)); err != nil {
		return err
	}
	return writeFile(dir, file, strings.TrimSpace(string(b)))
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

// SwapLimitSupported reports whether the kernel accounts swap per cgroup, so that a container's
// memory-plus-swap limit can be enforced (memory.memsw.* on v1, memory.swap.max on cgroup2). A
// kernel built without it, or booted with swapaccount=0, has neither.
func SwapLimitSupported() bool {
	if h := v1Hierarchy("memory"); h != "" {
		return exists(filepath.Join(cgroupRoot, h), "memory.memsw.limit_in_bytes")
	}
	u := devcgroup.Unified()
	if u == "" {
		return false
	}
	// The root cgroup has no memory.swap.max: look in a child with the memory controller.
	ents, _ := os.ReadDir(u)
	for _, e := range ents {
		if d := filepath.Join(u, e.Name()); e.IsDir() && exists(d, "memory.max") {
			return exists(d, "memory.swap.max")
		}
	}
	return true // no child to tell: let the write say
}
