package network

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// pool is where subnets come from when none is given: 10.88.0.0/16 (the default network's),
// then 10.89.0.0/16 and on, the first that overlaps neither the host's routes nor another
// network.
func pool() []netip.Prefix {
	var out []netip.Prefix
	for b := 88; b < 255; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16))
	}
	return out
}

// DefaultMTU is the MTU of a network's bridge and veths unless `network create --mtu` says
// otherwise: the loopback's, so a connection to a published port from the host (or between
// containers) moves 64 KiB segments, not 1500-byte ones; traffic that leaves the host is
// sized by TCP's MSS and path MTU discovery against the uplink, with the host itself as the
// router that answers "fragmentation needed".
const DefaultMTU = 65535

// Create makes a network: its record, its bridge and its masquerade rules. subnet "" picks a
// free one; mtu 0 is DefaultMTU. On error nothing of it is left.
func (s *Store) Create(name, subnet string, mtu int) (n *Network, err error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if mtu != 0 && (mtu < 1280 || mtu > 65535) {
		return nil, fmt.Errorf("--mtu %d: want 1280 to 65535", mtu)
	}
	err = s.locked(func() error {
		n, err = s.create(name, subnet, mtu)
		return err
	})
	return n, err
}

func (s *Store) create(name, subnet string, mtu int) (*Network, error) {
	if _, err := s.Get(name); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, name)
	}
	nets, err := s.List()
	if err != nil {
		return nil, err
	}
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	prefix, err := chooseSubnet(subnet, nets, routes)
	if err != nil {
		return nil, err
	}
	n := &Network{Name: name, Bridge: freeBridge(nets), Subnet: prefix, Gateway: prefix.Addr().Next(),
		MTU: cmp.Or(mtu, DefaultMTU), Created: time.Now().UTC(), Endpoints: map[string]*Endpoint{}}
	// The record first: a kiln killed before the bridge is up leaves a network that its next
	// container sets up (ensure) or `kiln network rm` removes, not a bridge and rules nothing names.
	if err := s.put(n); err != nil {
		return nil, err
	}
	if err := setUpHost(n); err != nil {
		tearDownHost(n)
		s.remove(n.Name)
		return nil, fmt.Errorf("create network %s: %w", name, err)
	}
	return n, nil
}

// chooseSubnet checks the --subnet given, or picks a free one from the pool.
func chooseSubnet(subnet string, nets []*Network, routes []routed) (netip.Prefix, error) {
	if subnet == "" {
		for _, p := range pool() {
			if overlap(p, nets, routes) == "" {
				return p, nil
			}
		}
		return netip.Prefix{}, errors.New("no free subnet in 10.88.0.0-10.254.0.0/16: give one with --subnet")
	}
	p, err := netip.ParsePrefix(subnet)
	switch {
	case err != nil:
		return p, fmt.Errorf("--subnet %s: %w", subnet, err)
	case !p.Addr().Is4():
		return p, fmt.Errorf("--subnet %s: only IPv4 subnets are supported", subnet)
	case p.Bits() > 30 || p.Bits() < 8:
		return p, fmt.Errorf("--subnet %s: want a prefix length from /8 to /30", subnet)
	case p.Masked() != p:
		return p, fmt.Errorf("--subnet %s: host bits set (the network is %s)", subnet, p.Masked())
	}
	for _, r := range reserved {
		if r.Overlaps(p) {
			return p, fmt.Errorf("--subnet %s: overlaps %s, which is not for hosts' addresses", subnet, r)
		}
	}
	if why := overlap(p, nets, routes); why != "" {
		return p, fmt.Errorf("--subnet %s: overlaps %s", subnet, why)
	}
	return p, nil
}

// reserved are IPv4 ranges a network cannot use whatever the host's routes say: "this"
// network, loopback, link-local, multicast and the reserved class E with the broadcast address.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("224.0.0.0/3"),
}

// overlap names what p overlaps, or is "".
func overlap(p netip.Prefix, nets []*Network, routes []routed) string {
	for _, n := range nets {
		if n.Subnet.Overlaps(p) {
			return fmt.Sprintf("network %s (%s)", n.Name, n.Subnet)
		}
	}
	for _, r := range routes {
		if r.dst.Overlaps(p) {
			return fmt.Sprintf("the host's route to %s (dev %s)", r.dst, r.dev)
		}
	}
	return ""
}

// freeBridge is the first kilnN that no network of this root uses and no link has.
func freeBridge(nets []*Network) string {
	used := map[string]bool{}
	for _, n := range nets {
		used[n.Bridge] = true
	}
	for i := 0; ; i++ {
		name := fmt.Sprintf("kiln%d", i)
		if !used[name] && !linkExists(name) {
			return name
		}
	}
}

func setUpHost(n *Network) error {
	if err := setUpBridge(n); err != nil {
		return err
	}
	return addNetworkRules(n)
}

func tearDownHost(n *Network) error {
	return errors.Join(deleteRules(netTag(n.Bridge)), deleteLink(n.Bridge))
}

// ensure returns the network a container joins: the default one is created on first use, and
// a bridge or masquerade rules that are gone (someone flushed the ruleset), or set up by an
// older kiln, are set up again.
func (s *Store) ensure(name string) (*Network, error) {
	n, err := s.Get(name)
	if errors.Is(err, ErrNotFound) && name == DefaultName {
		return s.create(name, "", 0)
	}
	if err != nil {
		return nil, err
	}
	if !linkExists(n.Bridge) || !hasNetworkRules(n) || ipv6On(n.Bridge) {
		if err := setUpHost(n); err != nil {
			return nil, fmt.Errorf("network %s: %w", name, err)
		}
	}
	return n, nil
}

// Remove deletes a network with no containers: its rules, its bridge, its record.
func (s *Store) Remove(name string) error {
	return s.locked(func() error {
		n, err := s.Get(name)
		if err != nil {
			return err
		}
		if len(n.Endpoints) > 0 {
			var names []string
			for _, ep := range n.Endpoints {
				names = append(names, cmp.Or(ep.Name, short(ep.Container)))
			}
			sort.Strings(names)
			return fmt.Errorf("network %s: %w: %s", name, ErrInUse, strings.Join(names, ", "))
		}
		if err := tearDownHost(n); err != nil {
			return fmt.Errorf("remove network %s: %w", name, err)
		}
		return s.remove(name)
	})
}
