package network

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// forgetUDPFlows deletes the conntrack entries of UDP flows to ep's published UDP ports. A
// client that sent to such a port before it was published has an entry without NAT, which each
// of its datagrams keeps alive: the new DNAT rule would never apply to it (netavark does the
// same). TCP needs nothing: a refused connection leaves no entry that a retry reuses.
func forgetUDPFlows(ep *Endpoint) error {
	var filters []netlink.CustomConntrackFilter
	for _, p := range ep.Ports {
		if p.Protocol != "udp" {
			continue
		}
		f := &netlink.ConntrackFilter{}
		err := f.AddProtocol(unix.IPPROTO_UDP)
		if err == nil {
			err = f.AddPort(netlink.ConntrackOrigDstPort, p.HostPort)
		}
		if err == nil && p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			err = f.AddIP(netlink.ConntrackOrigDstIP, net.IP(p.HostIP.AsSlice()))
		}
		if err != nil {
			return fmt.Errorf("conntrack filter for %s/udp: %w", p.HostAddr(), err)
		}
		filters = append(filters, f)
	}
	if len(filters) == 0 {
		return nil
	}
	if _, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...); err != nil {
		return fmt.Errorf("conntrack: forget UDP flows to the ports of %s: %w", short(ep.Container), err)
	}
	return nil
}
