package runtime

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMain(m *testing.M) {
	Init() // the test binary is also the containers' init
	os.Exit(m.Run())
}

// needRoot skips, loudly, where containers cannot be made.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: containers need root")
	}
}

// busyboxRoot makes a root filesystem holding only a static busybox and its applet links.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("SKIP: busybox-static is not installed (.ci/run installs it)")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "echo", "id", "ls", "mount", "hostname", "sleep", "mknod", "grep", "ip", "ps", "true", "false", "kill", "dd"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	return root
}

func testSpec(root string, args ...string) *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: "kilntest",
		Root:     &specs.Root{Path: root},
		Process: &specs.Process{
			Args: args, Env: []string{"PATH=/bin"}, Cwd: "/",
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces:    []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"}, {Type: "uts"}, {Type: "ipc"}, {Type: "network"}},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func run(t *testing.T, s *specs.Spec) (string, Exit) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(context.Background(), Config{ID: filepath.Base(t.TempDir()), Spec: s, StateDir: t.TempDir(),
		Stdio: Stdio{Stdout: out, Stderr: out}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	exit, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	data, _ := os.ReadFile(out.Name())
	return string(data), exit
}

func TestRunBasics(t *testing.T) {
	needRoot(t)
	root := busyboxRoot(t)
	out, exit := run(t, testSpec(root, "sh", "-c", "echo pid=$$; hostname; id -u; grep CapEff /proc/self/status; ls /proc/1/exe >/dev/null; cat /proc/kcore | wc -c; exit 3"))
	t.Logf("output:\n%s", out)
	if exit.Code != 3 {
		t.Errorf("exit %+v, want 3\n%s", exit, out)
	}
	for _, want := range []string{"pid=1\n", "kilntest\n", "0\n", "CapEff:\t00000000a80425fb"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunErrors(t *testing.T) {
	needRoot(t)
	root := busyboxRoot(t)
	_, err := Start(context.Background(), Config{ID: "x", Spec: testSpec(root, "nope"), StateDir: t.TempDir()})
	if ExitCode(err) != 127 || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing command: %v (code %d)", err, ExitCode(err))
	}
	os.WriteFile(filepath.Join(root, "noexec"), []byte("x"), 0o644)
	_, err = Start(context.Background(), Config{ID: "x", Spec: testSpec(root, "/noexec"), StateDir: t.TempDir()})
	if ExitCode(err) != 126 {
		t.Errorf("not executable: %v (code %d)", err, ExitCode(err))
	}
	var buf bytes.Buffer
	_ = buf
}
