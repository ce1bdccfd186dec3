package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/seccomp"
)

// initArg0 marks a kiln process as a container's init.
const initArg0 = "kiln-init"

const (
	modeRun  = "run"  // a new container: set up namespaces' contents, then exec
	modeExec = "exec" // a process joining a running container: already in its namespaces
)

// initConfig is what the parent sends the init over its socket.
type initConfig struct {
	Mode   string
	Spec   *initSpec
	RootFS *specs.Mount `json:",omitempty"`
	// Seccomp is the filter, compiled by the parent: a few KiB to pass instead of the profile's
	// tens, and no compiling on the container's start path.
	Seccomp bpf `json:",omitempty"`
}

// bpf is a filter program that travels as its raw bytes (one base64 string in JSON): decoding
// hundreds of instructions as JSON objects was a third of the init's reading of its config.
type bpf []unix.SockFilter

func (p bpf) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 8*len(p))
	for _, in := range p {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return json.Marshal(b)
}

func (p *bpf) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	if len(b)%8 != 0 {
		return fmt.Errorf("seccomp program of %d bytes: not whole instructions", len(b))
	}
	prog := make(bpf, len(b)/8)
	for i := range prog {
		in := b[8*i:]
		prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.LittleEndian.Uint32(in[4:])}
	}
	*p = prog
	return nil
}

// newInitConfig takes the part of spec the init reads, and compiles its seccomp profile.
func newInitConfig(mode string, spec *specs.Spec, rootfs *specs.Mount) (*initConfig, error) {
	cfg := &initConfig{Mode: mode, Spec: newInitSpec(spec), RootFS: rootfs}
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return cfg, nil
	}
	prog, err := seccomp.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, errorf(125, "seccomp profile: %v", err)
	}
	cfg.Seccomp = prog
	return cfg, nil
}

// initSpec is the part of a runtime spec the init reads, with specs.Spec's JSON names.
// Decoding the whole of specs.Spec, a large tree of types, cost the init's fresh process 1-2
// ms; this costs half as much. What the parent alone does (cgroups, the resources, the seccomp
// profile, sent compiled) and what kiln does not implement stay out: TestInitSpecFields
// names every field of specs.Spec and specs.Linux one way or the other.
type initSpec struct {
	Process     *specs.Process    `json:"process,omitempty"`
	Root        *specs.Root       `json:"root,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Mounts      []specs.Mount     `json:"mounts,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *initLinux        `json:"linux,omitempty"`
}

type initLinux struct {
	Namespaces        []specs.LinuxNamespace `json:"namespaces,omitempty"`
	Devices           []specs.LinuxDevice    `json:"devices,omitempty"`
	Sysctl            map[string]string      `json:"sysctl,omitempty"`
	RootfsPropagation string                 `json:"rootfsPropagation,omitempty"`
	MaskedPaths       []string               `json:"maskedPaths,omitempty"`
	ReadonlyPaths     []string               `json:"readonlyPaths,omitempty"`
}

func newInitSpec(s *specs.Spec) *initSpec {
	is := &initSpec{Process: s.Process, Root: s.Root, Hostname: s.Hostname, Domainname: s.Domainname,
		Mounts: s.Mounts, Annotations: s.Annotations}
	if l := s.Linux; l != nil {
		is.Linux = &initLinux{Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths, ReadonlyPaths: l.ReadonlyPaths}
	}
	return is
}

// spec is is as a specs.Spec, for the init's steps.
func (is *initSpec) spec() *specs.Spec {
	if is == nil {
		return nil
	}
	s := &specs.Spec{Process: is.Process, Root: is.Root, Hostname: is.Hostname, Domainname: is.Domainname,
		Mounts: is.Mounts, Annotations: is.Annotations}
	if l := is.Linux; l != nil {
		s.Linux = &specs.Linux{Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths, ReadonlyPaths: l.ReadonlyPaths}
	}
	return s
}

// initError is what the init sends back when it cannot run the workload.
type initError struct {
	Code    int
	Message string
}

// consoleByte precedes the init's messages when it passes the console's master.
const consoleByte = 'C'

// readyByte is the init's last word before it execs the workload: EOF without it means the
// init died during setup.
const readyByte = 'R'

