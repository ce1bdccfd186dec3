package guest

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBroadcast(t *testing.T) {
	for in, want := range map[string]string{"10.0.2.15/24": "10.0.2.255", "192.168.1.9/30": "192.168.1.11", "10.1.2.3/32": "10.1.2.3"} {
		if got := broadcast(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("broadcast(%s) = %s, want %s", in, got, want)
		}
	}
}

// inNewNetns runs fn on a thread of its own in a new network namespace; the thread is
// thrown away afterwards (never unlocked), so the namespace goes with it.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
}

// TestConfigureNIC brings up loopback (an ioctl) and configures one end of a real veth pair
// (rtnetlink) in a new network namespace, and reads the result back with iproute2.
func TestConfigureNIC(t *testing.T) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("iproute2's ip is not installed:", err)
	}
	inNewNetns(t, func() {
		if out, err := exec.Command(ip, "link", "add", "kt0", "type", "veth", "peer", "name", "kt1").CombinedOutput(); err != nil {
			t.Errorf("ip link add veth: %v: %s", err, out)
			return
		}
		if err := loopbackUp(); err != nil {
			t.Errorf("loopback up: %v", err)
		}
		nic, err := net.InterfaceByName("kt0")
		if err != nil {
			t.Error(err)
			return
		}
		prefix, gw := netip.MustParsePrefix("10.0.2.15/24"), netip.MustParseAddr("10.0.2.2")
		if err := configureNIC(nic.Index, prefix, gw); err != nil {
			t.Errorf("configureNIC: %v", err)
			return
		}
		addr, _ := exec.Command(ip, "-4", "-o", "addr", "show", "dev", "kt0").CombinedOutput()
		if want := "inet " + prefix.String() + " brd " + broadcast(prefix).String(); !strings.Contains(string(addr), want) {
			t.Errorf("ip addr show kt0:\n%s\nwant %q", addr, want)
		}
		route, _ := exec.Command(ip, "-4", "route", "show", "default").CombinedOutput()
		if want := "default via " + gw.String() + " dev kt0"; !strings.Contains(string(route), want) {
			t.Errorf("ip route show default:\n%s\nwant %q", route, want)
		}
		lo, _ := exec.Command(ip, "-o", "link", "show", "lo").CombinedOutput()
		if !strings.Contains(string(lo), "UP") {
			t.Errorf("loopback is not up: %s", lo)
		}
		// The kernel's own error comes back through the ack: the address exists already.
		if err := configureNIC(nic.Index, prefix, gw); !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "add address") {
			t.Errorf("configuring twice: %v, want add address: EEXIST", err)
		}
	})
}

func TestWriteResolvConf(t *testing.T) {
	root := t.TempDir()
	if err := writeResolvConf(root, []string{"10.0.2.3", "fd00::3"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if want := "nameserver 10.0.2.3\nnameserver fd00::3\n"; err != nil || string(b) != want {
		t.Errorf("resolv.conf = %q, %v; want %q", b, err, want)
	}
	if err := writeResolvConf(root, []string{"dns.example"}); err == nil || !strings.Contains(err.Error(), "dns.example") {
		t.Errorf("a host name as DNS server: %v, want an error naming it", err)
	}
}
