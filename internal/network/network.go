// Package network owns kiln's container networks: their records under $ROOT/networks, the
// addresses handed to containers (IPAM), the Linux bridge and veth pairs that carry the
// traffic, the nftables rules that masquerade it and publish ports, and the /etc/hosts,
// /etc/hostname and /etc/resolv.conf files a container sees.
//
// A container's life on a network has three steps, each safe to repeat:
//
//	ep, n, err := s.Reserve(network.Request{Network: "kiln", Container: id, ...}) // address, ports, hosts files
//	err = s.Attach("kiln", id, pid) // in the runtime's OnCreate: veth into the container, DNAT rules
//	err = s.Release(id)             // when it exits or is removed: rules, veth, address
//
// Sweep releases what containers that died without Release (a monitor killed with -9) held.
// The package never prints; it knows nothing of images or the runtime.
package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DefaultName is the network `--network private` means: created, with bridge kiln0 when that
// name is free, on first use.
const DefaultName = "kiln"

// Network is one network's record, $ROOT/networks/NAME.json.
type Network struct {
	Name      string
	Bridge    string       // the Linux bridge on the host
	Subnet    netip.Prefix // containers' addresses come from here
	Gateway   netip.Addr   // the bridge's address: the subnet's first
	MTU       int          // the bridge's and the veths'; see DefaultMTU
	Last      netip.Addr   `json:",omitzero"` // the address handed out last: allocation goes round
	Created   time.Time
	Endpoints map[string]*Endpoint `json:",omitempty"` // by container ID
}

// Endpoint is one container's place on a network.
type Endpoint struct {
	Container string // the container's ID
	Root      string // the kiln root the container is recorded in
	Name      string // its name: what the other members' /etc/hosts call it
	Hostname  string
	IP        netip.Addr
	Veth      string // the host side of its veth pair
	HostsFile string // its /etc/hosts on the host, rewritten in place when members change
	Ports     []Port `json:",omitempty"`
	// Shared is set once a container joined this one's namespace (container:NAME): then the
	// namespace may outlive the container, and Release must delete the veth itself.
	Shared bool `json:",omitempty"`
}

// Port is a published port: HostIP:HostPort on the host to ContainerPort in the container.
type Port struct {
	HostIP        netip.Addr `json:",omitzero"` // zero: every address of the host
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"
	// HostPortLast, in a request, makes HostPort-HostPortLast a range to take the first free
	// port from (-p 8000-8010:80, as Docker does); an allocated port has none.
	HostPortLast uint16 `json:",omitzero"`
}

// HostAddr is where the port listens on the host: "0.0.0.0:8080".
func (p Port) HostAddr() string {
	ip := p.HostIP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(ip, p.HostPort).String()
}

// Errors that callers check with errors.Is.
var (
	ErrNotFound = errors.New("no such network")
	ErrExists   = errors.New("network already exists")
	ErrInUse    = errors.New("in use by containers")
)

// Mode is what --network asks for.
type Mode struct {
	Kind      string // "none", "host", "container" or "bridge"
	Network   string // Kind bridge: the network's name (DefaultName for "private")
	Container string // Kind container: the container whose network namespace to share
}

// ParseMode reads --network: private (the default network), none, host, container:NAME, or the
// name of a network made with `kiln network create`.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "none", "host":
		return Mode{Kind: s}, nil
	case "", "private", "bridge", DefaultName:
		return Mode{Kind: "bridge", Network: DefaultName}, nil
	}
	if c, ok := strings.CutPrefix(s, "container:"); ok {
		if c == "" {
			return Mode{}, fmt.Errorf("--network %s: name the container (container:NAME)", s)
		}
		return Mode{Kind: "container", Container: c}, nil
	}
	if err := ValidateName(s); err != nil {
		return Mode{}, fmt.Errorf("--network %s: %w", s, err)
	}
	return Mode{Kind: "bridge", Network: s}, nil
}

// ValidateName accepts Docker's network names: [a-zA-Z0-9][a-zA-Z0-9_.-]*, up to 64 bytes, and
// not one --network gives another meaning.
func ValidateName(name string) error {
	switch name {
	case "none", "host", "private", "bridge", "default":
		return fmt.Errorf("%q is reserved", name)
	}
	if name == "" || len(name) > 64 {
		return fmt.Errorf("network name %q: want 1 to 64 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return fmt.Errorf("network name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
		}
	}
	return nil
}

// The owners nftables rules are tagged with (see nft_linux.go).
func netTag(bridge string) string { return "kiln-net:" + bridge }
func ctrTag(id string) string     { return "kiln-ctr:" + id }

// routed is a host route: its destination and device.
type routed struct {
	dst netip.Prefix
	dev string
}
