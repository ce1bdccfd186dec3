package network

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// kiln's rules live in one table, "ip kiln", shared by every kiln root on the host. Each rule
// carries a comment naming its owner, "kiln-net:BRIDGE" for a network's masquerade rules,
// "kiln-ctr:ID" for a container's published ports, so both can be swept by owner.
//
//	table ip kiln {
//	  chain prerouting  { type nat hook prerouting priority dstnat; ... dnat per published port }
//	  chain output      { type nat hook output priority -100; ...   the same, for the host's own connections }
//	  chain postrouting { type nat hook postrouting priority srcnat; masquerade per network }
//	  chain guard       { type filter hook prerouting priority raw; bridge <-> 127.0.0.0/8 dropped }
//	  chain forward     { type filter hook forward priority filter; bridge -> elsewhere, not DNATed: jump isolate }
//	  chain isolate     { -> another network's bridge: drop }
//	}
var table = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "kiln"}

// guard drops what a container sends to 127.0.0.0/8 through the bridge: route_localnet, which
// 127.0.0.1:PORT needs, would otherwise let it reach the host's loopback-only services
// (CVE-2020-8558's lesson). It drops what comes from 127.0.0.0/8 too: route_localnet would let
// a crafted datagram from 127.0.0.2 reach a host service that trusts loopback peers.
func guard() *nftables.Chain {
	return &nftables.Chain{Name: "guard", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw}
}

func chains() (pre, out, post *nftables.Chain) {
	nat := nftables.ChainTypeNAT
	pre = &nftables.Chain{Name: "prerouting", Table: table, Type: nat,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}
	out = &nftables.Chain{Name: "output", Table: table, Type: nat,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest}
	post = &nftables.Chain{Name: "postrouting", Table: table, Type: nat,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
	return pre, out, post
}

// forward and isolate keep networks apart, as Docker's isolation chains do: what is routed from
// one network's bridge to another's is dropped, unless it was DNATed to a published port (which
// any client may reach). forward jumps to isolate for what leaves a bridge for another
// interface; isolate drops it when that interface is a kiln bridge.
func forward() *nftables.Chain {
	return &nftables.Chain{Name: "forward", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}
}

func isolate() *nftables.Chain { return &nftables.Chain{Name: "isolate", Table: table} }

// ensureTable adds the table and its chains; adding what exists changes nothing.
func ensureTable(c *nftables.Conn) {
	c.AddTable(table)
	pre, out, post := chains()
	c.AddChain(pre)
	c.AddChain(out)
	c.AddChain(post)
	c.AddChain(guard())
	c.AddChain(isolate()) // before forward, whose rules jump to it
	c.AddChain(forward())
}

// networkChains are the chains holding a network's rules (kiln-net:BRIDGE).
func networkChains() []*nftables.Chain {
	_, _, post := chains()
	return []*nftables.Chain{post, guard(), forward(), isolate()}
}

// networkRuleCount is how many rules addNetworkRules adds: hasNetworkRules checks them all.
const networkRuleCount = 7

// addNetworkRules masquerades the network's outbound traffic, and what reaches it through a
// published port from the host's loopback (127.0.0.1 cannot leave lo as a source) or from a
// container on it (hairpin: the reply must come back through the host).
func addNetworkRules(n *Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := deleteTagged(c, netTag(n.Bridge)); err != nil {
		return err
	}
	ensureTable(c)
	_, _, post := chains()
	tag := userdata.AppendString(nil, userdata.TypeComment, netTag(n.Bridge))
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	rules := [][]expr.Any{
		cat(matchSource(n.Subnet), matchOif(n.Bridge, expr.CmpOpNeq), masq()),
		cat(matchOif(n.Bridge, expr.CmpOpEq), matchSource(loopback), masq()),
		cat(matchOif(n.Bridge, expr.CmpOpEq), matchSource(n.Subnet), matchDNAT(), masq()),
	}
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: table, Chain: post, Exprs: r, UserData: tag})
	}
	c.AddRule(&nftables.Rule{Table: table, Chain: guard(), UserData: tag,
		Exprs: cat(matchIif(n.Bridge), matchDest(loopback), drop())})
	c.AddRule(&nftables.Rule{Table: table, Chain: guard(), UserData: tag,
		Exprs: cat(matchIif(n.Bridge), matchSource(loopback), drop())})
	c.AddRule(&nftables.Rule{Table: table, Chain: forward(), UserData: tag,
		Exprs: cat(matchIif(n.Bridge), matchOif(n.Bridge, expr.CmpOpNeq), matchNotDNAT(),
			[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: isolate().Name}})})
	c.AddRule(&nftables.Rule{Table: table, Chain: isolate(), UserData: tag,
		Exprs: cat(matchOif(n.Bridge, expr.CmpOpEq), drop())})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: add masquerade rules for %s: %w", n.Bridge, err)
	}
	return nil
}

