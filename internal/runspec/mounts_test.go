package runspec

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountLine is a mount as one comparable line: "dest type source opt,opt".
func mountLine(m specs.Mount) string {
	return m.Destination + " " + m.Type + " " + m.Source + " " + strings.Join(m.Options, ",")
}

func mountLines(ms []specs.Mount) []string {
	var out []string
	for _, m := range ms {
		out = append(out, mountLine(m))
	}
	return out
}

var dockerDefaultMounts = []string{
	"/proc proc proc nosuid,noexec,nodev",
	"/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k",
	"/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
	"/sys sysfs sysfs nosuid,noexec,nodev,ro",
	"/sys/fs/cgroup cgroup cgroup ro,nosuid,noexec,nodev",
	"/dev/mqueue mqueue mqueue nosuid,noexec,nodev",
	"/dev/shm tmpfs shm nosuid,noexec,nodev,mode=1777,size=65536k",
}

func TestMounts(t *testing.T) {
	with := func(extra ...string) []string { return append(slices.Clone(dockerDefaultMounts), extra...) }
	replace := func(dest, line string) []string {
		var out []string
		for _, l := range dockerDefaultMounts {
			if strings.HasPrefix(l, dest+" ") {
				continue
			}
			out = append(out, l)
		}
		return append(out, line)
	}
	tests := []struct {
		name string
		in   mountInput
		want []string
	}{
		{"defaults", mountInput{}, dockerDefaultMounts},
		{"binds", mountInput{binds: []Bind{{"/host/data", "/data", false}, {"/host/conf/", "/etc/app/", true}}}, with(
			"/data bind /host/data rbind,rprivate",
			"/etc/app bind /host/conf rbind,ro,rprivate",
		)},
		{"parents first, else in order", mountInput{binds: []Bind{{"/h/c", "/a/b/c", false}, {"/h/z", "/z", false}, {"/h/a", "/a", false}}}, with(
			"/z bind /h/z rbind,rprivate",
			"/a bind /h/a rbind,rprivate",
			"/a/b/c bind /h/c rbind,rprivate",
		)},
		{"tmpfs defaults", mountInput{tmpfs: []string{"/run"}}, with("/run tmpfs tmpfs noexec,nosuid,nodev,rprivate")},
		{"tmpfs options override one kind each", mountInput{tmpfs: []string{"/tmp:rw,exec,size=64m,mode=1777,size=128m"}}, with(
			"/tmp tmpfs tmpfs nosuid,nodev,rprivate,rw,exec,mode=1777,size=128m",
		)},
		{"tmpfs propagation and defaults", mountInput{tmpfs: []string{"/x:defaults,rshared,ro"}}, with("/x tmpfs tmpfs noexec,nosuid,nodev,rshared,ro")},
		{"bind replaces a default", mountInput{binds: []Bind{{"/host/shm", "/dev/shm", false}}}, replace("/dev/shm", "/dev/shm bind /host/shm rbind,rprivate")},
		{"tmpfs replaces a default", mountInput{tmpfs: []string{"/dev/shm:size=1g"}}, replace("/dev/shm", "/dev/shm tmpfs tmpfs noexec,nosuid,nodev,rprivate,size=1g")},
		{"user /dev replaces everything under it", mountInput{binds: []Bind{{"/hostdev", "/dev", false}}}, []string{
			"/proc proc proc nosuid,noexec,nodev",
			"/sys sysfs sysfs nosuid,noexec,nodev,ro",
			"/sys/fs/cgroup cgroup cgroup ro,nosuid,noexec,nodev",
			"/dev bind /hostdev rbind,rprivate",
		}},
		{"read-only leaves /proc and /dev writable", mountInput{readOnly: true, tmpfs: []string{"/tmp"}}, with("/tmp tmpfs tmpfs noexec,nosuid,nodev,rprivate")},
		{"privileged: /sys and cgroup writable", mountInput{privileged: true}, []string{
			"/proc proc proc nosuid,noexec,nodev",
			"/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k",
			"/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
			"/sys sysfs sysfs nosuid,noexec,nodev",
			"/sys/fs/cgroup cgroup cgroup nosuid,noexec,nodev",
			"/dev/mqueue mqueue mqueue nosuid,noexec,nodev",
			"/dev/shm tmpfs shm nosuid,noexec,nodev,mode=1777,size=65536k",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := mounts(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := mountLines(ms); !slices.Equal(got, tt.want) {
				t.Errorf("mounts =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	// The defaults are fresh each time: a caller editing one spec's mounts
	// does not change the next.
	a, _ := mounts(mountInput{})
	a[0].Options[0] = "changed"
	if b, _ := mounts(mountInput{}); b[0].Options[0] != "nosuid" {
		t.Error("default mounts are shared between specs")
	}
}

func TestMountErrors(t *testing.T) {
	tests := []struct {
		in   mountInput
		want string
	}{
		{mountInput{binds: []Bind{{"/x", "rel", false}}}, "-v /x:rel: destination must be absolute"},
		{mountInput{binds: []Bind{{"/x", "rel", true}}}, "-v /x:rel:ro: destination must be absolute"},
		{mountInput{binds: []Bind{{"/x", "", false}}}, "-v /x:: empty destination"},
		{mountInput{binds: []Bind{{"/x", "/", false}}}, "-v /x:/: destination can't be /"},
		{mountInput{binds: []Bind{{"/x", "/a/..", false}}}, "-v /x:/a/..: destination can't be /"},
		{mountInput{binds: []Bind{{"rel", "/x", false}}}, "-v rel:/x: source must be an absolute host path"},
		{mountInput{binds: []Bind{{"/a", "/data", false}, {"/b", "/data/", false}}}, "-v /b:/data/: duplicate mount point /data (also -v /a:/data)"},
		{mountInput{binds: []Bind{{"/a", "/data", false}}, tmpfs: []string{"/data"}}, "--tmpfs /data: duplicate mount point /data (also -v /a:/data)"},
		{mountInput{tmpfs: []string{"relative"}}, "--tmpfs relative: destination must be absolute"},
		{mountInput{tmpfs: []string{"/"}}, "--tmpfs /: destination can't be /"},
		{mountInput{tmpfs: []string{":size=1m"}}, "--tmpfs :size=1m: empty destination"},
		{mountInput{tmpfs: []string{"/t:bogus"}}, `--tmpfs /t:bogus: invalid tmpfs option "bogus"`},
		{mountInput{tmpfs: []string{"/t:rbind"}}, `--tmpfs /t:rbind: invalid tmpfs option "rbind"`},
		{mountInput{tmpfs: []string{"/t:remount"}}, `--tmpfs /t:remount: invalid tmpfs option "remount"`},
		{mountInput{tmpfs: []string{"/t:size=lots"}}, `--tmpfs /t:size=lots: invalid value in tmpfs option "size=lots"`},
		{mountInput{tmpfs: []string{"/t:mode=999"}}, `--tmpfs /t:mode=999: invalid value in tmpfs option "mode=999"`},
		{mountInput{tmpfs: []string{"/t:uid"}}, `--tmpfs /t:uid: invalid tmpfs option "uid"`},
	}
	for _, tt := range tests {
		_, err := mounts(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("mounts(%+v) err = %v\nwant %q", tt.in, err, tt.want)
		}
	}
}