// goByte follows the config once the parent has put the init in its cgroups: the init may exec.
const goByte = 'G'

// The init's file descriptors.
const (
	fdExe  = 3
	fdSock = 4
)

// The init is dispatched from this package's initialiser, not from main: Go initialises a
// package after its imports, and most of kiln's other packages (registries, TLS, networking, the
// CLI) after this one, so a container's init skips a third of kiln's own start.
func init() { Init() }

// Init runs a container's init when this process is one, and never returns then. The package's
// initialiser calls it; calling it again (first thing in a test's TestMain) is harmless.
func Init() {
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	runtime.LockOSThread() // namespaces, capabilities and seccomp are per thread until execve
	sock := os.NewFile(fdSock, "init-socket")
	unix.CloseOnExec(fdExe)
	unix.CloseOnExec(fdSock)
	err := runInit(sock)
	reportError(sock, err)
	os.Exit(ExitCode(err))
}

func runInit(sock *os.File) error {
	// Until it execs the workload, the init is the kiln binary: keep other processes from
	// reading its memory or opening /proc/PID/exe.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return errorf(125, "prctl dumpable: %v", err)
	}
	var cfg initConfig
	dec := json.NewDecoder(sock)
	if err := dec.Decode(&cfg); err != nil {
		return errorf(125, "read config: %v", err)
	}
	g := &gate{r: io.MultiReader(dec.Buffered(), sock), sock: sock, mode: cfg.Mode}
	unix.Umask(0)
	switch cfg.Mode {
	case modeRun:
		return initContainer(g, &cfg)
	case modeExec:
		return initExec(g, &cfg)
	}
	return errorf(125, "unknown init mode %q", cfg.Mode)
}

func reportError(sock *os.File, err error) {
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: 125, Err: err}
	}
	json.NewEncoder(sock).Encode(initError{Code: e.Code, Message: e.Error()})
}

// initContainer sets up a new container, step by step, then runs the workload.
func initContainer(g *gate, cfg *initConfig) error {
	sock := g.sock
	s := cfg.Spec.spec()
	root := s.Root.Path
	steps := []struct {
		name string
		do   func() error
	}{
		{"join namespaces", func() error { return joinNamespaces(s.Linux.Namespaces) }},
		{"make mounts private", func() error { return privatizeMounts(s.Linux.RootfsPropagation) }},
		{"mount root", func() error { return mountRoot(root, cfg.RootFS) }},
		{"open root", func() error { return pinRoot(root) }},
		{"mount filesystems", func() error { return mountAll(root, s.Mounts) }},
		{"create devices", func() error { return createDevices(root, s.Linux.Devices) }},
		{"set up console", func() error { return setupConsole(sock, root, s.Process) }},
		{"set hostname", func() error { return setHostname(s) }},
		{"bring up loopback", func() error { return loopbackUp(s) }},
		{"make work directory", func() error { return mkdirInRoot(root, s.Process.Cwd) }},
		{"pivot root", func() error { unpinRoot(); return pivotRoot(root) }},
		{"set sysctls", func() error { return setSysctls(s.Linux) }},
		{"mask paths", func() error { return maskPaths(s.Linux.MaskedPaths) }},
		{"make paths read-only", func() error { return readonlyPaths(s.Linux.ReadonlyPaths) }},
		{"make root read-only", func() error { return readonlyRoot(s.Root.Readonly) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			return wrapStep(st.name, err)
		}
	}
	return startWorkload(g, s, cfg.Seccomp)
}

func wrapStep(name string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: 125, Err: fmt.Errorf("%s: %w", name, err)}
}

// gate is the rest of the parent's stream after the config, and the socket to answer on.
type gate struct {
	r    io.Reader
	sock *os.File
	mode string
}

// wait blocks until the parent says the init is in its cgroups.
func (g *gate) wait() error {
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(g.r, b); err != nil {
			return errorf(125, "wait for the runtime: %v", err)
		}
		switch b[0] {
		case goByte:
			return nil
		case '\n', ' ':
			continue // the end of the config's JSON
		}
		return errorf(125, "wait for the runtime: unexpected %q", b[0])
	}
}
