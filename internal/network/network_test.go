package network

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{
		"private":       {Kind: "bridge", Network: DefaultName},
		"none":          {Kind: "none"},
		"host":          {Kind: "host"},
		"container:web": {Kind: "container", Container: "web"},
		"backend":       {Kind: "bridge", Network: "backend"},
	} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"container:": "--network container:: name the container (container:NAME)",
		"-bad":       `--network -bad: network name "-bad": want [a-zA-Z0-9][a-zA-Z0-9_.-]*`,
	} {
		if _, err := ParseMode(in); err == nil || err.Error() != want {
			t.Errorf("ParseMode(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestParsePublish(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for in, want := range map[string][]Port{
		"80":                    {{ContainerPort: 80, Protocol: "tcp"}},
		"8080:80":               {{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"127.0.0.1:5353:53/udp": {{HostIP: lo, HostPort: 5353, ContainerPort: 53, Protocol: "udp"}},
		"127.0.0.1::80":         {{HostIP: lo, ContainerPort: 80, Protocol: "tcp"}},
		"9000-9001:80-81":       {{HostPort: 9000, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 9001, ContainerPort: 81, Protocol: "tcp"}},
		"8000-8010:80":          {{HostPort: 8000, HostPortLast: 8010, ContainerPort: 80, Protocol: "tcp"}},
	} {
		got, err := ParsePublish(in)
		if err != nil || len(got) != len(want) {
			t.Errorf("ParsePublish(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("ParsePublish(%q)[%d] = %+v, want %+v", in, i, got[i], want[i])
			}
		}
	}
	for in, want := range map[string]string{
		"80/sctp":         `-p 80/sctp: protocol "sctp": want tcp or udp`,
		"0":               `-p 0: container port: "0" is not a port number (1-65535)`,
		"x:80:80":         `-p x:80:80: host address "x": want an IPv4 address`,
		"9000-9002:80-81": "-p 9000-9002:80-81: the host and container port ranges differ in size",
		"80-81":           "-p 80-81: a container port range needs a host port range of the same size",
	} {
		if _, err := ParsePublish(in); err == nil || err.Error() != want {
			t.Errorf("ParsePublish(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestChooseSubnet(t *testing.T) {
	nets := []*Network{{Name: "a", Subnet: netip.MustParsePrefix("10.88.0.0/16")}}
	routes := []routed{{netip.MustParsePrefix("10.89.0.0/16"), "eth0"}}
	got, err := chooseSubnet("", nets, routes)
	if err != nil || got != netip.MustParsePrefix("10.90.0.0/16") {
		t.Errorf("chooseSubnet picked %v, %v; want 10.90.0.0/16, the first free", got, err)
	}
	for in, want := range map[string]string{
		"10.88.1.0/24": "--subnet 10.88.1.0/24: overlaps network a (10.88.0.0/16)",
		"10.89.0.0/24": "--subnet 10.89.0.0/24: overlaps the host's route to 10.89.0.0/16 (dev eth0)",
		"10.1.2.3/24":  "--subnet 10.1.2.3/24: host bits set (the network is 10.1.2.0/24)",
		"fd00::/64":    "--subnet fd00::/64: only IPv4 subnets are supported",
		"10.0.0.0/31":  "--subnet 10.0.0.0/31: want a prefix length from /8 to /30",
		"127.1.0.0/16": "--subnet 127.1.0.0/16: overlaps 127.0.0.0/8, which is not for hosts' addresses",
		"230.0.0.0/24": "--subnet 230.0.0.0/24: overlaps 224.0.0.0/3, which is not for hosts' addresses",
	} {
		if _, err := chooseSubnet(in, nets, routes); err == nil || err.Error() != want {
			t.Errorf("chooseSubnet(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestFreeAddress(t *testing.T) {
	n := &Network{Name: "n", Subnet: netip.MustParsePrefix("10.9.0.0/30"), Gateway: netip.MustParseAddr("10.9.0.1"),
		Endpoints: map[string]*Endpoint{}}
	a, err := freeAddress(n)
	if err != nil || a != netip.MustParseAddr("10.9.0.2") {
		t.Fatalf("first address %v, %v; want 10.9.0.2", a, err)
	}
	n.Endpoints["x"] = &Endpoint{IP: a}
	if a, err := freeAddress(n); err == nil {
		t.Errorf("a full /30 gave %v; want an error (10.9.0.3 is the broadcast address)", a)
	}
	// Round the subnet: after .5 comes .6, though .2 is free; after .6, .2 again.
	n = &Network{Name: "n", Subnet: netip.MustParsePrefix("10.9.0.0/29"), Gateway: netip.MustParseAddr("10.9.0.1"),
		Last: netip.MustParseAddr("10.9.0.5"), Endpoints: map[string]*Endpoint{}}
	for _, want := range []string{"10.9.0.6", "10.9.0.2"} {
		a, err := freeAddress(n)
		if err != nil || a.String() != want {
			t.Errorf("after %v: %v, %v; want %s", n.Last, a, err, want)
		}
		n.Last = a
	}
}

func TestClash(t *testing.T) {
	any80 := Port{HostPort: 80, Protocol: "tcp"}
	lo80 := Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 80, Protocol: "tcp"}
	lo2 := Port{HostIP: netip.MustParseAddr("127.0.0.2"), HostPort: 80, Protocol: "tcp"}
	udp80 := Port{HostPort: 80, Protocol: "udp"}
	if !clash(any80, lo80) || clash(lo80, lo2) || clash(any80, udp80) {
		t.Error("clash: want 0.0.0.0:80 to clash with 127.0.0.1:80 only, per protocol")
	}
}

func TestHostsFiles(t *testing.T) {
	dir := t.TempDir()
	n := &Network{Endpoints: map[string]*Endpoint{}}
	add := func(id, name string, ip string) *Endpoint {
		ep := &Endpoint{Container: id + strings.Repeat("0", 64-len(id)), Name: name, Hostname: id,
			IP: netip.MustParseAddr(ip), HostsFile: filepath.Join(dir, name)}
		n.Endpoints[ep.Container] = ep
		return ep
	}
	web := add("aaaaaaaaaaaa", "web", "10.0.0.2")
	add("bbbbbbbbbbbb", "db", "10.0.0.3")
	if err := writeHostsFiles(n); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(web.HostsFile)
	b, _ := os.ReadFile(web.HostsFile)
	want := hostsHeader + "10.0.0.2\taaaaaaaaaaaa web\n10.0.0.3\tbbbbbbbbbbbb db\n"
	if string(b) != want {
		t.Errorf("web's hosts:\n%s\nwant:\n%s", b, want)
	}
	delete(n.Endpoints, "bbbbbbbbbbbb"+strings.Repeat("0", 52))
	if err := writeHostsFiles(n); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(web.HostsFile)
	b, _ = os.ReadFile(web.HostsFile)
	if string(b) != hostsHeader+"10.0.0.2\taaaaaaaaaaaa web\n" || !os.SameFile(before, after) {
		t.Errorf("after db left, web's hosts (same inode %v):\n%s", os.SameFile(before, after), b)
	}
}

func TestWithoutLoopback(t *testing.T) {
	in := "# managed\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\nsearch example\n"
	out, ok := withoutLoopback([]byte(in))
	if !ok || string(out) != "# managed\nnameserver 192.0.2.53\nsearch example\n" {
		t.Errorf("withoutLoopback = %q, %v", out, ok)
	}
	if _, ok := withoutLoopback([]byte("nameserver 127.0.0.53\n")); ok {
		t.Error("only a loopback resolver: want ok false (the fallback is used)")
	}
}

func TestStoreRecords(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{Name: "one", Bridge: "kiln9", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Endpoints: map[string]*Endpoint{
		"c1": {Container: "c1", IP: netip.MustParseAddr("10.9.0.2")}}}
	if err := s.put(n); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("one")
	if err != nil || got.Subnet != n.Subnet || got.Endpoints["c1"].IP != n.Endpoints["c1"].IP {
		t.Errorf("Get = %+v, %v", got, err)
	}
	nn, ep, err := s.endpointOf("c1")
	if err != nil || nn.Name != "one" || ep.Container != "c1" {
		t.Errorf("endpointOf(c1) = %v, %v, %v", nn, ep, err)
	}
	if _, err := s.Get("two"); err == nil || err.Error() != "no such network: two" {
		t.Errorf("Get(two) error %v", err)
	}
}

// TestAllocatePortsNamesOwner: a port another container publishes is refused with that
// container named; a port asked for twice in one run is refused as such.
func TestAllocatePortsNamesOwner(t *testing.T) {
	id := "0123456789abcdef0123"
	p := Port{HostPort: 1, ContainerPort: 80, Protocol: "tcp"}
	nets := []*Network{{Name: "kiln", Endpoints: map[string]*Endpoint{id: {Container: id, Name: "web", Ports: []Port{p}}}}}
	_, err := allocatePorts([]Port{p}, nets)
	if err == nil || !strings.Contains(err.Error(), "already published by a container (web, "+id[:12]+")") {
		t.Errorf("a port container web publishes: %v", err)
	}
	ln, err := listen(Port{HostIP: netip.MustParseAddr("127.0.0.1"), Protocol: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	free := ln.port()
	ln.Close()
	q := Port{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: free, ContainerPort: 80, Protocol: "tcp"}
	if _, err := allocatePorts([]Port{q, {HostPort: free, ContainerPort: 81, Protocol: "tcp"}}, nil); err == nil ||
		!strings.Contains(err.Error(), "published twice") {
		t.Errorf("one port asked for twice: %v", err)
	}
}

// TestAllocatePortsFromRange takes the first port of a host range that neither the host nor
// another container uses.
func TestAllocatePortsFromRange(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0") // a port the host uses
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	first := uint16(busy.Addr().(*net.TCPAddr).Port)
	if first > 65000 {
		t.Skipf("SKIP: the kernel gave port %d, too near the end for a range", first)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	other := &Endpoint{Container: strings.Repeat("c", 64), Ports: []Port{{HostIP: lo, HostPort: first + 1, ContainerPort: 80, Protocol: "tcp"}}}
	nets := []*Network{{Name: "n", Endpoints: map[string]*Endpoint{other.Container: other}}}
	req := Port{HostIP: lo, HostPort: first, HostPortLast: first + 5, ContainerPort: 80, Protocol: "tcp"}
	got, err := allocatePorts([]Port{req}, nets)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].HostPort < first+2 || got[0].HostPort > first+5 || got[0].HostPortLast != 0 {
		t.Errorf("allocated %+v from %d-%d with %d used by the host and %d by a container", got, first, first+5, first, first+1)
	}
	req.HostPortLast = first
	if _, err := allocatePorts([]Port{req}, nets); err == nil {
		t.Errorf("a range of one port the host uses was allocated")
	}
}
