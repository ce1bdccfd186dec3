package runtime

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCheckSysctl(t *testing.T) {
	own := []specs.LinuxNamespace{{Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}}
	joined := []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}
	for _, c := range []struct {
		key string
		nss []specs.LinuxNamespace
		ok  bool
	}{
		{"net.ipv4.ip_unprivileged_port_start", own, true},
		{"kernel.shmmax", own, true},
		{"fs.mqueue.msg_max", own, true},
		{"kernel.domainname", own, true},
		{"net.ipv4.ip_forward", nil, false},    // the host's network namespace
		{"net.ipv4.ip_forward", joined, false}, // someone else's
		{"kernel.modprobe", own, false},        // not namespaced: the host's
		{"vm.overcommit_memory", own, false},
		{"net/../../kernel/modprobe", own, false},
		{"net.ipv4..x", own, false},
		{"", own, false},
	} {
		err := checkSysctl(c.key, c.nss)
		if (err == nil) != c.ok {
			t.Errorf("checkSysctl(%q, %v) = %v, want ok=%v", c.key, c.nss, err, c.ok)
		}
	}
}
