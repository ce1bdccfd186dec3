package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCloneFlagsNamespacePath(t *testing.T) {
	nss := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}}
	flags, err := cloneFlags(nss)
	if err != nil || flags&unix.CLONE_NEWNET != 0 {
		t.Errorf("a network namespace with a path: flags %#x, %v; want no CLONE_NEWNET (the init joins it)", flags, err)
	}
	nss[1].Path = "/nonexistent/ns/net"
	if _, err := cloneFlags(nss); err == nil || !strings.Contains(err.Error(), "/nonexistent/ns/net") {
		t.Errorf("a missing namespace file: %v, want an error naming it", err)
	}
	nss[1] = specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/self/ns/pid"}
	if _, err := cloneFlags(nss); err == nil || err.Error() != "joining the pid namespace at /proc/self/ns/pid is not supported" {
		t.Errorf("joining a pid namespace: %v", err)
	}
}

// TestJoinNetworkNamespace: a container given a network namespace path runs in it, and sees
// the interface made there (the veth pair dies with the namespace).
func TestJoinNetworkNamespace(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: ip (iproute2) is not installed")
	}
	name := fmt.Sprintf("kiln-rt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	link := fmt.Sprintf("kjoin%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "-n", name, "link", "add", link, "type", "veth", "peer", "name", link+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v\n%s", err, out)
	}
	s := testSpec(busyboxRoot(t), "ip", "link")
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = "/run/netns/" + name
		}
	}
	out, exit := run(t, s)
	if exit.Code != 0 || !strings.Contains(out, link) {
		t.Errorf("ip link in the joined namespace: exit %d, want %s listed:\n%s", exit.Code, link, out)
	}
}