// addPortRules publishes ep's ports: DNAT to the container for connections to a local address
// of the host, whether they come from outside (prerouting) or from the host itself (output).
func addPortRules(ep *Endpoint) error {
	if len(ep.Ports) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ensureTable(c)
	pre, out, _ := chains()
	tag := userdata.AppendString(nil, userdata.TypeComment, ctrTag(ep.Container))
	for _, p := range ep.Ports {
		r := dnatRule(ep.IP, p)
		// A port on the host's loopback is the host's own: a neighbour sending a frame to
		// 127.0.0.1 through the host would be DNATed in prerouting before the kernel drops
		// it as martian, and reach the container.
		if !p.HostIP.IsLoopback() {
			c.AddRule(&nftables.Rule{Table: table, Chain: pre, Exprs: r, UserData: tag})
		}
		c.AddRule(&nftables.Rule{Table: table, Chain: out, Exprs: r, UserData: tag})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: publish ports of %s: %w", short(ep.Container), err)
	}
	forgetUDPFlows(ep) // best effort (a kernel without ctnetlink): only flows older than the rule miss it
	return nil
}

// hasNetworkRules: n's masquerade and guard rules are in place.
func hasNetworkRules(n *Network) bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	count := 0
	for _, ch := range networkChains() {
		rules, err := c.GetRules(table, ch)
		if err != nil {
			return false
		}
		for _, r := range rules {
			if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && s == netTag(n.Bridge) {
				count++
			}
		}
	}
	return count == networkRuleCount
}

// deleteRules removes every rule carrying tag; no table is nothing to remove.
func deleteRules(tag string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := deleteTagged(c, tag); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete rules %s: %w", tag, err)
	}
	return nil
}

// deleteTagged queues the deletion of tag's rules on c.
func deleteTagged(c *nftables.Conn, tag string) error {
	pre, out, _ := chains()
	for _, ch := range append([]*nftables.Chain{pre, out}, networkChains()...) {
		rules, err := c.GetRules(table, ch)
		if err != nil {
			if isNoEntry(err) {
				continue
			}
			return fmt.Errorf("nftables: list rules of %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && s == tag {
				if err := c.DelRule(r); err != nil {
					return fmt.Errorf("nftables: delete rule %s: %w", tag, err)
				}
			}
		}
	}
	return nil
}

func isNoEntry(err error) bool { return errors.Is(err, unix.ENOENT) }

// ipsDstNAT is IPS_DST_NAT from linux/netfilter/nf_conntrack_common.h: the connection was DNATed.
const ipsDstNAT = 1 << 5

// dnatRule: fib daddr type local [ip daddr HOSTIP] meta l4proto P th dport HOSTPORT
// dnat to IP:CONTAINERPORT.
func dnatRule(ip netip.Addr, p Port) []expr.Any {
	proto := byte(unix.IPPROTO_TCP)
	if p.Protocol == "udp" {
		proto = unix.IPPROTO_UDP
	}
	e := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.HostIP.AsSlice()})
	}
	a := ip.As4()
	return append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}

func matchSource(p netip.Prefix) []expr.Any { return matchAddr(12, p) }
func matchDest(p netip.Prefix) []expr.Any   { return matchAddr(16, p) }

// matchAddr: the IPv4 address at offset (12 source, 16 destination) is in p.
func matchAddr(offset uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	bits := p.Bits()
	for i := range mask {
		switch {
		case bits >= 8:
			mask[i] = 0xff
		case bits > 0:
			mask[i] = byte(0xff << (8 - bits))
		}
		bits -= min(bits, 8)
	}
	a := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func matchIif(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(name)},
	}
}

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func matchOif(name string, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

// matchDNAT: ct status dnat.
func matchDNAT() []expr.Any { return ctStatusDNAT(expr.CmpOpNeq) }

// matchNotDNAT: ct status & dnat == 0.
func matchNotDNAT() []expr.Any { return ctStatusDNAT(expr.CmpOpEq) }

func ctStatusDNAT(op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)},
	}
}

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }
func drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
