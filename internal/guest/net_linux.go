package guest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// setupNet brings up loopback and, when n is set, the first NIC with n's address and default
// route. It talks rtnetlink directly for the NIC: kiln-init links no netlink library.
func setupNet(n *bootconfig.Net, sys string, wait time.Duration) error {
	if err := loopbackUp(); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if n == nil {
		return nil
	}
	prefix, err := netip.ParsePrefix(n.Address)
	if err != nil || !prefix.Addr().Is4() {
		return fmt.Errorf("network address %q: want an IPv4 ADDRESS/PREFIX", n.Address)
	}
	var gw netip.Addr
	if n.Gateway != "" {
		if gw, err = netip.ParseAddr(n.Gateway); err != nil || !gw.Is4() {
			return fmt.Errorf("network gateway %q: want an IPv4 address", n.Gateway)
		}
	}
	name, index, err := firstNIC(sys, wait)
	if err != nil {
		return err
	}
	if err := configureNIC(index, prefix, gw); err != nil {
		return fmt.Errorf("configure %s with %s: %w", name, n.Address, err)
	}
	return nil
}

// configureNIC sets a link up with one IPv4 address and, if gw is valid, a default route.
func configureNIC(index int, prefix netip.Prefix, gw netip.Addr) error {
	if err := addAddr(index, prefix); err != nil {
		return fmt.Errorf("add address: %w", err)
	}
	if err := linkUp(index); err != nil {
		return fmt.Errorf("link up: %w", err)
	}
	if gw.IsValid() {
		if err := addDefaultRoute(index, gw); err != nil {
			return fmt.Errorf("add default route via %s: %w", gw, err)
		}
	}
	return nil
}

// firstNIC returns the non-loopback interface with the lowest index, waiting for one to appear.
func firstNIC(sys string, wait time.Duration) (string, int, error) {
	deadline := time.Now().Add(wait)
	for {
		name, index := lowestNIC(sys)
		if index > 0 {
			return name, index, nil
		}
		if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("configure network: no network interface in %s (is the NIC's driver, virtio_net, loaded?)",
				filepath.Join(sys, "class/net"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func lowestNIC(sys string) (string, int) {
	dirs, _ := filepath.Glob(filepath.Join(sys, "class/net/*/ifindex"))
	best, bestIndex := "", 0
	for _, f := range dirs {
		name := filepath.Base(filepath.Dir(f))
		b, err := readFile(f)
		i, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if name == "lo" || err != nil || perr != nil {
			continue
		}
		if bestIndex == 0 || i < bestIndex {
			best, bestIndex = name, i
		}
	}
	return best, bestIndex
}

// loopbackUp sets lo up with SIOCSIFFLAGS: it is there from the kernel's start, and one
// ioctl on any socket does it, where rtnetlink takes a request and reading its answer.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("SIOCGIFFLAGS", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return os.NewSyscallError("SIOCSIFFLAGS", err)
	}
	return nil
}

func linkUp(index int) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index), Flags: unix.IFF_UP, Change: unix.IFF_UP}
	return rtnetlink(unix.RTM_NEWLINK, 0, structBytes(&msg))
}

func addAddr(index int, p netip.Prefix) error {
	msg := unix.IfAddrmsg{Family: unix.AF_INET, Prefixlen: uint8(p.Bits()), Index: uint32(index)}
	ip := p.Addr().As4()
	bcast := broadcast(p).As4()
	body := slices.Concat(structBytes(&msg),
		attr(unix.IFA_LOCAL, ip[:]), attr(unix.IFA_ADDRESS, ip[:]), attr(unix.IFA_BROADCAST, bcast[:]))
	return rtnetlink(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
}

func addDefaultRoute(index int, gw netip.Addr) error {
	msg := unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT,
		Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST}
	g := gw.As4()
	oif := binary.NativeEndian.AppendUint32(nil, uint32(index))
	body := slices.Concat(structBytes(&msg), attr(unix.RTA_GATEWAY, g[:]), attr(unix.RTA_OIF, oif))
	return rtnetlink(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	if p.Bits() == 32 {
		host = 0
	}
	v := binary.BigEndian.Uint32(a[:]) | host
	return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, v)))
}

// rtnetlink sends one request and waits for the kernel's acknowledgement.
func rtnetlink(typ, flags uint16, body []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("bind", err)
	}
	hdr := unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr + len(body)), Type: typ,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK | flags, Seq: 1}
	if err := unix.Sendto(fd, append(structBytes(&hdr), body...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto", err)
	}
	return readAck(fd)
}

func readAck(fd int) error {
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			typ := binary.NativeEndian.Uint16(b[4:6])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return fmt.Errorf("netlink: truncated message")
			}
			if typ == unix.NLMSG_ERROR && l >= unix.SizeofNlMsghdr+4 {
				if errno := int32(binary.NativeEndian.Uint32(b[unix.SizeofNlMsghdr:])); errno != 0 {
					return unix.Errno(-errno)
				}
				return nil
			}
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		}
	}
}

// attr encodes one rtattr, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	a := unix.RtAttr{Len: uint16(unix.SizeofRtAttr + len(data)), Type: typ}
	b := append(structBytes(&a), data...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// structBytes is the in-memory bytes of a netlink header struct, which is the wire format.
func structBytes[T any](v *T) []byte {
	return slices.Clone(unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v)))
}

// writeResolvConf writes /etc/resolv.conf (under root) for the DNS servers, if any.
func writeResolvConf(root string, dns []string) error {
	if len(dns) == 0 {
		return nil
	}
	var b strings.Builder
	for _, s := range dns {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("network DNS server %q: not an IP address", s)
		}
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	f := filepath.Join(etc, "resolv.conf")
	os.Remove(f) // a symlink to /run/systemd/... in a Debian-based root would be followed
	return os.WriteFile(f, []byte(b.String()), 0o644)
}
