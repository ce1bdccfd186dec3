package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerProfile is the JSON of `docker run --security-opt seccomp=FILE`: a
// runtime-spec profile whose rules may depend on the container's
// capabilities and the host's architecture and kernel.
type dockerProfile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []dockerArchMap          `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []dockerSyscall          `json:"syscalls"`
}

// dockerArchMap: on a host of Arch, filter Arch and SubArches.
type dockerArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type dockerSyscall struct {
	Name     string                   `json:"name,omitempty"` // profiles older than "names"
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *dockerFilter            `json:"includes,omitempty"`
	Excludes *dockerFilter            `json:"excludes,omitempty"`
}

// dockerFilter: a rule is kept if the container has all Includes.Caps, the
// host is one of Includes.Arches and runs at least Includes.MinKernel, and
// none of that holds for Excludes.
type dockerFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"` // "<major>.<minor>"
}

// host is what a Docker profile's conditions are checked against.
type host struct {
	goarch string
	kernel kernelVersion
	caps   map[string]bool
}

type kernelVersion struct{ major, minor int }

func (k kernelVersion) atLeast(o kernelVersion) bool {
	return k.major > o.major || k.major == o.major && k.minor >= o.minor
}

func thisHost(caps []string) host {
	h := host{goarch: runtime.GOARCH, kernel: runningKernel(), caps: map[string]bool{}}
	for _, c := range caps {
		h.caps[canonicalCap(c)] = true
	}
	return h
}

// canonicalCap spells a capability as Docker profiles do: "sys_admin" and
// "SYS_ADMIN" are "CAP_SYS_ADMIN".
func canonicalCap(c string) string {
	c = strings.ToUpper(c)
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// ParseDocker reads a profile in Docker's format (what
// `docker run --security-opt seccomp=PROFILE.json` takes) and resolves it
// for a container with caps (its bounding set, as "CAP_SYS_ADMIN"; the
// prefix and case are optional) on this host: rules whose includes/excludes
// do not hold are dropped, and archMap becomes the architectures of this host.
// minKernel is checked against the running kernel.
func ParseDocker(data []byte, caps []string) (*specs.LinuxSeccomp, error) {
	var p dockerProfile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("seccomp: decode docker profile: %w", err)
	}
	return p.resolve(thisHost(caps))
}

func (p *dockerProfile) resolve(h host) (*specs.LinuxSeccomp, error) {
	if p.DefaultAction == "" {
		return nil, errors.New("seccomp: docker profile: no defaultAction")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, errors.New("seccomp: docker profile: both architectures and archMap")
	}
	out := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    slices.Clone(p.Architectures),
		Flags:            slices.Clone(p.Flags),
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
	}
	native := specArch(h.goarch)
	for _, m := range p.ArchMap {
		if m.Arch == native {
			out.Architectures = append([]specs.Arch{m.Arch}, m.SubArches...)
			break
		}
	}
	for i, s := range p.Syscalls {
		keep, err := s.applies(h)
		if err != nil {
			return nil, fmt.Errorf("seccomp: docker profile: syscalls[%d]: %w", i, err)
		}
		if !keep {
			continue
		}
		names := s.Names
		if s.Name != "" {
			if len(s.Names) > 0 {
				return nil, fmt.Errorf("seccomp: docker profile: syscalls[%d]: both name and names", i)
			}
			names = []string{s.Name}
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(names),
			Action:   s.Action,
			ErrnoRet: s.ErrnoRet,
			Args:     slices.Clone(s.Args),
		})
	}
	return out, nil
}

// applies tells whether s's includes and excludes keep it on h.
func (s *dockerSyscall) applies(h host) (bool, error) {
	arch := dockerArch(h.goarch)
	if f := s.Excludes; f != nil {
		if slices.Contains(f.Arches, arch) || slices.ContainsFunc(f.Caps, h.has) {
			return false, nil
		}
		if f.MinKernel != "" {
			k, err := parseKernel(f.MinKernel)
			if err != nil || h.kernel.atLeast(k) {
				return false, err
			}
		}
	}
	if f := s.Includes; f != nil {
		if len(f.Arches) > 0 && !slices.Contains(f.Arches, arch) {
			return false, nil
		}
		for _, c := range f.Caps {
			if !h.has(c) {
				return false, nil
			}
		}
		if f.MinKernel != "" {
			k, err := parseKernel(f.MinKernel)
			if err != nil || !h.kernel.atLeast(k) {
				return false, err
			}
		}
	}
	return true, nil
}

func (h host) has(c string) bool { return h.caps[canonicalCap(c)] }

// parseKernel reads a minKernel: "<major>.<minor>".
func parseKernel(s string) (kernelVersion, error) {
	maj, min, ok := strings.Cut(s, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 || a == 0 && b == 0 {
		return kernelVersion{}, fmt.Errorf("minKernel %q is not <major>.<minor>", s)
	}
	return kernelVersion{a, b}, nil
}

// parseRelease reads the version of a kernel release ("6.1.0-18-amd64").
func parseRelease(release string) kernelVersion {
	var k kernelVersion
	fields := strings.FieldsFunc(release, func(r rune) bool { return r < '0' || r > '9' })
	if len(fields) >= 2 {
		k.major, _ = strconv.Atoi(fields[0])
		k.minor, _ = strconv.Atoi(fields[1])
	}
	return k
}

// specArch is the runtime-spec architecture of a GOARCH.
func specArch(goarch string) specs.Arch {
	switch goarch {
	case "amd64":
		return specs.ArchX86_64
	case "386":
		return specs.ArchX86
	case "arm64":
		return specs.ArchAARCH64
	case "arm":
		return specs.ArchARM
	case "ppc64le":
		return specs.ArchPPC64LE
	case "ppc64":
		return specs.ArchPPC64
	case "s390x":
		return specs.ArchS390X
	case "riscv64":
		return specs.ArchRISCV64
	case "loong64":
		return specs.ArchLOONGARCH64
	case "mips64":
		return specs.ArchMIPS64
	case "mips64le":
		return specs.ArchMIPSEL64
	case "mips":
		return specs.ArchMIPS
	case "mipsle":
		return specs.ArchMIPSEL
	}
	return ""
}
