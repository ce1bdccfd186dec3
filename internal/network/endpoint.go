package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
)

// Request is what a container asks of a network.
type Request struct {
	Network   string // the network's name
	Container string // the container's ID
	Root      string // the kiln root it is recorded in
	Name      string // its name
	Hostname  string
	HostsFile string // where its /etc/hosts is kept on the host
	Ports     []Port // HostPort 0: any free port
}

// Reserve gives the container an address and its ports on the network, creating the default
// network on first use, and writes the /etc/hosts of every member. The network's bridge is
// ready when it returns; the container is plugged in by Attach. On error nothing is reserved.
func (s *Store) Reserve(req Request) (ep *Endpoint, n *Network, err error) {
	err = s.locked(func() error {
		if n, err = s.ensure(req.Network); err != nil {
			return err
		}
		if _, ok := n.Endpoints[req.Container]; ok {
			return fmt.Errorf("container %s is already on network %s", short(req.Container), n.Name)
		}
		if ep, err = s.newEndpoint(n, req); err != nil {
			return err
		}
		n.Endpoints[ep.Container] = ep
		n.Last = ep.IP
		if err := s.put(n); err != nil {
			return err
		}
		if err := writeHostsFiles(n); err != nil {
			delete(n.Endpoints, ep.Container)
			return errors.Join(err, s.put(n), writeHostsFiles(n))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return ep, n, nil
}

func (s *Store) newEndpoint(n *Network, req Request) (*Endpoint, error) {
	ip, err := freeAddress(n)
	if err != nil {
		return nil, err
	}
	nets, err := s.List()
	if err != nil {
		return nil, err
	}
	ports, err := allocatePorts(req.Ports, nets)
	if err != nil {
		return nil, err
	}
	return &Endpoint{Container: req.Container, Root: req.Root, Name: req.Name, Hostname: req.Hostname, IP: ip,
		Veth: "kv" + short(req.Container), HostsFile: req.HostsFile, Ports: ports}, nil
}

// freeAddress is the first address after the one handed out last that no member has, going
// round the subnet (as CNI's host-local does): an address just released is the last to come
// back, so no neighbour cache on the bridge still points it at a veth being torn down.
func freeAddress(n *Network) (netip.Addr, error) {
	used := map[netip.Addr]bool{n.Gateway: true}
	for _, ep := range n.Endpoints {
		used[ep.IP] = true
	}
	first, last := n.Subnet.Masked().Addr().Next(), broadcast(n.Subnet)
	a := n.Last
	if !a.IsValid() || !n.Subnet.Contains(a) {
		a = first
	}
	for range 1 << min(32-n.Subnet.Bits(), 24) {
		if a = a.Next(); !a.Less(last) {
			a = first
		}
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("network %s: no free address left in %s", n.Name, n.Subnet)
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Attach plugs the container whose init is pid (on the host) into network: called once its
// network namespace exists, on the start path, so it reads the record without the lock and
// writes nothing. If the container dies, the veth goes with its namespace; the rest is
// released by Release or Sweep.
func (s *Store) Attach(network, id string, pid int) error {
	n, err := s.Get(network)
	if err != nil {
		return err
	}
	ep, ok := n.Endpoints[id]
	if !ok {
		return fmt.Errorf("network %s: container %s has no address reserved", network, short(id))
	}
	if err := plug(n, ep, pid); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return addPortRules(ep)
}

// Release undoes Reserve and Attach for the container: its rules, its veth (if the kernel has
// not already removed it with the namespace), its address, its line in the others' /etc/hosts.
// A container on no network is nothing to do.
func (s *Store) Release(id string) error {
	return s.locked(func() error {
		n, ep, err := s.endpointOf(id)
		if err != nil || ep == nil {
			return err
		}
		return s.release(n, ep)
	})
}

func (s *Store) release(n *Network, ep *Endpoint) error {
	var errs []error
	if len(ep.Ports) > 0 {
		errs = append(errs, deleteRules(ctrTag(ep.Container)))
	}
	// The kernel removes the veth with the container's namespace, in its own time (deleting
	// it here would wait for that teardown: milliseconds, tens on a busy host). A namespace
	// that a container:NAME joiner keeps alive would keep it, and the address, in use.
	if ep.Shared {
		errs = append(errs, deleteLink(ep.Veth))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release %s from network %s: %w", short(ep.Container), n.Name, err)
	}
	delete(n.Endpoints, ep.Container)
	if err := s.put(n); err != nil {
		return err
	}
	return writeHostsFiles(n)
}

// Sweep releases the endpoints of containers gone says are gone (their record is gone, or says
// they exited): what a container killed without its monitor (kill -9) still holds. It reads the records without the lock and only
// takes it when there is something to release, so it is cheap to call from every command.
func (s *Store) Sweep(gone func(*Endpoint) bool) error {
	nets, err := s.List()
	if err != nil {
		return err
	}
	var stale []string
	for _, n := range nets {
		for id, ep := range n.Endpoints {
			if gone(ep) {
				stale = append(stale, id)
			}
		}
	}
	if len(stale) == 0 {
		return nil
	}
	return s.locked(func() error {
		var errs []error
		for _, id := range stale {
			n, ep, err := s.endpointOf(id)
			if err == nil && ep != nil && gone(ep) {
				err = s.release(n, ep)
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

func (s *Store) remove(name string) error {
	if err := os.Remove(s.path(name)); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

// Share marks the container's endpoint as shared by a container that joins its network
// namespace; see Endpoint.Shared. A container on no network is nothing to do.
func (s *Store) Share(id string) error {
	return s.locked(func() error {
		n, ep, err := s.endpointOf(id)
		if err != nil || ep == nil || ep.Shared {
			return err
		}
		ep.Shared = true
		return s.put(n)
	})
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
