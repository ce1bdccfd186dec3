package runspec

import (
	"fmt"
	"path"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations kiln puts in a spec.
const (
	// AnnotationInit is "true" with --init: the runtime runs its own reaper
	// as PID 1, and the workload as its child.
	AnnotationInit = "org.kiln.init"
	// AnnotationStopSignal is the signal `kiln stop` sends first ("SIGTERM").
	AnnotationStopSignal = "org.opencontainers.image.stopSignal"
)

// Options are the image config and the `kiln run` flags a spec is made of.
type Options struct {
	ID    string         // the container's ID; its first 12 characters are the default hostname
	Image *v1.ConfigFile // nil: an empty config
	Args  []string       // the words after IMAGE on the command line
	// Entrypoint is --entrypoint: nil when not given, "" clears the image's.
	Entrypoint *string

	Env      []string                    // -e NAME=VALUE, or -e NAME (from HostEnv)
	EnvFiles []string                    // --env-file, read here (see ReadEnvFile)
	HostEnv  func(string) (string, bool) // for -e NAME and bare names in env files; nil: empty
	Workdir  string                      // -w
	User     string                      // -u user[:group]
	Hostname string                      // --hostname
	Terminal bool                        // -t

	ReadOnly bool     // --read-only: the root filesystem is read-only
	Tmpfs    []string // --tmpfs PATH[:OPTIONS]
	Binds    []Bind   // -v, volumes resolved to host paths by the caller

	CapAdd, CapDrop []string // --cap-add, --cap-drop: "NET_ADMIN", "cap_net_admin", "ALL"
	Privileged      bool     // --privileged
	SecurityOpt     []string // --security-opt: seccomp=unconfined|FILE, no-new-privileges[=BOOL], systempaths=unconfined, label=disable
	Network         string   // --network: see network.go
	Init            bool     // --init
	Limits          Limits   // --memory, --cpus, --pids-limit...: the container's cgroup limits

	NetNSPath    string       // --network container:NAME: that container's network namespace
	NetworkFiles NetworkFiles // bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf

	// LayerDirs are the image's unpacked layers, top first; only the
	// image's /etc/passwd and /etc/group are read from them.
	LayerDirs []string
	RootPath  string // Spec.Root.Path: where the runtime finds (or mounts) the root
}

// Build makes the spec `kiln run` hands the runtime. Errors name the flag
// and value at fault ("--cap-add FOO: unknown capability"); the result has
// passed Validate.
func Build(o Options) (*specs.Spec, error) {
	var img v1.Config
	if o.Image != nil {
		img = o.Image.Config
	}
	if !path.IsAbs(o.RootPath) {
		return nil, fmt.Errorf("root path %q: must be absolute", o.RootPath)
	}
	netMode, err := network(o.Network, o.NetNSPath)
	if err != nil {
		return nil, err
	}
	hostNetwork := netMode == netHost
	host, err := hostname(o.Hostname, o.ID, hostNetwork)
	if err != nil {
		return nil, err
	}
	proc, err := process(o, img, host)
	if err != nil {
		return nil, err
	}
	sec, err := parseSecurityOpts(o.SecurityOpt)
	if err != nil {
		return nil, err
	}
	proc.NoNewPrivileges = sec.noNewPrivileges
	filter, err := seccompProfile(sec, proc.Capabilities.Bounding, o.Privileged)
	if err != nil {
		return nil, err
	}
	ms, err := mounts(mountInput{binds: withNetworkFiles(o.Binds, o.NetworkFiles), tmpfs: o.Tmpfs, readOnly: o.ReadOnly, privileged: o.Privileged})
	if err != nil {
		return nil, err
	}
	stop, err := StopSignal(img.StopSignal)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	resources, err := resources(o.Limits, deviceRules(o.Privileged))
	if err != nil {
		return nil, err
	}
	spec := &specs.Spec{
		Version:     specs.Version,
		Process:     proc,
		Root:        &specs.Root{Path: o.RootPath, Readonly: o.ReadOnly},
		Hostname:    host,
		Mounts:      ms,
		Annotations: map[string]string{AnnotationStopSignal: stop},
		Linux: &specs.Linux{
			Namespaces: namespaces(netMode, o.NetNSPath),
			Resources:  resources,
			Seccomp:    filter,
		},
	}
	if !o.Privileged && !sec.systemPaths {
		spec.Linux.MaskedPaths = maskedPaths()
		spec.Linux.ReadonlyPaths = readonlyPaths()
	}
	if netMode == netOwn {
		// Docker's, for a network namespace of the container's own: ping
		// without CAP_NET_RAW, and any port without CAP_NET_BIND_SERVICE.
		spec.Linux.Sysctl = map[string]string{
			"net.ipv4.ping_group_range":           "0 2147483647",
			"net.ipv4.ip_unprivileged_port_start": "0",
		}
	}
	if o.Init {
		spec.Annotations[AnnotationInit] = "true"
	}
	if err := Validate(spec); err != nil {
		return nil, fmt.Errorf("runspec: built an invalid spec (a bug): %w", err)
	}
	return spec, nil
}

// process is the workload: command, environment, user, capabilities.
func process(o Options, img v1.Config, host string) (*specs.Process, error) {
	argv, err := command(img, o.Args, o.Entrypoint)
	if err != nil {
		return nil, err
	}
	cwd, err := workdir(o.Workdir, img.WorkingDir)
	if err != nil {
		return nil, err
	}
	user, home, err := resolveUser(o.User, img.User, o.LayerDirs)
	if err != nil {
		return nil, err
	}
	env, err := buildEnv(envInput{
		image: img.Env, files: o.EnvFiles, flags: o.Env, hostEnv: o.HostEnv,
		hostname: host, terminal: o.Terminal, home: home,
	})
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(o.CapAdd, o.CapDrop, o.Privileged)
	if err != nil {
		return nil, err
	}
	return &specs.Process{
		Terminal: o.Terminal,
		User:     user,
		Args:     argv,
		Env:      env,
		Cwd:      cwd,
		// Docker's sets: the same in bounding, permitted and effective;
		// nothing inheritable or ambient, so an exec'd program as a
		// non-root user keeps none unless its file grants them.
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  caps,
			Permitted: slices.Clone(caps),
			Effective: slices.Clone(caps),
		},
		// No rlimits and no OOMScoreAdj: the container inherits kiln's.
		// Docker's RLIMIT_NOFILE came from its daemon's systemd unit
		// (1048576 until Docker 25, 1024:524288 since); a fixed value
		// would fail wherever the runtime may not raise its hard limit
		// (no CAP_SYS_RESOURCE, as in a sandbox or a nested container).
	}, nil
}

// resolveUser is -u, else the image's User, resolved in the image.
func resolveUser(flag, image string, layerDirs []string) (specs.User, string, error) {
	spec, what := flag, "-u "+flag
	if spec == "" {
		spec, what = image, "image config User "+image
	}
	u, home, err := ResolveUser(spec, layerDirs)
	if err != nil {
		if spec == "" {
			what = "user root"
		}
		return u, "", fmt.Errorf("%s: %w", what, err)
	}
	return u, home, nil
}
