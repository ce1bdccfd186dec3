package runspec

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-project/kiln/internal/seccomp"
)

// maskedPaths are hidden from the container (a read-only empty tmpfs on a
// directory, /dev/null on a file): Docker's list, including /proc/interrupts
// (moby GHSA-6fw5-f8r9-fgfm). Docker also masks each CPU's
// /sys/devices/system/cpu/cpuN/thermal_throttle that the host has; that needs
// a look at the host, so it is the runtime's to add.
func maskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

// readonlyPaths are remounted read-only in the container (Docker's list).
func readonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// deviceRules is the device cgroup allow-list a Docker container ends up
// with: moby's spec denies everything and allows null, zero, urandom,
// random, tty and console; runc then appends its own list (mknod of any
// device, the same character devices plus full, /dev/pts/*, /dev/ptmx and
// /dev/net/tun). kiln's runtime appends nothing, so the spec says it all.
// "m" for every device lets a process with CAP_MKNOD make a node, never read
// or write one: `mknod /dev/sda b 8 0` succeeds, opening it does not.
// (moby also denies /dev/fuse, which after a deny-all changes nothing.)
//
// --privileged allows every device. Docker also copies each device node of
// the host into the container's /dev; runspec never looks at the host, so
// kiln does not: a privileged workload makes the nodes it needs with mknod
// (its /dev is a tmpfs without nodev).
func deviceRules(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		devRule("c", -1, -1, "m"),
		devRule("b", -1, -1, "m"),
		devRule("c", 1, 3, "rwm"),    // /dev/null
		devRule("c", 1, 5, "rwm"),    // /dev/zero
		devRule("c", 1, 7, "rwm"),    // /dev/full
		devRule("c", 1, 8, "rwm"),    // /dev/random
		devRule("c", 1, 9, "rwm"),    // /dev/urandom
		devRule("c", 5, 0, "rwm"),    // /dev/tty
		devRule("c", 5, 1, "rwm"),    // /dev/console
		devRule("c", 5, 2, "rwm"),    // /dev/ptmx
		devRule("c", 136, -1, "rwm"), // /dev/pts/*
		devRule("c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// security is what --security-opt asks for.
type security struct {
	seccomp         string // "" default, "unconfined", or a profile file
	noNewPrivileges bool
	systemPaths     bool // "systempaths=unconfined": no masked or read-only paths
}

// parseSecurityOpts reads --security-opt values. Docker's "key:value" form
// (deprecated there) is accepted too.
func parseSecurityOpts(opts []string) (security, error) {
	s := security{noNewPrivileges: true}
	for _, o := range opts {
		key, value, hasValue := strings.Cut(o, "=")
		if !hasValue {
			key, value, hasValue = strings.Cut(o, ":")
		}
		switch key {
		case "seccomp":
			if value == "" {
				return s, fmt.Errorf("--security-opt %s: no profile", o)
			}
			s.seccomp = value
		case "no-new-privileges":
			// On by default in kiln (Docker's default is off); only
			// "=false" changes anything, for images that need setuid.
			b := true
			if hasValue {
				var err error
				if b, err = strconv.ParseBool(value); err != nil {
					return s, fmt.Errorf("--security-opt %s: not true or false", o)
				}
			}
			s.noNewPrivileges = b
		case "systempaths":
			if value != "unconfined" {
				return s, fmt.Errorf("--security-opt %s: only systempaths=unconfined exists", o)
			}
			s.systemPaths = true
		case "label":
			if value != "disable" {
				return s, fmt.Errorf("--security-opt %s: not supported (kiln sets no SELinux labels)", o)
			}
		case "apparmor":
			return s, fmt.Errorf("--security-opt %s: not supported (kiln does not use AppArmor)", o)
		default:
			return s, fmt.Errorf("--security-opt %s: unknown option", o)
		}
	}
	return s, nil
}

// seccompProfile is the filter for a process with capabilities caps:
// Docker's default profile, none with "unconfined" or --privileged (Docker
// ignores a profile file for a privileged container too), or a profile file
// in Docker's format, resolved for caps on this host.
func seccompProfile(s security, caps []string, privileged bool) (*specs.LinuxSeccomp, error) {
	switch {
	case s.seccomp == "unconfined" || privileged:
		return nil, nil
	case s.seccomp == "":
		return seccomp.Default(caps), nil
	}
	data, err := os.ReadFile(s.seccomp)
	if err != nil {
		return nil, fmt.Errorf("--security-opt seccomp=%s: %w", s.seccomp, err)
	}
	p, err := seccomp.ParseDocker(data, caps)
	if err != nil {
		return nil, fmt.Errorf("--security-opt seccomp=%s: %w", s.seccomp, err)
	}
	return p, nil
}
