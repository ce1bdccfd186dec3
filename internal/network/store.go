package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/flock"
)

// Store is the host's networks: DIR/NAME.json, changed only under DIR/lock, each record
// replaced atomically so readers never need the lock.
//
// Networks are the host's, not a kiln root's: bridges, routes, nftables rules and subnets are
// shared by everything on the host, so two roots with records of their own would both hand out
// 10.88.0.2 on kiln0. Their records live in HostDir, on the tmpfs /run, which a reboot clears
// together with the bridges they describe. Endpoints name the root their container is in.
type Store struct {
	dir string
}

// HostDir is where the host's network records live.
const HostDir = "/run/kiln/networks"

// Open returns the networks recorded in dir (HostDir, or a test's), making it if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open networks: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name+".json") }

// locked runs f holding the store's lock.
func (s *Store) locked(f func() error) error {
	l, err := flock.Open(context.Background(), filepath.Join(s.dir, "lock"), flock.Exclusive, true)
	if err != nil {
		return fmt.Errorf("lock networks: %w", err)
	}
	defer l.Close()
	return f()
}

// Get reads one network's record.
func (s *Store) Get(name string) (*Network, error) {
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read network %s: %w", name, err)
	}
	var n Network
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("read network %s: %s: %w", name, s.path(name), err)
	}
	if n.Endpoints == nil {
		n.Endpoints = map[string]*Endpoint{}
	}
	return &n, nil
}

// List reads every network's record, sorted by name.
func (s *Store) List() ([]*Network, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []*Network
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		n, err := s.Get(name)
		if errors.Is(err, ErrNotFound) { // removed since ReadDir
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) put(n *Network) error {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path(n.Name), append(b, '\n'), 0o600, atomicfile.NoSync, ""); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	return nil
}

// endpointOf finds the network a container is on, under the lock.
func (s *Store) endpointOf(id string) (*Network, *Endpoint, error) {
	nets, err := s.List()
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nets {
		if ep, ok := n.Endpoints[id]; ok {
			return n, ep, nil
		}
	}
	return nil, nil, nil
}
