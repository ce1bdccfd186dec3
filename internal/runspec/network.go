package runspec

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// netMode is what a container's network namespace is.
type netMode int

const (
	netOwn  netMode = iota // a new one: none (loopback only), private or a named network
	netHost                // the host's
	netJoin                // another container's, at Options.NetNSPath
)

// network classifies --network: "host" shares the host's namespace, "container:NAME" joins
// the one at nsPath (the caller resolved NAME), anything else ("", "none", "private", a
// network's name) is a new namespace, plugged in (or not) by the caller.
func network(mode, nsPath string) (netMode, error) {
	switch {
	case mode == "host":
		return netHost, nil
	case strings.HasPrefix(mode, "container:"):
		if nsPath == "" {
			return 0, fmt.Errorf("--network %s: the container's network namespace is unknown", mode)
		}
		return netJoin, nil
	case nsPath != "":
		return 0, fmt.Errorf("--network %s: a namespace path is only for container:NAME", mode)
	}
	return netOwn, nil
}

// OwnNamespaces are the namespaces of a container that shares none with the host or another
// container: the default network, or --network none.
func OwnNamespaces() []specs.LinuxNamespace { return namespaces(netOwn, "") }

// namespaces: a new pid, ipc, uts, mount namespace; a new network namespace, the host's
// (--network host) or another container's; and a cgroup namespace, which the runtime only
// creates where cgroup2 is in use (as Docker's default "private" cgroupns mode does).
func namespaces(m netMode, nsPath string) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
	}
	switch m {
	case netOwn:
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	case netJoin:
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: nsPath})
	}
	return append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
}

// NetworkFiles are host files bind-mounted at /etc/hosts, /etc/hostname and /etc/resolv.conf,
// as Docker does; "" mounts nothing there. A -v at the same place wins.
type NetworkFiles struct {
	Hosts, Hostname, ResolvConf string
}

// withNetworkFiles adds binds for the network files the user did not bind themselves.
func withNetworkFiles(binds []Bind, f NetworkFiles) []Bind {
	out := slices.Clone(binds)
	for _, b := range []Bind{
		{Source: f.Hosts, Destination: "/etc/hosts"},
		{Source: f.Hostname, Destination: "/etc/hostname"},
		{Source: f.ResolvConf, Destination: "/etc/resolv.conf"},
	} {
		taken := slices.ContainsFunc(binds, func(u Bind) bool { return cleanDest(u.Destination) == b.Destination })
		if b.Source != "" && !taken {
			out = append(out, b)
		}
	}
	return out
}

func cleanDest(d string) string {
	return "/" + strings.Trim(d, "/")
}

// Hostname is the host name Build gives a container: --hostname, else the host's with
// --network host, else the ID's first 12 characters. The caller writes /etc/hostname and
// /etc/hosts with it before Build.
func Hostname(flag, id, network string) (string, error) {
	return hostname(flag, id, network == "host")
}
