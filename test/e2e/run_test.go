package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// busyboxImage builds an image of the static busybox with a few applet links.
func busyboxImage(t *testing.T, root string) {
	t.Helper()
	need(t, "busybox")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: containers need root")
	}
	bb, _ := exec.LookPath("busybox")
	dir := t.TempDir()
	var links strings.Builder
	for _, a := range []string{"sh", "sleep", "id", "cat", "ls", "ps", "echo", "mknod", "mount", "hostname", "touch", "stat", "grep", "head", "wc", "readlink", "kill", "true", "env"} {
		links.WriteString("    - {path: /usr/bin/" + a + ", target: busybox}\n")
	}
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: busybox
contents:
  files:
    - {src: `+bb+`, dst: /usr/bin/busybox, mode: 0755}
  symlinks:
    - {path: /bin, target: usr/bin}
`+links.String()+`  dirs: [{path: /tmp, mode: 01777}, {path: /data}]
accounts:
  users: [{name: app, uid: 1000}]
  groups: [{name: app, gid: 1000}]
config:
  cmd: [/bin/sh]
  env: {FROM_IMAGE: "yes"}
  volumes: [/data]
`, 0o644)
	mustKiln(t, root, "build", dir)
}

func TestRunExitStatusAndErrors(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"run", "--rm", "busybox", "sh", "-c", "exit 7"}, 7, ""},
		// Under --init the shell is not PID 1, so its own SIGKILL kills it: 128+9.
		{[]string{"run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"}, 137, ""},
		{[]string{"run", "--rm", "busybox", "no-such-command"}, 127, "no-such-command"},
		{[]string{"run", "--rm", "busybox", "/etc/passwd"}, 126, "/etc/passwd"},
		{[]string{"run", "--rm", "no-such-image"}, 125, "no-such-image"},
		{[]string{"run", "--rm", "--cap-add", "BOGUS", "busybox", "true"}, 125, "BOGUS"},
		{[]string{"run", "--rm", "-v", "/does/not/exist:/x", "busybox", "true"}, 125, "/does/not/exist"},
	}
	for _, c := range cases {
		r := kilnIn(t, root, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.out) {
			t.Errorf("kiln %v: exit %d (want %d), stderr %q (want %q)", c.args, r.code, c.code, r.stderr, c.out)
		}
	}
	if ps := mustKiln(t, root, "ps", "-a", "--format", "json").stdout; strings.TrimSpace(ps) != "[]" {
		t.Errorf("failed runs left containers behind: %s", ps)
	}
}

func TestRunProcessOptions(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	envFile := filepath.Join(t.TempDir(), "env")
	writeFile(t, envFile, "# comment\nFROM_FILE=1\n", 0o644)
	r := mustKiln(t, root, "run", "--rm", "-e", "A=b", "--env-file", envFile, "-w", "/tmp", "-u", "app", "--hostname", "box",
		"busybox", "sh", "-c", `echo "$A $FROM_FILE $FROM_IMAGE $(pwd) $(id -u):$(id -g) $(hostname) $$"`)
	if got, want := strings.TrimSpace(r.stdout), "b 1 yes /tmp 1000:1000 box 1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Docker's default capabilities, and no more, in the bounding, permitted and effective sets.
	caps := mustKiln(t, root, "run", "--rm", "busybox", "grep", "^Cap", "/proc/self/status").stdout
	for _, set := range []string{"CapPrm:\t00000000a80425fb", "CapEff:\t00000000a80425fb", "CapBnd:\t00000000a80425fb"} {
		if !strings.Contains(caps, set) {
			t.Errorf("capabilities:\n%s\nlack %q", caps, set)
		}
	}
	if r := mustKiln(t, root, "run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status"); !strings.Contains(r.stdout, "0000000000000000") {
		t.Errorf("--cap-drop ALL: %s", r.stdout)
	}
	if r := mustKiln(t, root, "run", "--rm", "busybox", "grep", "NoNewPrivs", "/proc/self/status"); !strings.Contains(r.stdout, "1") {
		t.Errorf("no_new_privs not set: %s", r.stdout)
	}
	// --privileged: every capability kiln itself holds (its bounding set), and mount works.
	own := ""
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "CapBnd:\t"); ok {
				own = v
			}
		}
	}
	priv := mustKiln(t, root, "run", "--rm", "--privileged", "busybox", "sh", "-c", "grep CapEff /proc/self/status; mount -t tmpfs x /tmp && echo mounted")
	if !strings.Contains(priv.stdout, "CapEff:\t"+own) || !strings.Contains(priv.stdout, "mounted") {
		t.Errorf("--privileged: %q, want CapEff %s and a working mount", priv.stdout, own)
	}
	// Docker's sysctls for a private network namespace: unprivileged ping and low ports.
	if r := mustKiln(t, root, "run", "--rm", "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); r.stdout != "0\n" {
		t.Errorf("ip_unprivileged_port_start = %q, want 0", r.stdout)
	}
	if r := mustKiln(t, root, "run", "--rm", "busybox", "grep", "Seccomp:", "/proc/self/status"); !strings.Contains(r.stdout, "2") {
		t.Errorf("seccomp filter not on: %s", r.stdout)
	}
}

func TestRunWritesAreDiscardedAndReadOnly(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	mustKiln(t, root, "run", "--name", "ww", "busybox", "touch", "/written")
	if r := kilnIn(t, root, "run", "--rm", "busybox", "ls", "/written"); r.code == 0 {
		t.Errorf("a container's write is visible in another container: %s", r.stdout)
	}
	mustKiln(t, root, "rm", "ww")
	if r := kilnIn(t, root, "run", "--rm", "--read-only", "busybox", "touch", "/x"); r.code == 0 {
		t.Errorf("--read-only root was writable")
	}
	if r := kilnIn(t, root, "run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "touch", "/scratch/x"); r.code != 0 {
		t.Errorf("--tmpfs on a read-only root: %s", r.stderr)
	}
	// Layers are shared: the second container of an image adds only its own (empty) upper dir.
	entries, _ := os.ReadDir(filepath.Join(root, "layers", "sha256"))
	if len(entries) != 1 {
		t.Errorf("layer cache holds %d layers, want the image's 1", len(entries))
	}
}

func TestRunVolumes(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "in"), "from host\n", 0o644)
	r := mustKiln(t, root, "run", "--rm", "-v", host+":/mnt", "busybox", "sh", "-c", "cat /mnt/in; echo out > /mnt/out")
	if !strings.Contains(r.stdout, "from host") {
		t.Errorf("bind: %q", r.stdout)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "out\n" {
		t.Errorf("bind write: %q", b)
	}
	if r := kilnIn(t, root, "run", "--rm", "-v", host+":/mnt:ro", "busybox", "touch", "/mnt/x"); r.code == 0 {
		t.Errorf(":ro bind was writable")
	}
	mustKiln(t, root, "run", "--rm", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if r := mustKiln(t, root, "run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f"); r.stdout != "kept\n" {
		t.Errorf("named volume lost its data: %q", r.stdout)
	}
	if ls := mustKiln(t, root, "volume", "ls").stdout; !strings.Contains(ls, "keep") {
		t.Errorf("volume ls: %s", ls)
	}
	// The image declares /data: a run without -v gets an anonymous volume, removed by rm -v.
	mustKiln(t, root, "run", "--name", "anon", "busybox", "true")
	before := len(strings.Split(mustKiln(t, root, "volume", "ls").stdout, "\n"))
	mustKiln(t, root, "rm", "-v", "anon")
	after := len(strings.Split(mustKiln(t, root, "volume", "ls").stdout, "\n"))
	if after != before-1 {
		t.Errorf("rm -v removed %d volumes, want 1", before-after)
	}
	mustKiln(t, root, "volume", "rm", "keep")
}

func TestRunDetachedLifecycle(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	id := strings.TrimSpace(mustKiln(t, root, "run", "-d", "--name", "bg", "busybox", "sh", "-c", "echo started; exec sleep 100").stdout)
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want an ID", id)
	}
	if r := kilnIn(t, root, "run", "-d", "--name", "bg", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "bg") {
		t.Errorf("a second container named bg: exit %d %s", r.code, r.stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(mustKiln(t, root, "logs", "bg").stdout, "started") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ps := mustKiln(t, root, "ps").stdout; !strings.Contains(ps, "bg") || !strings.Contains(ps, "Up ") {
		t.Errorf("ps:\n%s", ps)
	}
	if q := mustKiln(t, root, "ps", "-q").stdout; q != id[:12]+"\n" {
		t.Errorf("ps -q: %q, want the short ID alone", q)
	}
	if q := mustKiln(t, root, "ps", "-q", "--no-trunc").stdout; q != id+"\n" {
		t.Errorf("ps -q --no-trunc: %q, want the ID alone", q)
	}
	if r := mustKiln(t, root, "exec", "bg", "sh", "-c", "echo $$; ps | wc -l"); !strings.HasPrefix(r.stdout, "") {
		t.Errorf("exec: %q", r.stdout)
	}
	if r := mustKiln(t, root, "exec", "-e", "FROM_IMAGE=exec", "bg", "sh", "-c", "env | grep -c FROM_IMAGE; echo $FROM_IMAGE"); r.stdout != "1\nexec\n" {
		t.Errorf("exec -e replaces the image's value: %q", r.stdout)
	}
	// exec joins the main process's cgroup (device filter included), capabilities and filters.
	main := mustKiln(t, root, "exec", "bg", "cat", "/proc/1/cgroup").stdout
	ex := mustKiln(t, root, "exec", "bg", "sh", "-c", "cat /proc/self/cgroup; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; mknod /tmp/mem c 1 11; cat /tmp/mem </dev/null >/dev/null 2>&1 || echo denied").stdout
	for _, want := range []string{main, "CapEff:\t00000000a80425fb", "NoNewPrivs:\t1", "Seccomp:\t2", "denied"} {
		if !strings.Contains(ex, want) {
			t.Errorf("exec: output lacks %q:\n%s", want, ex)
		}
	}
	if r := kilnIn(t, root, "exec", "bg", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exec exit status %d, want 3", r.code)
	}
	if r := kilnIn(t, root, "rm", "bg"); r.code == 0 {
		t.Errorf("rm of a running container succeeded")
	}
	var info []struct {
		Name, Status string
		Spec         struct{ Hostname string }
	}
	if err := jsonUnmarshal(mustKiln(t, root, "inspect", "bg").stdout, &info); err != nil || len(info) != 1 ||
		info[0].Status != "running" || info[0].Spec.Hostname != id[:12] {
		t.Errorf("inspect bg: %v %+v", err, info)
	}
	mustKiln(t, root, "stop", "-t", "1", "bg")
	if w := strings.TrimSpace(mustKiln(t, root, "wait", "bg").stdout); w != "137" {
		t.Errorf("wait after stop of sleep (ignores TERM as PID 1): %q, want 137", w)
	}
	mustKiln(t, root, "rm", "bg")
}

// After kill -9 of a monitor, the container dies with it and kiln ps tells the truth.
func TestMonitorKilled(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	mustKiln(t, root, "run", "-d", "--name", "orphan", "busybox", "sleep", "100")
	var st []struct {
		MonitorPid, Pid int
		Status          string
	}
	readPs := func() {
		if err := jsonUnmarshal(mustKiln(t, root, "ps", "-a", "--format", "json").stdout, &st); err != nil || len(st) != 1 {
			t.Fatalf("ps: %v %+v", err, st)
		}
	}
	readPs()
	if err := syscallKill(st[0].MonitorPid, 9); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for readPs(); st[0].Status == "running" && time.Now().Before(deadline); readPs() {
		time.Sleep(20 * time.Millisecond)
	}
	if st[0].Status != "exited" {
		t.Errorf("after kill -9 of its monitor the container is %q", st[0].Status)
	}
	id := strings.TrimSpace(mustKiln(t, root, "inspect", "orphan").stdout)
	mustKiln(t, root, "rm", "orphan")
	for _, dir := range []string{"/sys/fs/cgroup/unified/kiln", "/sys/fs/cgroup/kiln"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(id, e.Name()) {
				t.Errorf("kiln rm left the cgroup %s/%s of a container whose monitor was killed", dir, e.Name())
			}
		}
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), root) {
		t.Errorf("mounts under the kiln root leaked:\n%s", mounts)
	}
}

func TestRunInitReaps(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	r := mustKiln(t, root, "run", "--rm", "--init", "busybox", "sh", "-c", "echo $$; sleep 0 & wait")
	if strings.TrimSpace(r.stdout) == "1" {
		t.Errorf("with --init the workload is PID 1; want the reaper there")
	}
	if r := kilnIn(t, root, "run", "--rm", "--init", "busybox", "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("--init exit status %d, want 4", r.code)
	}
}

// The mountpoints of /proc, /dev, /sys and the network files come from a layer shared by all
// containers: a container that writes nothing leaves its upper directory empty. An image whose
// /etc is a symlink cannot take that layer (it would hide the link) and still runs.
func TestRunMountpointsLayer(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	mustKiln(t, root, "run", "--name", "quiet", "--network", "none", "busybox", "true")
	var recs []struct{ ID string }
	if err := jsonUnmarshal(mustKiln(t, root, "inspect", "quiet").stdout, &recs); err != nil || len(recs) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	upper, err := os.ReadDir(filepath.Join(root, "containers", recs[0].ID, "upper"))
	if err != nil || len(upper) != 0 {
		t.Errorf("upper directory of a container that wrote nothing: %d entries (%v)", len(upper), err)
	}
	mustKiln(t, root, "rm", "quiet")

	bb, _ := exec.LookPath("busybox")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "motd"), "from the image\n", 0o644)
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: etclink
contents:
  files:
    - {src: `+bb+`, dst: /usr/bin/busybox, mode: 0755}
    - {src: motd, dst: /usr/etc/motd, mode: 0644}
  symlinks:
    - {path: /bin, target: usr/bin}
    - {path: /etc, target: usr/etc}
    - {path: /usr/bin/sh, target: busybox}
    - {path: /usr/bin/cat, target: busybox}
config:
  cmd: [/bin/sh, -c, "cat /etc/motd /etc/hostname"]
`, 0o644)
	mustKiln(t, root, "build", dir)
	r := mustKiln(t, root, "run", "--rm", "--hostname", "linked", "--network", "none", "etclink")
	if r.stdout != "from the image\nlinked\n" {
		t.Errorf("image with /etc -> usr/etc: got %q", r.stdout)
	}
}

