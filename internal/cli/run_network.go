package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/network"
	"github.com/kiln-project/kiln/internal/runspec"
)

// netFlags are `kiln run`'s network options.
type netFlags struct {
	publish    []string
	publishAll bool
	mode       network.Mode   // parsed --network
	ports      []network.Port // parsed -p
}

func addNetworkFlags(fl *pflag.FlagSet, f *runFlags) {
	fl.StringVar(&f.network, "network", "private",
		"network: private (the default network), none (loopback only), host, container:NAME, or a network's name")
	fl.StringArrayVarP(&f.net.publish, "publish", "p", nil, "publish a port: [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")
	fl.BoolVarP(&f.net.publishAll, "publish-all", "P", false, "publish the image's exposed ports on free host ports")
}

// validateNetwork parses --network and -p before anything is set up.
func (f *runFlags) validateNetwork() error {
	m, err := network.ParseMode(f.network)
	if err != nil {
		return err
	}
	f.net.mode = m
	for _, p := range f.net.publish {
		ps, err := network.ParsePublish(p)
		if err != nil {
			return err
		}
		f.net.ports = append(f.net.ports, ps...)
	}
	if (len(f.net.ports) > 0 || f.net.publishAll) && m.Kind != "bridge" {
		return fmt.Errorf("-p/-P: --network %s has no ports of its own to publish", f.network)
	}
	if m.Kind == "container" && f.hostname != "" {
		return fmt.Errorf("--hostname %s: conflicts with --network %s", f.hostname, f.network)
	}
	return nil
}

// annotationNetwork names, in a container's saved spec, the network its start plugs it into.
const annotationNetwork = "org.kiln.network"

// annotationJoinStart is, for container:NAME, the start time of the process whose network
// namespace the container joins: checked again just before the start, so a pid reused since
// prepare is never joined.
const annotationJoinStart = "org.kiln.network.join-start"

// netSetup is what a container's network gives its spec.
type netSetup struct {
	nsPath  string // container:NAME: the namespace to join, /proc/PID/ns/net
	start   uint64 // ... of PID, started then
	files   runspec.NetworkFiles
	network string // the bridge network to attach to at start, or ""
}

