package seccomp

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testHost(goarch string, kernel kernelVersion, caps ...string) host {
	h := host{goarch: goarch, kernel: kernel, caps: map[string]bool{}}
	for _, c := range caps {
		h.caps[canonicalCap(c)] = true
	}
	return h
}

// TestParseDockerDefault reads Docker's default profile back from its JSON.
func TestParseDockerDefault(t *testing.T) {
	data, err := json.Marshal(dockerDefault())
	if err != nil {
		t.Fatal(err)
	}
	for _, caps := range [][]string{nil, DockerDefaultCaps(), {"CAP_SYS_ADMIN", "sys_ptrace", "bpf"}} {
		got, err := ParseDocker(data, caps)
		if err != nil {
			t.Fatal(err)
		}
		if want := Default(caps); !reflect.DeepEqual(got, want) {
			t.Errorf("caps %v: ParseDocker and Default differ", caps)
		}
	}
}

func TestParseDockerConditions(t *testing.T) {
	const profile = `{
		"defaultAction": "SCMP_ACT_ERRNO",
		"architectures": ["SCMP_ARCH_X86_64"],
		"flags": ["SECCOMP_FILTER_FLAG_LOG"],
		"syscalls": [
			{"name": "read", "action": "SCMP_ACT_ALLOW"},
			{"names": ["write"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
			{"names": ["writev"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
			{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]},
			 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
			{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
			{"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
			{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "comment": "why not"}
		]
	}`
	var p dockerProfile
	if err := json.Unmarshal([]byte(profile), &p); err != nil {
		t.Fatal(err)
	}
	names := func(h host) string {
		out, err := p.resolve(h)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, s := range out.Syscalls {
			n = append(n, s.Names...)
		}
		return strings.Join(n, " ")
	}
	for _, tc := range []struct {
		h    host
		want string
	}{
		{testHost("amd64", kernelVersion{6, 1}), "read write socket arch_prctl kill"},
		{testHost("amd64", kernelVersion{5, 4}), "read writev socket arch_prctl kill"},
		{testHost("amd64", kernelVersion{5, 10}, "CAP_SYS_ADMIN"), "read write arch_prctl kill"},
		{testHost("amd64", kernelVersion{6, 1}, "sys_admin", "net_admin"), "read write mount arch_prctl kill"},
		{testHost("arm64", kernelVersion{6, 1}), "read write socket cacheflush kill"},
	} {
		if got := names(tc.h); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.h, got, tc.want)
		}
	}
	out, _ := p.resolve(testHost("amd64", kernelVersion{6, 1}))
	if out.Architectures[0] != specs.ArchX86_64 || out.Flags[0] != specs.LinuxSeccompFlagLog {
		t.Errorf("architectures %q, flags %q", out.Architectures, out.Flags)
	}
	if last := out.Syscalls[len(out.Syscalls)-1]; *last.ErrnoRet != 3 {
		t.Errorf("errnoRet %d", *last.ErrnoRet)
	}
}

func TestParseDockerErrors(t *testing.T) {
	for _, tc := range []struct{ profile, want string }{
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [}`, "decode docker profile"},
		{`{"syscalls": []}`, "no defaultAction"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
		   "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, "both architectures and archMap"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}`,
			"syscalls[0]: both name and names"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5"}}]}`,
			`syscalls[0]: minKernel "5"`},
	} {
		if _, err := ParseDocker([]byte(tc.profile), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.profile, err, tc.want)
		}
	}
}

func TestParseRelease(t *testing.T) {
	for release, want := range map[string]kernelVersion{
		"6.1.0-18-amd64":       {6, 1},
		"5.15.153.1-microsoft": {5, 15},
		"4.8":                  {4, 8},
		"garbage":              {0, 0},
	} {
		if got := parseRelease(release); got != want {
			t.Errorf("%s: %v, want %v", release, got, want)
		}
	}
}