// With --init the reaper stays beside the workload as PID 1, a Go program with several threads:
// every one of them must hold the workload's capabilities and bounding set, not only the one
// that set them up.
func TestRunInitThreadsDropCapabilities(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	r := mustKiln(t, root, "run", "--rm", "--init", "--network", "none", "busybox", "sh", "-c",
		"grep -h '^Cap[EPB]' /proc/self/status; echo threads; grep -h '^Cap[EPB]' /proc/1/task/*/status")
	own, threads, ok := strings.Cut(r.stdout, "threads\n")
	if !ok || strings.Count(threads, "CapEff") < 2 {
		t.Fatalf("want the workload's sets and those of the reaper's threads:\n%s", r.stdout)
	}
	want := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(own), "\n") {
		want[l] = true
	}
	for _, l := range strings.Split(strings.TrimSpace(threads), "\n") {
		if !want[l] {
			t.Errorf("a thread of the reaper has %q; the workload has:\n%s", l, own)
		}
	}
}

// A foreground kiln killed while it prepares the container (here held on the store's gc lock,
// its record already written) leaves a record that says the container never started: it shows
// as exited, not created forever, and kiln rm removes it.
func TestRunKilledWhilePreparing(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	lock, err := os.OpenFile(filepath.Join(root, "store", "gc.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(kiln, "--root", root, "run", "--rm", "--name", "halfway", "busybox", "true")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		r := mustKiln(t, root, "ps", "-a", "--format", "json")
		var st []struct{ Status, Error string }
		if jsonUnmarshal(r.stdout, &st) != nil || len(st) != 1 {
			return ""
		}
		return st[0].Status + ": " + st[0].Error
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.HasPrefix(status(), "created") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if s := status(); !strings.HasPrefix(s, "created") {
		t.Fatalf("kiln run held on the gc lock: the container is %q, want created", s)
	}
	run.Process.Kill()
	run.Wait()
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	// It was --rm: exited with nobody left to remove it, the next look removes it, as Docker's
	// daemon would have, and frees its name.
	if r := mustKiln(t, root, "ps", "-a", "--format", "json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("after kill -9 of the kiln making it, the --rm container is still listed: %s", r.stdout)
	}
	mustKiln(t, root, "run", "--rm", "--name", "halfway", "busybox", "true")
}

// A --rm container whose kiln is killed while it runs is removed by the next kiln ps.
func TestRunRmKilledIsRemoved(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	run := exec.Command(kiln, "--root", root, "run", "--rm", "--name", "doomed", "busybox", "sleep", "30")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(mustKiln(t, root, "ps").stdout, "doomed") {
			break
		}
	}
	run.Process.Kill()
	run.Wait()
	// The container dies with its kiln (PDEATHSIG); until the host's init has reaped it, its
	// zombie counts as running.
	var r result
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r = mustKiln(t, root, "ps", "-a"); !strings.Contains(r.stdout, "doomed") {
			break
		}
	}
	if strings.Contains(r.stdout, "doomed") {
		t.Errorf("kiln ps -a still lists the --rm container whose kiln was killed:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(root, "containers", "names", "doomed")); err == nil {
		t.Error("its name is still taken")
	}
}

// A foreground --rm container whose record cannot be removed at its exit keeps how it ended,
// as without --rm: kiln ps and kiln inspect tell the truth, and kiln rm removes it later.
func TestRunRmKeepsExitWhenRemoveFails(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	run := exec.Command(kiln, "--root", root, "run", "--rm", "--name", "stuck", "busybox", "sh", "-c", "sleep 1; exit 3")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(mustKiln(t, root, "ps").stdout, "stuck") {
			break
		}
	}
	// Nothing can be renamed out of an immutable directory: removing the record fails.
	dir := filepath.Join(root, "containers")
	if err := setImmutable(dir, true); err != nil {
		run.Process.Kill()
		run.Wait()
		t.Skipf("SKIP: cannot make %s immutable: %v", dir, err)
	}
	err := run.Wait()
	setImmutable(dir, false)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("kiln run: %v, want exit status 3", err)
	}
	var st []struct {
		Status   string
		ExitCode int
	}
	r := mustKiln(t, root, "inspect", "stuck")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 1 {
		t.Fatalf("kiln inspect stuck: %v\n%s", err, r.stdout)
	}
	if s := st[0]; s.Status != "exited" || s.ExitCode != 3 {
		t.Errorf("the container whose record stayed is %q with exit %d, want exited with 3", s.Status, s.ExitCode)
	}
	mustKiln(t, root, "rm", "stuck")
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h.
const fsImmutableFL = 0x10

// setImmutable sets or clears dir's immutable attribute (chattr +i).
func setImmutable(dir string, on bool) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags))
}
