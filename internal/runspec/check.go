package runspec

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Validate checks the structure of a spec the way a runtime would before
// running it: what Build makes always passes; a spec edited afterwards (or
// read back from a container's state) can be checked again. It reports
// every problem found, joined.
func Validate(s *specs.Spec) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if s.Version == "" {
		bad("ociVersion: empty")
	}
	if s.Root == nil || !path.IsAbs(s.Root.Path) {
		bad("root.path: must be absolute")
	}
	if s.Linux == nil {
		bad("linux: missing")
		return errors.Join(errs...)
	}
	errs = append(errs, checkProcess(s.Process)...)
	errs = append(errs, checkMounts(s.Mounts)...)
	errs = append(errs, checkLinux(s.Linux)...)
	if s.Hostname != "" && !hasNamespace(s.Linux, specs.UTSNamespace) {
		bad("hostname: set without a uts namespace")
	}
	return errors.Join(errs...)
}

func checkProcess(p *specs.Process) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p == nil {
		return []error{errors.New("process: missing")}
	}
	if len(p.Args) == 0 || p.Args[0] == "" {
		bad("process.args: no command")
	}
	if !path.IsAbs(p.Cwd) {
		bad("process.cwd %q: must be absolute", p.Cwd)
	}
	for _, e := range p.Env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" || strings.IndexByte(e, 0) >= 0 {
			bad("process.env %q: not NAME=VALUE", e)
		}
	}
	if c := p.Capabilities; c != nil {
		sets := []struct {
			name string
			caps []string
		}{
			{"bounding", c.Bounding}, {"effective", c.Effective}, {"permitted", c.Permitted},
			{"inheritable", c.Inheritable}, {"ambient", c.Ambient},
		}
		for _, set := range sets {
			for _, name := range set.caps {
				if !slices.Contains(allCaps, name) {
					bad("process.capabilities.%s: unknown capability %q", set.name, name)
				}
			}
		}
		for _, name := range c.Effective {
			if !slices.Contains(c.Permitted, name) {
				bad("process.capabilities: %s effective but not permitted", name)
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if seen[r.Type] {
			bad("process.rlimits: %s twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			bad("process.rlimits: %s soft limit above hard", r.Type)
		}
	}
	return errs
}

func checkMounts(ms []specs.Mount) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	seen := map[string]bool{}
	for _, m := range ms {
		switch {
		case !path.IsAbs(m.Destination) || path.Clean(m.Destination) != m.Destination:
			bad("mount %q: destination must be absolute and clean", m.Destination)
		case m.Destination == "/":
			bad("mount on /: the root is root.path")
		case seen[m.Destination]:
			bad("mount %s: destination used twice", m.Destination)
		}
		seen[m.Destination] = true
		if m.Type == "" {
			bad("mount %s: no type", m.Destination)
		}
		isBind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		if isBind && !path.IsAbs(m.Source) {
			bad("mount %s: bind source %q must be absolute", m.Destination, m.Source)
		}
		if isBind && m.Type != "bind" {
			bad("mount %s: a %s mount with bind options", m.Destination, m.Type)
		}
	}
	return errs
}

func checkLinux(l *specs.Linux) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	known := []specs.LinuxNamespaceType{
		specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace,
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range l.Namespaces {
		if !slices.Contains(known, ns.Type) {
			bad("linux.namespaces: unknown type %q", ns.Type)
		}
		if seen[ns.Type] {
			bad("linux.namespaces: %s twice", ns.Type)
		}
		seen[ns.Type] = true
	}
	if !seen[specs.MountNamespace] {
		bad("linux.namespaces: no mount namespace")
	}
	for _, p := range append(slices.Clone(l.MaskedPaths), l.ReadonlyPaths...) {
		if !path.IsAbs(p) {
			bad("linux masked or read-only path %q: must be absolute", p)
		}
	}
	if l.Resources != nil {
		for i, d := range l.Resources.Devices {
			if d.Type != "" && d.Type != "a" && d.Type != "b" && d.Type != "c" {
				bad("linux.resources.devices[%d]: type %q", i, d.Type)
			}
			if d.Access == "" || strings.Trim(d.Access, "rwm") != "" {
				bad("linux.resources.devices[%d]: access %q", i, d.Access)
			}
		}
	}
	if l.Seccomp != nil && l.Seccomp.DefaultAction == "" {
		bad("linux.seccomp: no default action")
	}
	return errs
}

func hasNamespace(l *specs.Linux, t specs.LinuxNamespaceType) bool {
	for _, ns := range l.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}
