package runspec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func netNS(s *specs.Spec) (specs.LinuxNamespace, bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

func TestBuildNetworkModes(t *testing.T) {
	for _, tt := range []struct {
		mode, path string
		wantNS     bool
		wantPath   string
		sysctls    bool
	}{
		{"none", "", true, "", true},
		{"private", "", true, "", true},
		{"mynet", "", true, "", true},
		{"host", "", false, "", false},
		{"container:web", "/proc/42/ns/net", true, "/proc/42/ns/net", false},
	} {
		o := simpleOptions(t)
		o.Network, o.NetNSPath = tt.mode, tt.path
		s, err := Build(o)
		if err != nil {
			t.Fatalf("--network %s: %v", tt.mode, err)
		}
		ns, ok := netNS(s)
		if ok != tt.wantNS || ns.Path != tt.wantPath {
			t.Errorf("--network %s: network namespace %v %+v, want %v path %q", tt.mode, ok, ns, tt.wantNS, tt.wantPath)
		}
		if _, set := s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"]; set != tt.sysctls {
			t.Errorf("--network %s: network sysctls set = %v, want %v", tt.mode, set, tt.sysctls)
		}
	}
}

func TestBuildNetworkFiles(t *testing.T) {
	o := simpleOptions(t)
	o.NetworkFiles = NetworkFiles{Hosts: "/c/hosts", Hostname: "/c/hostname", ResolvConf: "/c/resolv.conf"}
	o.Binds = []Bind{{Source: "/mine/resolv.conf", Destination: "/etc/resolv.conf/"}}
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range s.Mounts {
		got[m.Destination] = m.Source
	}
	want := map[string]string{"/etc/hosts": "/c/hosts", "/etc/hostname": "/c/hostname", "/etc/resolv.conf": "/mine/resolv.conf"}
	for d, src := range want {
		if got[d] != src {
			t.Errorf("mount at %s from %q, want %q (the user's -v wins)", d, got[d], src)
		}
	}
}