// setUpNetwork reserves the container's address and ports and writes its /etc files. On error
// nothing is reserved; a later error is undone by prepared.discard.
func setUpNetwork(e *env, f *runFlags, rec *container.Container, cf *v1.ConfigFile) (*netSetup, error) {
	dir := rec.Dir()
	ns := &netSetup{files: runspec.NetworkFiles{Hosts: filepath.Join(dir, "hosts"),
		Hostname: filepath.Join(dir, "hostname"), ResolvConf: filepath.Join(dir, "resolv.conf")}}
	host, err := runspec.Hostname(f.hostname, rec.ID(), f.network)
	if err != nil {
		return nil, err
	}
	m := f.net.mode
	hosts, resolv := network.LoopbackHosts(host), network.ResolvConf()
	switch m.Kind {
	case "host":
		hosts, resolv = network.HostFile("/etc/hosts"), network.HostFile("/etc/resolv.conf")
	case "container":
		return joinContainerNetwork(e, rec, m.Container, ns)
	case "bridge":
		if err = reserveEndpoint(e, f, rec, cf, host, ns); err != nil {
			return nil, err
		}
		hosts = nil // written by Reserve, and kept current
	}
	for path, b := range map[string][]byte{ns.files.Hosts: hosts, ns.files.Hostname: []byte(host + "\n"), ns.files.ResolvConf: resolv} {
		if b == nil {
			continue
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

func reserveEndpoint(e *env, f *runFlags, rec *container.Container, cf *v1.ConfigFile, host string, ns *netSetup) error {
	ports, err := requestedPorts(f, cf)
	if err != nil {
		return err
	}
	st, err := rec.State()
	if err != nil {
		return err
	}
	nets, err := network.Open(network.HostDir)
	if err != nil {
		return err
	}
	root, err := filepath.Abs(e.root)
	if err != nil {
		return err
	}
	ep, n, err := nets.Reserve(network.Request{Network: f.net.mode.Network, Container: rec.ID(), Root: root, Name: st.Name,
		Hostname: host, HostsFile: ns.files.Hosts, Ports: ports})
	if err != nil {
		return err
	}
	ns.network = n.Name
	return rec.Update(func(s *container.State) error {
		s.Network, s.IPAddress, s.Ports = n.Name, ep.IP.String(), statePorts(ep.Ports)
		return nil
	})
}

// requestedPorts are -p's, then with -P the image's exposed ports not already published.
func requestedPorts(f *runFlags, cf *v1.ConfigFile) ([]network.Port, error) {
	ports := append([]network.Port(nil), f.net.ports...)
	if !f.net.publishAll {
		return ports, nil
	}
	keys := make([]string, 0, len(cf.Config.ExposedPorts))
	for k := range cf.Config.ExposedPorts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, err := network.ParseExposed(k)
		if err != nil {
			return nil, fmt.Errorf("image config: %w", err)
		}
		if !publishes(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

func publishes(ports []network.Port, p network.Port) bool {
	for _, q := range ports {
		if q.ContainerPort == p.ContainerPort && q.Protocol == p.Protocol {
			return true
		}
	}
	return false
}

// joinContainerNetwork is --network container:NAME: that running container's network
// namespace, /etc/hosts and /etc/resolv.conf.
func joinContainerNetwork(e *env, rec *container.Container, ref string, ns *netSetup) (*netSetup, error) {
	other, err := getContainer(e, ref)
	if err != nil {
		return nil, fmt.Errorf("--network container:%s: %w", ref, err)
	}
	s, err := other.State()
	if err != nil {
		return nil, err
	}
	if s.Status != container.StatusRunning || !container.Alive(s.Pid, s.PidStart) {
		return nil, fmt.Errorf("--network container:%s: the container is not running", ref)
	}
	if s.IPAddress != "" { // its namespace may now outlive it: its release must delete its veth
		nets, err := network.Open(network.HostDir)
		if err == nil {
			err = nets.Share(s.ID)
		}
		if err != nil {
			return nil, err
		}
	}
	ns.nsPath, ns.start = fmt.Sprintf("/proc/%d/ns/net", s.Pid), s.PidStart
	ns.files.Hosts = existing(filepath.Join(other.Dir(), "hosts"))
	ns.files.ResolvConf = existing(filepath.Join(other.Dir(), "resolv.conf"))
	ns.files.Hostname = ""
	err = rec.Update(func(st *container.State) error {
		st.Network, st.IPAddress, st.Ports = "container:"+s.ID, s.IPAddress, s.Ports
		return nil
	})
	return ns, err
}

// checkJoin refuses to start a container whose container:NAME has exited since prepare: its
// pid could name another process's namespace by now.
func checkJoin(spec *specs.Spec) error {
	start := spec.Annotations[annotationJoinStart]
	if start == "" {
		return nil
	}
	for _, ns := range spec.Linux.Namespaces {
		var pid int
		if _, err := fmt.Sscanf(ns.Path, "/proc/%d/ns/net", &pid); err != nil {
			continue
		}
		if st, err := strconv.ParseUint(start, 10, 64); err != nil || !container.Alive(pid, st) {
			return fmt.Errorf("--network container: the container (pid %d) has exited", pid)
		}
	}
	return nil
}

func existing(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

func statePorts(ps []network.Port) []container.Port {
	out := make([]container.Port, len(ps))
	for i, p := range ps {
		out[i] = container.Port{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if p.HostIP.IsValid() {
			out[i].HostIP = p.HostIP.String()
		}
	}
	return out
}

// attachNetwork is the runtime's OnCreate for a container on a bridge network.
func attachNetwork(name, id string, pid int) error {
	nets, err := network.Open(network.HostDir)
	if err != nil {
		return err
	}
	return nets.Attach(name, id, pid)
}

// releaseNetwork frees what the container holds on its network, if any.
func releaseNetwork(id string) error {
	nets, err := network.Open(network.HostDir)
	if err != nil {
		return err
	}
	return nets.Release(id)
}

// sweepNetworks releases what containers that are gone (their monitor killed with -9) still
// hold on the host's networks, whichever kiln root they were in. Commands call it on their
// way; its errors only matter to `kiln network`.
func sweepNetworks() error {
	nets, err := network.Open(network.HostDir)
	if err != nil {
		return err
	}
	roots := map[string]*container.Containers{}
	return nets.Sweep(func(ep *network.Endpoint) bool {
		// Stat first: opening a root creates it, and a test's root may be long gone.
		if _, err := os.Stat(filepath.Join(ep.Root, "containers", ep.Container)); errors.Is(err, fs.ErrNotExist) {
			return true
		}
		cs := roots[ep.Root]
		if cs == nil {
			if cs, err = container.Open(ep.Root); err != nil {
				return false
			}
			roots[ep.Root] = cs
		}
		rec, err := cs.Get(ep.Container)
		if err != nil {
			return errors.Is(err, container.ErrNotFound)
		}
		s, err := rec.State() // a process gone with its monitor is recorded as exited here
		return err == nil && s.Status == container.StatusExited
	})
}
