package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/registry"
	"github.com/kiln-project/kiln/internal/runspec"
	"github.com/kiln-project/kiln/internal/runtime"
	"github.com/kiln-project/kiln/internal/store"
	"github.com/kiln-project/kiln/internal/volume"
)

// prepared is a container whose record, root, volumes and spec exist, ready to start. Everything
// the monitor needs is on disk: config.json (the runtime spec) and rootfs.json beside state.json.
type prepared struct {
	rec    *container.Container
	root   string
	spec   *specs.Spec
	rootfs *specs.Mount
	// lockedThread: the caller (a monitor) is locked to the thread that will wait for the
	// container; see runtime.Config.LockedThread.
	lockedThread bool
	// forKeeper: the container becomes the child of the caller's parent, its keeper, which is
	// then its monitor; see runtime.Config.ForKeeper.
	forKeeper bool
	// discardAtExit: kiln run --rm in the foreground, where kiln itself waits for the exit
	// status: the record goes without first saying how the container ended.
	discardAtExit bool
}

const (
	specFile   = "config.json"
	rootfsFile = "rootfs.json"
)

// prepare creates the container's record and everything it needs, without starting it. On error
// nothing is left behind.
func prepare(ctx context.Context, e *env, f *runFlags, image string, args []string, id string) (_ *prepared, err error) {
	st, err := e.store()
	if err != nil {
		return nil, err
	}
	policy, err := registry.ParsePolicy(f.pull)
	if err != nil {
		return nil, err
	}
	puller := registry.Puller{Options: e.registryOptions(f.tlsVerify, nil)}
	d, err := puller.Ensure(ctx, st, image, policy)
	if err != nil {
		return nil, err
	}
	img, err := st.Image(d)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", image, err)
	}
	cs, err := container.Open(e.root)
	if err != nil {
		return nil, err
	}
	// The record names the layers before they are unpacked, so a concurrent gc keeps them.
	st0 := newState(f, image, d, cf)
	st0.ID = id // "" or one from container.NewID, with an early init waiting in its cgroup
	rec, err := cs.Create(st0)
	if err != nil {
		return nil, err
	}
	p := &prepared{rec: rec, root: e.root, discardAtExit: f.rm && !f.detach}
	defer func() {
		if err != nil {
			p.discard()
		}
	}()
	dirs, err := st.Unpack(ctx, img)
	if err != nil {
		return nil, err
	}
	binds, err := p.volumes(f, cf, dirs)
	if err != nil {
		return nil, err
	}
	ns, err := setUpNetwork(e, f, rec, cf)
	if err != nil {
		return nil, err
	}
	if p.spec, err = runspec.Build(specOptions(f, rec, cf, args, binds, dirs, ns)); err != nil {
		return nil, err
	}
	if ns.network != "" {
		p.spec.Annotations[annotationNetwork] = ns.network
	}
	if ns.nsPath != "" {
		p.spec.Annotations[annotationJoinStart] = strconv.FormatUint(ns.start, 10)
	}
	lowers, err := withMountpoints(st, dirs, p.spec)
	if err != nil {
		return nil, err
	}
	p.rootfs = overlay(rec.Dir(), lowers)
	return p, p.save()
}

func newState(f *runFlags, image string, d v1.Hash, cf *v1.ConfigFile) *container.State {
	diffIDs := make([]string, len(cf.RootFS.DiffIDs))
	for i, h := range cf.RootFS.DiffIDs {
		diffIDs[i] = h.String()
	}
	st := &container.State{
		Name: f.name, Image: image, ImageDigest: d.String(), Created: time.Now().UTC(),
		Status: container.StatusCreated, AutoRemove: f.rm, Detached: f.detach, Terminal: f.tty,
		StopSignal: cf.Config.StopSignal, Layers: diffIDs, Network: f.network,
	}
	if !f.detach {
		// This kiln is the monitor from the start: if it dies before the container runs, the
		// record says so, and what it reserved (an address, ports) is freed.
		st.MonitorPid, st.MonitorStart = os.Getpid(), ownStart()
	}
	return st
}

// ownStart is this process's start time (see container.StartTime), read once: the record takes
// it when it is made and again when the container starts.
var ownStart = sync.OnceValue(func() uint64 {
	t, _ := container.StartTime(os.Getpid())
	return t
})

func specOptions(f *runFlags, rec *container.Container, cf *v1.ConfigFile, args []string, binds []runspec.Bind, dirs []string, ns *netSetup) runspec.Options {
	o := runspec.Options{
		ID: rec.ID(), Image: cf, Args: args, Env: f.env, EnvFiles: f.envFiles, HostEnv: os.LookupEnv,
		Workdir: f.workdir, User: f.user, Hostname: f.hostname, Terminal: f.tty, ReadOnly: f.readOnly,
		Tmpfs: f.tmpfs, Binds: binds, CapAdd: f.capAdd, CapDrop: f.capDrop, Privileged: f.privileged,
		SecurityOpt: f.secOpts, Network: f.network, Init: f.init, LayerDirs: dirs, Limits: f.limits.limits,
		RootPath: filepath.Join(rec.Dir(), "rootfs"), NetNSPath: ns.nsPath, NetworkFiles: ns.files,
	}
	if f.entrypointSet {
		o.Entrypoint = &f.entrypoint
	}
	return o
}

