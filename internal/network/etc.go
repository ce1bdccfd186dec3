package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
)

// The files a container sees at /etc/hosts, /etc/hostname and /etc/resolv.conf are kept in its
// directory on the host and bind-mounted, as Docker does. A bind mount pins the file's inode,
// so they are rewritten in place, never replaced.

const hostsHeader = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// LoopbackHosts is /etc/hosts without a network: the loopback names and the container's own.
func LoopbackHosts(hostname string) []byte {
	return []byte(hostsHeader + "127.0.1.1\t" + hostname + "\n")
}

// hostsFor is /etc/hosts for ep on n: its own name first, then every other member by name.
func hostsFor(n *Network, ep *Endpoint) []byte {
	var b strings.Builder
	b.WriteString(hostsHeader)
	fmt.Fprintf(&b, "%s\t%s\n", ep.IP, names(ep))
	others := make([]*Endpoint, 0, len(n.Endpoints))
	for _, o := range n.Endpoints {
		if o.Container != ep.Container {
			others = append(others, o)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].IP.Less(others[j].IP) })
	for _, o := range others {
		fmt.Fprintf(&b, "%s\t%s\n", o.IP, names(o))
	}
	return []byte(b.String())
}

func names(ep *Endpoint) string {
	ns := []string{ep.Hostname}
	if ep.Name != "" && ep.Name != ep.Hostname {
		ns = append(ns, ep.Name)
	}
	if s := short(ep.Container); s != ep.Hostname {
		ns = append(ns, s)
	}
	return strings.Join(ns, " ")
}

// writeHostsFiles rewrites every member's /etc/hosts.
func writeHostsFiles(n *Network) error {
	for _, ep := range n.Endpoints {
		if ep.HostsFile == "" {
			continue
		}
		if err := WriteInPlace(ep.HostsFile, hostsFor(n, ep)); err != nil {
			return err
		}
	}
	return nil
}

// WriteInPlace replaces a file's content keeping its inode (a bind mount of it stays valid),
// creating it if needed. A container that has gone since is no error.
func WriteInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if os.IsNotExist(err) {
		return nil // its directory is gone: the container was removed
	}
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(data, 0); err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ResolvConf is the host's resolver configuration for a container with a network namespace of
// its own: nameservers on the host's loopback (systemd-resolved's 127.0.0.53, a local dnsmasq)
// cannot be reached from there, so they are dropped, systemd-resolved's upstream list is used
// when it exists, and Google's public resolvers stand in when nothing is left (as Docker does).
func ResolvConf() []byte {
	for _, p := range []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"} {
		if b, err := os.ReadFile(p); err == nil {
			if out, ok := withoutLoopback(b); ok {
				return out
			}
		}
	}
	return []byte("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
}

// withoutLoopback drops loopback nameservers; ok is false when no nameserver is left.
func withoutLoopback(b []byte) ([]byte, bool) {
	var out bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			a, err := netip.ParseAddr(f[1])
			if err == nil && a.IsLoopback() {
				continue
			}
			servers++
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), servers > 0
}

// HostFile is a host file's content for --network host (empty when it cannot be read).
func HostFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return []byte{}
	}
	return b
}
