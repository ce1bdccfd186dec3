package runspec

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testID = "4f2a9c1e7b3d8a6f0e5c2b1a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e"

// simpleImage is an image like `FROM alpine; USER app; CMD ["/bin/sh"]`.
func simpleImage() *v1.ConfigFile {
	return &v1.ConfigFile{
		OS: "linux", Architecture: "amd64",
		Config: v1.Config{
			Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"},
			Cmd:        []string{"/bin/sh"},
			WorkingDir: "/home/app",
			User:       "app",
		},
	}
}

func simpleOptions(t *testing.T) Options {
	return Options{
		ID:        testID,
		Image:     simpleImage(),
		LayerDirs: makeLayers(t, baseLayer()),
		RootPath:  "/var/lib/kiln/containers/x/rootfs",
	}
}

// TestBuildDefaultSpec is the golden test: the complete spec for a simple
// image with no flags, as JSON, field by field.
func TestBuildDefaultSpec(t *testing.T) {
	spec, err := Build(simpleOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, spec) {
		t.Errorf("spec does not survive a JSON round trip:\n%s", data)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = doc
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	strs := func(path string) []string {
		var out []string
		list, _ := get(path).([]any)
		for _, x := range list {
			out = append(out, x.(string))
		}
		return out
	}
	want := map[string]any{
		"ociVersion":                       specs.Version,
		"hostname":                         testID[:12],
		"root.path":                        "/var/lib/kiln/containers/x/rootfs",
		"process.cwd":                      "/home/app",
		"process.user.uid":                 1000.0,
		"process.user.gid":                 1000.0,
		"process.noNewPrivileges":          true,
		"process.terminal":                 nil, // false, omitted
		"process.oomScoreAdj":              nil,
		"process.capabilities.inheritable": nil,
		"process.capabilities.ambient":     nil,
		"annotations.org.opencontainers.image.stopSignal": nil, // a dotted key: checked below
		"linux.seccomp.defaultAction":                     "SCMP_ACT_ERRNO",
		"linux.sysctl":                                    map[string]any{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"},
		"linux.devices":                                   nil,
		"linux.cgroupsPath":                               nil,
	}
	for path, w := range want {
		if got := get(path); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", path, got, w)
		}
	}
	if got := spec.Annotations; !reflect.DeepEqual(got, map[string]string{AnnotationStopSignal: "SIGTERM"}) {
		t.Errorf("annotations = %v", got)
	}
	checks := []struct {
		path string
		want []string
	}{
		{"process.args", []string{"/bin/sh"}},
		{"process.env", []string{
			"PATH=/usr/local/bin:/usr/bin:/bin", "HOSTNAME=" + testID[:12], "LANG=C.UTF-8", "HOME=/home/app",
		}},
		{"process.capabilities.bounding", DefaultCaps()},
		{"process.capabilities.permitted", DefaultCaps()},
		{"process.capabilities.effective", DefaultCaps()},
		{"linux.maskedPaths", []string{
			"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
			"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
		}},
		{"linux.readonlyPaths", []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
	}
	for _, c := range checks {
		if got := strs(c.path); !slices.Equal(got, c.want) {
			t.Errorf("%s =\n%q\nwant\n%q", c.path, got, c.want)
		}
	}
	if got := spec.Process.User.AdditionalGids; !slices.Equal(got, []uint32{1000, 10, 50, 100}) {
		t.Errorf("additionalGids = %v", got)
	}
	if got := spec.Process.Rlimits; got != nil {
		t.Errorf("rlimits = %+v, want none (inherited)", got)
	}
	if got := mountLines(spec.Mounts); !slices.Equal(got, dockerDefaultMounts) {
		t.Errorf("mounts =\n%s", strings.Join(got, "\n"))
	}
	var ns []string
	for _, n := range spec.Linux.Namespaces {
		if n.Path != "" {
			t.Errorf("namespace %s has a path", n.Type)
		}
		ns = append(ns, string(n.Type))
	}
	if !slices.Equal(ns, []string{"pid", "ipc", "uts", "mount", "network", "cgroup"}) {
		t.Errorf("namespaces = %q", ns)
	}
	if spec.Root.Readonly {
		t.Error("root is read-only without --read-only")
	}
	if len(spec.Linux.Seccomp.Syscalls) == 0 {
		t.Error("the default seccomp profile allows nothing")
	}
	checkDeviceRules(t, spec.Linux.Resources.Devices)
}

// checkDeviceRules: deny all, then Docker's (moby's + runc's) allow-list.
func checkDeviceRules(t *testing.T, rules []specs.LinuxDeviceCgroup) {
	t.Helper()
	var got []string
	for _, r := range rules {
		num := func(p *int64) string {
			if p == nil {
				return "*"
			}
			return strconv.FormatInt(*p, 10)
		}
		verb := "deny"
		if r.Allow {
			verb = "allow"
		}
		typ := r.Type
		if typ == "" {
			typ = "a"
		}
		got = append(got, verb+" "+typ+" "+num(r.Major)+":"+num(r.Minor)+" "+r.Access)
	}
	want := []string{
		"deny a *:* rwm",
		"allow c *:* m", "allow b *:* m",
		"allow c 1:3 rwm", "allow c 1:5 rwm", "allow c 1:7 rwm", "allow c 1:8 rwm", "allow c 1:9 rwm",
		"allow c 5:0 rwm", "allow c 5:1 rwm", "allow c 5:2 rwm", "allow c 136:* rwm", "allow c 10:200 rwm",
	}
	if !slices.Equal(got, want) {
		t.Errorf("device rules =\n%s", strings.Join(got, "\n"))
	}
}

func TestBuildOptions(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Options)
		check func(*testing.T, *specs.Spec)
	}{
		{"-t", func(o *Options) { o.Terminal = true }, func(t *testing.T, s *specs.Spec) {
			if !s.Process.Terminal || !slices.Contains(s.Process.Env, "TERM=xterm") {
				t.Errorf("terminal %v, env %q", s.Process.Terminal, s.Process.Env)
			}
		}},
		{"--read-only", func(o *Options) { o.ReadOnly = true }, func(t *testing.T, s *specs.Spec) {
			if !s.Root.Readonly {
				t.Error("root not read-only")
			}
		}},
		{"--hostname", func(o *Options) { o.Hostname = "web" }, func(t *testing.T, s *specs.Spec) {
			if s.Hostname != "web" || !slices.Contains(s.Process.Env, "HOSTNAME=web") {
				t.Errorf("hostname %q, env %q", s.Hostname, s.Process.Env)
			}
		}},
		{"-u and -w", func(o *Options) { o.User = "nobody"; o.Workdir = "/tmp" }, func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 65534 || s.Process.Cwd != "/tmp" || !slices.Contains(s.Process.Env, "HOME=/nonexistent") {
				t.Errorf("user %+v cwd %q env %q", s.Process.User, s.Process.Cwd, s.Process.Env)
			}
		}},
		{"no user anywhere is root", func(o *Options) { o.Image.Config.User = "" }, func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 0 || !slices.Contains(s.Process.Env, "HOME=/root") {
				t.Errorf("user %+v env %q", s.Process.User, s.Process.Env)
			}
		}},
		{"--init", func(o *Options) { o.Init = true }, func(t *testing.T, s *specs.Spec) {
			if s.Annotations[AnnotationInit] != "true" {
				t.Errorf("annotations %v", s.Annotations)
			}
		}},
		{"image stop signal", func(o *Options) { o.Image.Config.StopSignal = "SIGQUIT" }, func(t *testing.T, s *specs.Spec) {
			if s.Annotations[AnnotationStopSignal] != "SIGQUIT" {
				t.Errorf("annotations %v", s.Annotations)
			}
		}},
		{"--network host", func(o *Options) { o.Network = "host" }, func(t *testing.T, s *specs.Spec) {
			if hasNamespace(s.Linux, specs.NetworkNamespace) || s.Linux.Sysctl != nil {
				t.Errorf("namespaces %v sysctl %v", s.Linux.Namespaces, s.Linux.Sysctl)
			}
			if s.Hostname != hostHostname() {
				t.Errorf("hostname %q, want the host's", s.Hostname)
			}
		}},
		{"--network none", func(o *Options) { o.Network = "none" }, func(t *testing.T, s *specs.Spec) {
			if !hasNamespace(s.Linux, specs.NetworkNamespace) {
				t.Error("no network namespace")
			}
		}},
		{"--privileged", func(o *Options) { o.Privileged = true }, func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Capabilities.Bounding, AllCaps()) || !slices.Equal(s.Process.Capabilities.Effective, AllCaps()) {
				t.Errorf("caps %q", s.Process.Capabilities.Bounding)
			}
			if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
				t.Error("privileged keeps seccomp or masked/read-only paths")
			}
			if !reflect.DeepEqual(s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}) {
				t.Errorf("devices %+v", s.Linux.Resources.Devices)
			}
			for _, m := range s.Mounts {
				if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && slices.Contains(m.Options, "ro") {
					t.Errorf("%s read-only", m.Destination)
				}
			}
			if !s.Process.NoNewPrivileges {
				t.Error("no_new_privs off")
			}
		}},
		{"--cap-add reaches seccomp", func(o *Options) { o.CapAdd = []string{"SYS_ADMIN"} }, func(t *testing.T, s *specs.Spec) {
			if !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
				t.Error("CAP_SYS_ADMIN not added")
			}
			if !allows(s.Linux.Seccomp, "mount") {
				t.Error("the seccomp profile for CAP_SYS_ADMIN does not allow mount")
			}
		}},
		{"--security-opt seccomp=unconfined", func(o *Options) { o.SecurityOpt = []string{"seccomp=unconfined"} }, func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp != nil {
				t.Error("seccomp kept")
			}
		}},
		{"--security-opt no-new-privileges=false", func(o *Options) { o.SecurityOpt = []string{"no-new-privileges=false"} }, func(t *testing.T, s *specs.Spec) {
			if s.Process.NoNewPrivileges {
				t.Error("no_new_privs on")
			}
		}},
		{"--security-opt no-new-privileges", func(o *Options) { o.SecurityOpt = []string{"no-new-privileges"} }, func(t *testing.T, s *specs.Spec) {
			if !s.Process.NoNewPrivileges {
				t.Error("no_new_privs off")
			}
		}},
		{"--security-opt systempaths=unconfined", func(o *Options) { o.SecurityOpt = []string{"systempaths=unconfined", "label=disable"} }, func(t *testing.T, s *specs.Spec) {
			if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp == nil {
				t.Error("systempaths=unconfined")
			}
		}},
		{"binds and tmpfs after defaults", func(o *Options) {
			o.Binds = []Bind{{Source: "/srv/data", Destination: "/data", ReadOnly: true}}
			o.Tmpfs = []string{"/run"}
		}, func(t *testing.T, s *specs.Spec) {
			got := mountLines(s.Mounts)
			want := append(slices.Clone(dockerDefaultMounts), "/data bind /srv/data rbind,ro,rprivate", "/run tmpfs tmpfs noexec,nosuid,nodev,rprivate")
			if !slices.Equal(got, want) {
				t.Errorf("mounts\n%s", strings.Join(got, "\n"))
			}
		}},
		{"nil image", func(o *Options) { o.Image = nil; o.Args = []string{"/bin/true"} }, func(t *testing.T, s *specs.Spec) {
			if s.Process.Cwd != "/" || s.Process.User.UID != 0 || !slices.Contains(s.Process.Env, "PATH="+DefaultPath) {
				t.Errorf("process %+v", s.Process)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := simpleOptions(t)
			tt.edit(&o)
			s, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func allows(p *specs.LinuxSeccomp, name string) bool {
	if p == nil {
		return true
	}
	for _, r := range p.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

func TestBuildSeccompProfileFile(t *testing.T) {
	profile := writeFile(t, "profile.json", `{
		"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [
			{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
			{"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT"]}}
		]
	}`)
	o := simpleOptions(t)
	o.SecurityOpt = []string{"seccomp=" + profile}
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Linux.Seccomp
	if p == nil || p.DefaultAction != specs.ActAllow {
		t.Fatalf("seccomp = %+v", p)
	}
	for _, r := range p.Syscalls {
		if slices.Contains(r.Names, "reboot") {
			t.Error("a rule for CAP_SYS_BOOT kept without it")
		}
	}
	// Docker ignores the profile of a privileged container.
	o.Privileged = true
	if s, err := Build(o); err != nil || s.Linux.Seccomp != nil {
		t.Errorf("privileged with a profile: seccomp %v, err %v", s.Linux.Seccomp, err)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no command", func(o *Options) { o.Image.Config.Cmd = nil }, "no command specified"},
		{"entrypoint cleared", func(o *Options) { o.Entrypoint = strp("") }, "no command specified"},
		{"unknown user", func(o *Options) { o.User = "ghost" }, "-u ghost: unable to find user ghost: no matching entries in passwd file"},
		{"unknown image user", func(o *Options) { o.Image.Config.User = "ghost" }, "image config User ghost: unable to find user ghost: no matching entries in passwd file"},
		{"unknown group", func(o *Options) { o.User = "app:ghosts" }, "-u app:ghosts: unable to find group ghosts: no matching entries in group file"},
		{"cap", func(o *Options) { o.CapAdd = []string{"FOO"} }, "--cap-add FOO: unknown capability"},
		{"cap drop", func(o *Options) { o.CapDrop = []string{"BAR"} }, "--cap-drop BAR: unknown capability"},
		{"bind", func(o *Options) { o.Binds = []Bind{{Source: "/x", Destination: "rel"}} }, "-v /x:rel: destination must be absolute"},
		{"tmpfs", func(o *Options) { o.Tmpfs = []string{"relative"} }, "--tmpfs relative: destination must be absolute"},
		{"workdir", func(o *Options) { o.Workdir = "rel" }, "-w rel: must be an absolute path"},
		{"env", func(o *Options) { o.Env = []string{"=v"} }, "-e =v: invalid environment variable"},
		{"network", func(o *Options) { o.Network = "container:web" }, "--network container:web: the container's network namespace is unknown"},
		{"apparmor", func(o *Options) { o.SecurityOpt = []string{"apparmor=docker-default"} }, "--security-opt apparmor=docker-default: not supported (kiln does not use AppArmor)"},
		{"selinux", func(o *Options) { o.SecurityOpt = []string{"label=type:svirt_t"} }, "--security-opt label=type:svirt_t: not supported (kiln sets no SELinux labels)"},
		{"unknown opt", func(o *Options) { o.SecurityOpt = []string{"frobnicate"} }, "--security-opt frobnicate: unknown option"},
		{"no-new-privileges value", func(o *Options) { o.SecurityOpt = []string{"no-new-privileges=maybe"} }, "--security-opt no-new-privileges=maybe: not true or false"},
		{"seccomp missing file", func(o *Options) { o.SecurityOpt = []string{"seccomp=/nonexistent/p.json"} }, "--security-opt seccomp=/nonexistent/p.json: open /nonexistent/p.json: no such file or directory"},
		{"seccomp empty", func(o *Options) { o.SecurityOpt = []string{"seccomp="} }, "--security-opt seccomp=: no profile"},
		{"stop signal", func(o *Options) { o.Image.Config.StopSignal = "SIGFOO" }, "image config: stop signal SIGFOO: unknown signal"},
		{"root path", func(o *Options) { o.RootPath = "rootfs" }, `root path "rootfs": must be absolute`},
		{"hostname", func(o *Options) { o.Hostname = strings.Repeat("x", 65) }, "--hostname " + strings.Repeat("x", 65) + ": longer than 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := simpleOptions(t)
			tt.edit(&o)
			_, err := Build(o)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
	o := simpleOptions(t)
	o.Image.Config.Cmd = nil
	if _, err := Build(o); !errors.Is(err, ErrNoCommand) {
		t.Errorf("errors.Is(err, ErrNoCommand) false for %v", err)
	}
	o = simpleOptions(t)
	o.SecurityOpt = []string{"seccomp=" + writeFile(t, "bad.json", "{not json")}
	if _, err := Build(o); err == nil || !strings.HasPrefix(err.Error(), "--security-opt seccomp=") {
		t.Errorf("bad profile: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	good, err := Build(simpleOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(good); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"relative mount", func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }, `mount "proc": destination must be absolute and clean`},
		{"unclean mount", func(s *specs.Spec) { s.Mounts[0].Destination = "/proc/../x" }, `mount "/proc/../x": destination must be absolute and clean`},
		{"duplicate mount", func(s *specs.Spec) { s.Mounts = append(s.Mounts, s.Mounts[0]) }, "mount /proc: destination used twice"},
		{"relative bind source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "x", Options: []string{"rbind"}})
		}, `mount /x: bind source "x" must be absolute`},
		{"tmpfs with bind options", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Source: "/tmpfs", Options: []string{"rbind"}})
		}, "mount /x: a tmpfs mount with bind options"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args: no command"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "x" }, `process.cwd "x": must be absolute`},
		{"bad env", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "NOVALUE") }, `process.env "NOVALUE": not NAME=VALUE`},
		{"unknown cap", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FLY")
		}, `process.capabilities.bounding: unknown capability "CAP_FLY"`},
		{"effective not permitted", func(s *specs.Spec) { s.Process.Capabilities.Permitted = nil }, "process.capabilities: CAP_CHOWN effective but not permitted"},
		{"duplicate namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "linux.namespaces: pid twice"},
		{"hostname without uts", func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UTSNamespace })
		}, "hostname: set without a uts namespace"},
		{"bad device access", func(s *specs.Spec) { s.Linux.Resources.Devices[1].Access = "rwx" }, `linux.resources.devices[1]: access "rwx"`},
		{"relative root", func(s *specs.Spec) { s.Root.Path = "rootfs" }, "root.path: must be absolute"},
		{"rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2, Hard: 1}}
		}, "process.rlimits: RLIMIT_NOFILE soft limit above hard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Build(simpleOptions(t))
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(s)
			err = Validate(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}
