package runtime

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-project/kiln/internal/devcgroup"
)

// startWithEarly starts spec s with an init started early in namespaces nss, and returns the
// container's output and exit.
func startWithEarly(t *testing.T, s *specs.Spec, nss []specs.LinuxNamespace) (string, Exit) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	id := "early-" + filepath.Base(t.TempDir())
	stdio := Stdio{Stdout: out, Stderr: out}
	early, err := StartEarly(id, nss, stdio, false)
	if err != nil {
		t.Fatalf("StartEarly: %v", err)
	}
	c, err := Start(context.Background(), Config{ID: id, Spec: s, StateDir: t.TempDir(), Stdio: stdio, Early: early})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	exit, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if u := devcgroup.Unified(); u != "" && isDir(filepath.Join(u, "kiln", id)) {
		t.Errorf("the container's cgroup is left after it ended")
	}
	data, _ := os.ReadFile(out.Name())
	return string(data), exit
}

func TestEarlyInitRuns(t *testing.T) {
	needRoot(t)
	s := testSpec(busyboxRoot(t), "sh", "-c", "echo pid=$$; hostname; grep CapEff /proc/self/status; cat /proc/self/cgroup; exit 4")
	out, exit := startWithEarly(t, s, s.Linux.Namespaces)
	if exit.Code != 4 {
		t.Errorf("exit %+v, want 4\n%s", exit, out)
	}
	for _, want := range []string{"pid=1\n", "kilntest\n", "CapEff:\t00000000a80425fb"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if devcgroup.Unified() != "" && !strings.Contains(out, "/kiln/early-") {
		t.Errorf("the workload is not in the cgroup the early init was born in:\n%s", out)
	}
}

// An early init started with other namespaces than the spec's is not used: Start stops it and
// starts one that fits.
func TestEarlyInitNotFitting(t *testing.T) {
	needRoot(t)
	s := testSpec(busyboxRoot(t), "sh", "-c", "ls /proc/self/ns/net >/dev/null && cat /proc/self/net/dev | wc -l")
	s.Linux.Namespaces = s.Linux.Namespaces[:4] // no network namespace: the host's
	own := append(s.Linux.Namespaces[:4:4], specs.LinuxNamespace{Type: specs.NetworkNamespace})
	out, exit := startWithEarly(t, s, own)
	if exit.Code != 0 {
		t.Fatalf("exit %+v\n%s", exit, out)
	}
	host, _ := os.ReadFile("/proc/self/net/dev")
	if want := strings.Count(string(host), "\n"); strings.TrimSpace(out) != strconv.Itoa(want) {
		t.Errorf("the container sees %s lines of /proc/net/dev, the host %d: it ran in the early init's network namespace", strings.TrimSpace(out), want)
	}
}

func TestEarlyInitAbort(t *testing.T) {
	needRoot(t)
	id := "early-" + filepath.Base(t.TempDir())
	early, err := StartEarly(id, testSpec("/", "true").Linux.Namespaces, Stdio{}, false)
	if err != nil {
		t.Fatal(err)
	}
	<-early.ready
	if early.err != nil {
		t.Fatal(early.err)
	}
	pid := early.cmd.Process.Pid
	early.Abort()
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
		t.Errorf("the early init (pid %d) outlived Abort", pid)
	}
	if u := devcgroup.Unified(); u != "" && isDir(filepath.Join(u, "kiln", id)) {
		t.Errorf("Abort left the cgroup")
	}
}

// When the init fails on its own (here: no such command) while the parent's part of the start
// (OnCreate, plugging a network in) is still at work, the parent's part fails too, for want of
// the init's namespaces: the init's error is the one to report.
func TestInitErrorWinsOverOnCreate(t *testing.T) {
	needRoot(t)
	s := testSpec(busyboxRoot(t), "no-such-command")
	cfg := Config{ID: filepath.Base(t.TempDir()), Spec: s, StateDir: t.TempDir(),
		OnCreate: func(pid int) error {
			for i := 0; i < 200; i++ { // until the init has given up
				if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "ns", "net")); err != nil {
					return err
				}
				time.Sleep(5 * time.Millisecond)
			}
			return errors.New("the init never failed")
		}}
	_, err := Start(context.Background(), cfg)
	var e *Error
	if !errors.As(err, &e) || e.Code != 127 || !strings.Contains(err.Error(), "no-such-command") {
		t.Errorf("start: %v; want the init's exit 127 for the missing command", err)
	}
}

// kiln gc's sweep removes an empty cgroup a killed kiln left under kiln/, but not a young one
// (a start in progress) nor one with a process in it.
func TestSweepCgroups(t *testing.T) {
	needRoot(t)
	u := devcgroup.Unified()
	if u == "" {
		t.Skip("SKIP: no cgroup2 hierarchy")
	}
	base := filepath.Join(u, "kiln", "sweep-"+filepath.Base(t.TempDir()))
	old, young, busy := base+"-old", base+"-young", base+"-busy"
	for _, d := range []string{old, young, busy} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer rmdirRetry(d)
	}
	then := time.Now().Add(-2 * time.Minute)
	for _, d := range []string{old, busy} {
		if err := os.Chtimes(d, then, then); err != nil {
			t.Skip("SKIP: cannot age a cgroup directory here:", err)
		}
	}
	f, err := os.Open(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sleep := exec.Command("sleep", "30")
	sleep.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	SweepCgroups()
	if !isDir(busy) {
		t.Errorf("a cgroup with a process in it was removed")
	}
	if isDir(old) {
		t.Errorf("an empty cgroup two minutes old was kept")
	}
	if !isDir(young) {
		t.Errorf("an empty cgroup made just now was removed")
	}
}
