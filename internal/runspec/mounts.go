package runspec

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Bind is a host file or directory (a volume already resolved to its host
// path by the caller) mounted at Destination in the container.
type Bind struct {
	Source, Destination string
	ReadOnly            bool
}

// flag is how the bind is spelled on the command line, for errors.
func (b Bind) flag() string {
	s := "-v " + b.Source + ":" + b.Destination
	if b.ReadOnly {
		s += ":ro"
	}
	return s
}

// defaultMounts are Docker's, with Docker's options. /sys/fs/cgroup is a
// "cgroup" mount, which runtimes turn into the container's view of its
// cgroups (cgroup2 in a cgroup namespace, or the v1 hierarchies).
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		// Docker's default --shm-size, 64 MiB.
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// mountInput is what the mounts are made of.
type mountInput struct {
	binds      []Bind
	tmpfs      []string
	readOnly   bool
	privileged bool
}

// mounts applies Docker's rules: the user's mounts (binds and --tmpfs) come
// after the defaults, parents before children; a user mount replaces a
// default at the same destination, and a user /dev replaces every default
// under /dev. --read-only makes the remaining defaults read-only, except the
// ones a process needs to write (/proc, /dev and under); --privileged makes
// /sys and the cgroup mount writable.
func mounts(in mountInput) ([]specs.Mount, error) {
	user, err := userMounts(in.binds, in.tmpfs)
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, m := range user {
		taken[m.Destination] = true
	}
	var out []specs.Mount
	for _, m := range defaultMounts() {
		if taken[m.Destination] || taken["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		switch {
		case in.privileged && (m.Destination == "/sys" || m.Type == "cgroup"):
			m.Options = slices.DeleteFunc(m.Options, func(o string) bool { return o == "ro" })
		case in.readOnly && !writableWhenReadOnly(m.Destination) && !slices.Contains(m.Options, "ro"):
			m.Options = append(m.Options, "ro")
		}
		out = append(out, m)
	}
	return append(out, user...), nil
}

func writableWhenReadOnly(dest string) bool {
	switch dest {
	case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue":
		return true
	}
	return false
}

// userMounts validates binds and --tmpfs flags and orders them parents first
// (by the depth of the destination; the given order among equals).
func userMounts(binds []Bind, tmpfs []string) ([]specs.Mount, error) {
	var out []specs.Mount
	seen := map[string]string{} // destination -> flag
	add := func(flag string, m specs.Mount) error {
		if prev, ok := seen[m.Destination]; ok {
			return fmt.Errorf("%s: duplicate mount point %s (also %s)", flag, m.Destination, prev)
		}
		seen[m.Destination] = flag
		out = append(out, m)
		return nil
	}
	for _, b := range binds {
		m, err := bindMount(b)
		if err != nil {
			return nil, err
		}
		if err := add(b.flag(), m); err != nil {
			return nil, err
		}
	}
	for _, t := range tmpfs {
		m, err := tmpfsMount(t)
		if err != nil {
			return nil, err
		}
		if err := add("--tmpfs "+t, m); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })
	return out, nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// checkDestination: absolute, not the root, and cleaned.
func checkDestination(flag, dest string) (string, error) {
	switch {
	case dest == "":
		return "", fmt.Errorf("%s: empty destination", flag)
	case !path.IsAbs(dest):
		return "", fmt.Errorf("%s: destination must be absolute", flag)
	case strings.IndexByte(dest, 0) >= 0:
		return "", fmt.Errorf("%s: destination contains a NUL byte", flag)
	case path.Clean(dest) == "/":
		return "", fmt.Errorf("%s: destination can't be /", flag)
	}
	return path.Clean(dest), nil
}

// bindMount: recursive, private (Docker's default propagation), ro if asked.
func bindMount(b Bind) (specs.Mount, error) {
	flag := b.flag()
	dest, err := checkDestination(flag, b.Destination)
	if err != nil {
		return specs.Mount{}, err
	}
	if !path.IsAbs(b.Source) || strings.IndexByte(b.Source, 0) >= 0 {
		return specs.Mount{}, fmt.Errorf("%s: source must be an absolute host path", flag)
	}
	opts := []string{"rbind"}
	if b.ReadOnly {
		opts = append(opts, "ro")
	}
	opts = append(opts, "rprivate")
	return specs.Mount{Destination: dest, Type: "bind", Source: path.Clean(b.Source), Options: opts}, nil
}

// tmpfsMount parses --tmpfs PATH[:OPTIONS]. Docker's defaults are noexec,
// nosuid, nodev and private propagation, with no size limit (the kernel's:
// half of RAM); the user's options override them one kind at a time ("exec"
// replaces "noexec", the last "size=" wins).
func tmpfsMount(flag string) (specs.Mount, error) {
	dest, data, _ := strings.Cut(flag, ":")
	dest, err := checkDestination("--tmpfs "+flag, dest)
	if err != nil {
		return specs.Mount{}, err
	}
	opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	merged, err := mergeTmpfsOptions(opts)
	if err != nil {
		return specs.Mount{}, fmt.Errorf("--tmpfs %s: %w", flag, err)
	}
	return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: merged}, nil
}

// tmpfsFlags maps each mount flag --tmpfs accepts to the setting it changes:
// of two options that change one setting, the later wins.
var tmpfsFlags = map[string]string{
	"ro": "ro", "rw": "ro",
	"suid": "suid", "nosuid": "suid",
	"dev": "dev", "nodev": "dev",
	"exec": "exec", "noexec": "exec",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync",
	"mand":    "mand", "nomand": "mand",
	"atime": "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
	"private": "propagation", "rprivate": "propagation",
	"shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation",
	"unbindable": "propagation", "runbindable": "propagation",
}

// tmpfsData are the tmpfs options with a value, and the pattern the value must match.
var tmpfsData = map[string]string{
	"size":      `^[0-9]+[kKmMgGtTpPeE%]?$`,
	"nr_blocks": `^[0-9]+[kKmMgGtTpPeE%]?$`,
	"nr_inodes": `^[0-9]+[kKmMgGtTpPeE%]?$`,
	"mode":      `^[0-7]{1,4}$`,
	"uid":       `^[0-9]+$`,
	"gid":       `^[0-9]+$`,
	"mpol":      `^[a-z]+(=[0-9,\-:]+)?$`,
}

// mergeTmpfsOptions keeps the last option of each kind, in the order of the
// kept ones. "bind", "rbind" and "remount" are refused: with them a runtime
// would bind-mount a host path named "tmpfs" instead.
func mergeTmpfsOptions(opts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := opts[i]
		if o == "defaults" || o == "" {
			continue
		}
		key, ok := tmpfsFlags[o]
		if !ok {
			name, value, hasValue := strings.Cut(o, "=")
			pattern, known := tmpfsData[name]
			if !hasValue || !known {
				return nil, fmt.Errorf("invalid tmpfs option %q", o)
			}
			// Compiled only when a --tmpfs option has a value: rare, and off the start path.
			if !regexp.MustCompile(pattern).MatchString(value) {
				return nil, fmt.Errorf("invalid value in tmpfs option %q", o)
			}
			key = "=" + name
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, o)
	}
	slices.Reverse(out)
	return out, nil
}
