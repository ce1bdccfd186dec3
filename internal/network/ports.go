package network

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParsePublish reads one -p value, Docker's [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], with
// ranges (8080-8081:80-81) expanded. An absent HOSTPORT is 0: any free port; a host range for
// one container port (8000-8010:80) is one port, the first free one of the range.
func ParsePublish(s string) ([]Port, error) {
	bad := func(why string, a ...any) error { return fmt.Errorf("-p %s: %s", s, fmt.Sprintf(why, a...)) }
	spec, proto, _ := strings.Cut(s, "/")
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp":
	default:
		return nil, bad("protocol %q: want tcp or udp", proto)
	}
	var hostIP netip.Addr
	parts := strings.Split(spec, ":")
	if len(parts) == 3 {
		ip, err := netip.ParseAddr(strings.Trim(parts[0], "[]"))
		if err != nil || !ip.Is4() {
			return nil, bad("host address %q: want an IPv4 address", parts[0])
		}
		hostIP, parts = ip, parts[1:]
	}
	if len(parts) > 2 {
		return nil, bad("want [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")
	}
	cFirst, cLast, err := portRange(parts[len(parts)-1])
	if err != nil {
		return nil, bad("container port: %v", err)
	}
	hFirst, hLast := uint16(0), uint16(0)
	if len(parts) == 2 && parts[0] != "" {
		if hFirst, hLast, err = portRange(parts[0]); err != nil {
			return nil, bad("host port: %v", err)
		}
		if cFirst == cLast && hLast != hFirst {
			return []Port{{HostIP: hostIP, HostPort: hFirst, HostPortLast: hLast, ContainerPort: cFirst, Protocol: proto}}, nil
		}
		if hLast-hFirst != cLast-cFirst {
			return nil, bad("the host and container port ranges differ in size")
		}
	} else if cLast != cFirst {
		return nil, bad("a container port range needs a host port range of the same size")
	}
	var out []Port
	for i := 0; i <= int(cLast-cFirst); i++ {
		hp := hFirst
		if hp != 0 {
			hp += uint16(i)
		}
		out = append(out, Port{HostIP: hostIP, HostPort: hp, ContainerPort: cFirst + uint16(i), Protocol: proto})
	}
	return out, nil
}

// ParseExposed reads an image's ExposedPorts key ("80/tcp", "53/udp", "8080").
func ParseExposed(key string) (Port, error) {
	num, proto, _ := strings.Cut(key, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return Port{}, fmt.Errorf("exposed port %s: protocol %q: want tcp or udp", key, proto)
	}
	first, last, err := portRange(num)
	if err != nil || first != last {
		return Port{}, fmt.Errorf("exposed port %s: want PORT[/tcp|udp]", key)
	}
	return Port{ContainerPort: first, Protocol: proto}, nil
}

func portRange(s string) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(s, "-")
	first, err := portNumber(a)
	if err != nil {
		return 0, 0, err
	}
	last := first
	if isRange {
		if last, err = portNumber(b); err != nil {
			return 0, 0, err
		}
		if last < first {
			return 0, 0, fmt.Errorf("range %s ends before it starts", s)
		}
	}
	return first, last, nil
}

func portNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

// allocatePorts checks the requested ports against those other containers publish and against
// the host's listening sockets, and picks free host ports for HostPort 0.
func allocatePorts(req []Port, nets []*Network) ([]Port, error) {
	var taken []owned
	for _, n := range nets {
		for _, ep := range n.Endpoints {
			for _, p := range ep.Ports {
				taken = append(taken, owned{p, ep})
			}
		}
	}
	out := make([]Port, 0, len(req))
	for _, p := range req {
		var err error
		switch {
		case p.HostPort == 0:
			p.HostPort, err = freeHostPort(p, taken)
		case p.HostPortLast != 0:
			p, err = firstFreeInRange(p, taken)
		default:
			err = checkHostPort(p, taken)
		}
		if err != nil {
			return nil, err
		}
		taken = append(taken, owned{p, nil})
		out = append(out, p)
	}
	return out, nil
}

// owned is a published port and the endpoint publishing it (nil: this request).
type owned struct {
	Port
	by *Endpoint
}

func checkHostPort(p Port, taken []owned) error {
	for _, t := range taken {
		if !clash(p, t.Port) {
			continue
		}
		if t.by == nil {
			return fmt.Errorf("port %s/%s: published twice", p.HostAddr(), p.Protocol)
		}
		// Name it: a container whose `kiln run` was killed before it started still holds its
		// ports until `kiln rm`.
		return fmt.Errorf("port %s/%s: already published by a container (%s)", p.HostAddr(), p.Protocol, who(t.by))
	}
	ln, err := listen(p)
	if err != nil {
		return fmt.Errorf("port %s/%s is already in use on the host: %w", p.HostAddr(), p.Protocol, err)
	}
	ln.Close()
	return nil
}

func who(ep *Endpoint) string {
	if ep.Name != "" {
		return ep.Name + ", " + short(ep.Container)
	}
	return short(ep.Container)
}

func clash(a, b Port) bool {
	return a.Protocol == b.Protocol && a.HostPort == b.HostPort &&
		(!a.HostIP.IsValid() || !b.HostIP.IsValid() || a.HostIP.IsUnspecified() || b.HostIP.IsUnspecified() || a.HostIP == b.HostIP)
}

// freeHostPort asks the kernel for an ephemeral port, as Docker's -P does, skipping ones
// another container publishes.
func freeHostPort(p Port, taken []owned) (uint16, error) {
	for range 64 {
		q := p
		q.HostPort = 0
		ln, err := listen(q)
		if err != nil {
			return 0, fmt.Errorf("find a free host port for %d/%s: %w", p.ContainerPort, p.Protocol, err)
		}
		q.HostPort = ln.port()
		ln.Close()
		if checkHostPort(q, taken) == nil {
			return q.HostPort, nil
		}
	}
	return 0, fmt.Errorf("find a free host port for %d/%s: none found", p.ContainerPort, p.Protocol)
}

// firstFreeInRange is p with the first host port of its range nobody uses.
func firstFreeInRange(p Port, taken []owned) (Port, error) {
	first, last := p.HostPort, p.HostPortLast
	p.HostPortLast = 0
	for hp := int(first); hp <= int(last); hp++ {
		p.HostPort = uint16(hp)
		if checkHostPort(p, taken) == nil {
			return p, nil
		}
	}
	return p, fmt.Errorf("ports %d-%d/%s: all in use, on the host or by containers", first, last, p.Protocol)
}

// listener is a bound TCP listener or UDP socket.
type listener struct {
	c interface{ Close() error }
	a net.Addr
}

func (l listener) Close() error { return l.c.Close() }
func (l listener) port() uint16 {
	ap, _ := netip.ParseAddrPort(l.a.String())
	return ap.Port()
}

func listen(p Port) (listener, error) {
	addr := p.HostAddr()
	if p.Protocol == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return listener{}, err
		}
		return listener{c, c.LocalAddr()}, nil
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return listener{}, err
	}
	return listener{ln, ln.Addr()}, nil
}
