package network

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// hostRoutes are the IPv4 destinations the host routes, except the default route, and its own
// addresses (the local table: 127.0.0.0/8, and an address with no route of its own, as a /32
// on a cloud VM's NIC): a new subnet must not overlap any of them.
func hostRoutes() ([]routed, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	var out []routed
	for _, r := range rs {
		local := r.Table == unix.RT_TABLE_LOCAL && r.Type == unix.RTN_LOCAL
		if r.Dst == nil || r.Table != unix.RT_TABLE_MAIN && !local {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok || ones == 0 {
			continue
		}
		dev := ""
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		out = append(out, routed{netip.PrefixFrom(a, ones), dev})
	}
	return out, nil
}

func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// setUpBridge makes n's bridge with the gateway address, up, and lets it route: IPv4
// forwarding on, and route_localnet so 127.0.0.1:PORT can be DNATed to a container.
func setUpBridge(n *Network) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, MTU: n.MTU}}
	if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
	}
	l, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if l.Attrs().MTU != n.MTU { // a new bridge takes 1500 whatever LinkAdd said
		if err := netlink.LinkSetMTU(l, n.MTU); err != nil {
			return fmt.Errorf("bridge %s: mtu %d: %w", n.Bridge, n.MTU, err)
		}
	}
	addr := &netlink.Addr{IPNet: ipNet(n.Gateway, n.Subnet.Bits())}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("bridge %s: address %s: %w", n.Bridge, addr.IPNet, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bridge %s: up: %w", n.Bridge, err)
	}
	for _, k := range []string{"net/ipv4/conf/" + n.Bridge + "/route_localnet", "net/ipv4/ip_forward"} {
		if err := sysctl(k, "1"); err != nil {
			return err
		}
	}
	return disableIPv6(n.Bridge)
}

// disableIPv6 turns IPv6 off on a link of the current thread's network namespace; a kernel
// without IPv6 is nothing to do. Networks are IPv4 only, and a link with IPv6 on takes router
// advertisements: a container (CAP_NET_RAW) could send one to the host through the bridge, or
// to the other containers on it, and become their IPv6 router (Docker's CVE-2020-13401).
func disableIPv6(link string) error {
	err := sysctl("net/ipv6/conf/"+link+"/disable_ipv6", "1")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ipv6On: link has IPv6 enabled (a bridge set up by an older kiln).
func ipv6On(link string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + link + "/disable_ipv6")
	return err == nil && string(b) == "0\n"
}

// disableIPv6In is disableIPv6 inside the network namespace ns (/proc/sys/net is the namespace
// of the thread that opens it), on a locked thread that enters ns and comes back. The thread
// must not die: it may be the one a container was forked from, whose parent-death signal
// would kill it. Only if it cannot come back is it left locked, to die with the goroutine.
func disableIPv6In(ns netns.NsHandle, link string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter the container's network namespace: %w", err)
			return
		}
		err = disableIPv6(link)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func sysctl(key, value string) error {
	p := "/proc/sys/" + key
	if b, err := os.ReadFile(p); err == nil && string(b) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// plug connects the container whose init is pid to n: a veth pair, the host side ep.Veth on
// the bridge, the other born inside the container's network namespace as eth0, with ep.IP and
// a default route through the gateway.
func plug(n *Network, ep *Endpoint, pid int) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: ep.Veth, MasterIndex: br.Attrs().Index, MTU: n.MTU},
		PeerName:  "eth0", PeerNamespace: netlink.NsFd(ns), PeerMTU: uint32(n.MTU),
		PeerHardwareAddr: macOf(ep.IP),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.Veth, err)
	}
	host, err := netlink.LinkByName(ep.Veth)
	if err == nil {
		err = netlink.LinkSetHairpin(host, true) // a container reaching its own published port
	}
	if err == nil {
		err = netlink.LinkSetUp(host)
	}
	if err != nil {
		return fmt.Errorf("veth %s: %w", ep.Veth, err)
	}
	return configurePeer(ns, n, ep)
}

func configurePeer(ns netns.NsHandle, n *Network, ep *Endpoint) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in the container's namespace: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("container eth0: %w", err)
	}
	if err := disableIPv6In(ns, "eth0"); err != nil { // before it is up: no link-local address, no RA taken
		return fmt.Errorf("container eth0: %w", err)
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(ep.IP, n.Subnet.Bits())}); err != nil {
		return fmt.Errorf("container eth0: address %s: %w", ep.IP, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("container eth0: up: %w", err)
	}
	gw := net.IP(n.Gateway.AsSlice())
	if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("container eth0: default route via %s: %w", n.Gateway, err)
	}
	return nil
}

// macOf is the container's MAC address, derived from its IP address as Docker does: an
// address handed out again comes with the same MAC, so the host's neighbour entry for it
// stays right.
func macOf(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x6b, a[0], a[1], a[2], a[3]} // locally administered, 'k'
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, 32)}
}
