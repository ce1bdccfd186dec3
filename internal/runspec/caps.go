package runspec

import (
	"fmt"
	"slices"
	"strings"
)

// allCaps is every capability Linux defines, in number order (CAP_CHOWN is
// 0, CAP_CHECKPOINT_RESTORE 40, Linux 5.9). --privileged gets all of them:
// Docker asks the running kernel instead (/proc/sys/kernel/cap_last_cap), but
// runspec never reads the host, so the runtime drops the ones above the
// running kernel's cap_last_cap when it applies the sets.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCaps returns the 14 capabilities Docker gives a container, in
// Docker's order.
func DefaultCaps() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// AllCaps returns every capability kiln knows, in number order.
func AllCaps() []string { return slices.Clone(allCaps) }

// capAll is the name --cap-add and --cap-drop take for every capability.
const capAll = "ALL"

// normalizeCaps spells each name as "CAP_NAME" (Docker accepts "net_admin",
// "NET_ADMIN" and "CAP_NET_ADMIN"; "ALL" stays "ALL") and rejects unknown ones.
func normalizeCaps(flag string, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		c := strings.ToUpper(strings.TrimSpace(n))
		if c != capAll && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if c != capAll && !slices.Contains(allCaps, c) {
			return nil, fmt.Errorf("%s %s: unknown capability", flag, n)
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities applies Docker's rules (moby's TweakCapabilities): privileged
// gets every capability; --cap-add ALL gives every capability but the dropped
// ones; --cap-drop ALL gives only the added ones; otherwise the defaults less
// the dropped, plus the added.
func capabilities(adds, drops []string, privileged bool) ([]string, error) {
	add, err := normalizeCaps("--cap-add", adds)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps("--cap-drop", drops)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case privileged:
		return AllCaps(), nil
	case slices.Contains(add, capAll):
		for _, c := range allCaps {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		return caps, nil
	case slices.Contains(drop, capAll):
		caps = []string{}
	default:
		for _, c := range DefaultCaps() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	}
	for _, c := range add {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}