// withMountpoints puts the shared mountpoints layer for spec's mounts over the image's layers
// where the image allows it (see runspec.MountpointsFor); otherwise the runtime makes the
// mountpoints in the container's upper directory.
func withMountpoints(st *store.Store, layers []string, spec *specs.Spec) ([]string, error) {
	mp, ok := runspec.MountpointsFor(layers, spec)
	if !ok {
		return layers, nil
	}
	dir, err := st.Mountpoints(mp.Dirs, mp.Files, mp.Like)
	if err != nil {
		return nil, err
	}
	return append([]string{dir}, layers...), nil
}

// overlay is the container's root: the layers, read-only and shared, under the container's
// own upper directory.
func overlay(dir string, layers []string) *specs.Mount {
	return &specs.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(layers, ":"),
		"upperdir=" + filepath.Join(dir, "upper"),
		"workdir=" + filepath.Join(dir, "work"),
	}}
}

func (p *prepared) save() error {
	for name, v := range map[string]any{specFile: p.spec, rootfsFile: p.rootfs} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p.rec.Dir(), name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// load reads back what prepare saved, for the monitor.
func load(rec *container.Container, root string) (*prepared, error) {
	p := &prepared{rec: rec, root: root}
	for name, v := range map[string]any{specFile: &p.spec, rootfsFile: &p.rootfs} {
		b, err := os.ReadFile(filepath.Join(rec.Dir(), name))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return p, nil
}

// start runs the container and records it as running, with this process as its monitor.
func (p *prepared) start(ctx context.Context, stdio runtime.Stdio, early *runtime.Early) (*runtime.Container, error) {
	cfg := runtime.Config{ID: p.rec.ID(), Spec: p.spec, RootFS: p.rootfs, Stdio: stdio, StateDir: p.rec.Dir(),
		Early: early, LockedThread: p.lockedThread, ForKeeper: p.forKeeper}
	if name := p.spec.Annotations[annotationNetwork]; name != "" {
		cfg.OnCreate = func(pid int) error { return attachNetwork(name, p.rec.ID(), pid) }
	}
	err := checkJoin(p.spec)
	var ctr *runtime.Container
	if err == nil {
		ctr, err = runtime.Start(ctx, cfg)
	} else {
		early.Abort()
	}
	if err != nil {
		p.rec.Update(func(s *container.State) error {
			s.Status, s.Error, s.ExitCode, s.Finished = container.StatusExited, err.Error(), runtime.ExitCode(err), time.Now().UTC()
			return nil
		})
		return nil, err
	}
	pidStart, _ := container.StartTime(ctr.Pid())
	mon, monStart := os.Getpid(), ownStart()
	if p.forKeeper {
		mon = os.Getppid()
		monStart, _ = container.StartTime(mon)
	}
	err = p.rec.Update(func(s *container.State) error {
		s.Status, s.Pid, s.PidStart, s.Started = container.StatusRunning, ctr.Pid(), pidStart, time.Now().UTC()
		s.MonitorPid, s.MonitorStart = mon, monStart
		return nil
	})
	if err != nil {
		ctr.Signal(9)
		ctr.Wait()
		return nil, err
	}
	return ctr, nil
}

// finish waits for the container, records how it ended, removes it if asked, and returns its
// exit status.
func (p *prepared) finish(ctr *runtime.Container) int {
	exit, _ := ctr.Wait()
	p.record(exit)
	return exit.Code
}

// record writes how the container ended, releases its network, and removes it if it was run
// with --rm.
func (p *prepared) record(exit runtime.Exit) {
	if p.discardAtExit {
		s, err := p.rec.Saved()
		if discardState(p.root, p.rec, s, err) == nil {
			return
		}
		// Still there: keep how it ended, as without --rm, and try once more below.
	}
	var auto, bridged bool
	p.rec.Update(func(s *container.State) error {
		s.Status, s.ExitCode, s.Finished = container.StatusExited, exit.Code, time.Now().UTC()
		s.OOMKilled = exit.OOMKilled
		auto, bridged = s.AutoRemove, s.IPAddress != "" && !strings.HasPrefix(s.Network, "container:")
		return nil
	})
	if bridged {
		releaseNetwork(p.rec.ID())
	}
	if auto {
		p.discard()
	}
}

// discard removes the container's record, its place on a network and the anonymous volumes
// made for it.
func (p *prepared) discard() { discardContainer(p.root, p.rec) }

func discardContainer(root string, rec *container.Container) {
	s, err := rec.State()
	discardState(root, rec, s, err)
}

// discardState is discardContainer given the container's state s as read (err if it could not
// be). It returns the error of removing the record.
func discardState(root string, rec *container.Container, s *container.State, err error) error {
	if err != nil || s.IPAddress != "" {
		releaseNetwork(rec.ID())
	}
	if err == nil && len(s.AnonVolumes) > 0 {
		if vs, err := volume.Open(root); err == nil {
			for _, v := range s.AnonVolumes {
				vs.Remove(v, func(string) bool { return false })
			}
		}
	}
	return rec.Remove()
}
