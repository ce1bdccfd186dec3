package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// limitsImage builds "lim": a static busybox with the applets the limit tests run (dd to
// allocate, sh to fork).
func limitsImage(t *testing.T, root string) {
	t.Helper()
	need(t, "busybox")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: containers need root")
	}
	if !isDir("/sys/fs/cgroup/memory") && !fileExists("/sys/fs/cgroup/cgroup.controllers") {
		t.Skip("SKIP: no memory cgroup controller (neither v1 nor cgroup2) on this host")
	}
	bb, _ := exec.LookPath("busybox")
	dir := t.TempDir()
	var links strings.Builder
	for _, a := range []string{"sh", "dd", "sleep", "true", "grep", "cat", "seq"} {
		links.WriteString("    - {path: /usr/bin/" + a + ", target: busybox}\n")
	}
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: lim
contents:
  files:
    - {src: `+bb+`, dst: /usr/bin/busybox, mode: 0755}
  symlinks:
    - {path: /bin, target: usr/bin}
`+links.String()+`config:
  cmd: [/bin/sh]
`, 0o644)
	mustKiln(t, root, "build", dir)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// inspectContainer reads `kiln inspect NAME`'s state fields the tests look at.
func inspectContainer(t *testing.T, root, name string) (id string, pid, exit int, oom bool) {
	t.Helper()
	var v []struct {
		ID        string
		Pid       int
		ExitCode  int
		OOMKilled bool
	}
	out := mustKiln(t, root, "inspect", name).stdout
	if err := jsonUnmarshal(out, &v); err != nil || len(v) != 1 {
		t.Fatalf("inspect %s: %v\n%s", name, err, out)
	}
	return v[0].ID, v[0].Pid, v[0].ExitCode, v[0].OOMKilled
}

func TestRunMemoryLimitOOMKilled(t *testing.T) {
	root := t.TempDir()
	limitsImage(t, root)
	r := kilnIn(t, root, "run", "--name", "hog", "--memory", "16m", "lim", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	if r.code != 137 {
		t.Fatalf("64 MiB under --memory 16m: exit %d, want 137\n%s", r.code, r.stderr)
	}
	if _, _, code, oom := inspectContainer(t, root, "hog"); code != 137 || !oom {
		t.Errorf("inspect: ExitCode %d OOMKilled %v, want 137 and true", code, oom)
	}
	r = kilnIn(t, root, "run", "--name", "fits", "-m", "16m", "lim", "dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1")
	if r.code != 0 {
		t.Fatalf("1 MiB under --memory 16m: exit %d\n%s", r.code, r.stderr)
	}
	if _, _, _, oom := inspectContainer(t, root, "fits"); oom {
		t.Error("inspect: OOMKilled for a container that fit in its limit")
	}
}

// A fork bomb under --pids-limit 10 never has more than 10 tasks, and the host goes on.
func TestRunPidsLimitStopsForkBomb(t *testing.T) {
	root := t.TempDir()
	limitsImage(t, root)
	mustKiln(t, root, "run", "-d", "--name", "bomb", "--pids-limit", "10", "lim",
		"sh", "-c", "b() { b | b & }; b; sleep 60")
	defer kilnIn(t, root, "rm", "-f", "bomb")
	_, pid, _, _ := inspectContainer(t, root, "bomb")
	// The bomb has reached its limit once forks fail: wait for the shell's complaint in the log.
	waitLog(t, root, "bomb", "can't fork")
	for range 5 {
		var rows []struct{ Pids uint64 }
		out := mustKiln(t, root, "stats", "--no-stream", "--format", "json", "bomb").stdout
		for line := range strings.Lines(out) {
			var row struct{ Pids uint64 }
			if err := jsonUnmarshal(line, &row); err != nil {
				t.Fatalf("stats line %q: %v", line, err)
			}
			rows = append(rows, row)
		}
		if len(rows) != 1 || rows[0].Pids == 0 || rows[0].Pids > 10 {
			t.Fatalf("stats of the bomb: %+v, want one row with 1 to 10 pids", rows)
		}
		if n := countTasks(t, pid); n > 10 {
			t.Fatalf("the bomb's pid namespace holds %d tasks, over its limit of 10", n)
		}
	}
	mustKiln(t, root, "rm", "-f", "bomb")
	if r := kilnIn(t, root, "run", "--rm", "lim", "true"); r.code != 0 {
		t.Fatalf("a container after the bomb: exit %d\n%s", r.code, r.stderr)
	}
}

// waitLog waits (as long as the container runs) until its log holds want.
func waitLog(t *testing.T, root, name, want string) {
	t.Helper()
	cmd := exec.Command(kiln, "--root", root, "logs", "-f", name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return
		}
	}
	t.Fatalf("the log of %s never said %q", name, want)
}

// countTasks counts the threads of the processes that share pid's pid namespace, from the host.
func countTasks(t *testing.T, pid int) int {
	t.Helper()
	ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if l, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid"); l == ns {
			tasks, _ := os.ReadDir("/proc/" + e.Name() + "/task")
			n += len(tasks)
		}
	}
	return n
}

// After 20 runs with every limit, no cgroup and no mount of theirs is left.
func TestRunLimitsLeaveNothing(t *testing.T) {
	root := t.TempDir()
	limitsImage(t, root)
	flags := []string{"--memory", "32m", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "50", "--cpuset-cpus", "0"}
	var ids []string
	for i := range 20 {
		name := "leak" + strconv.Itoa(i)
		args := append(append([]string{"run", "--name", name}, flags...), "lim", "true")
		if r := kilnIn(t, root, args...); r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
		id, _, _, _ := inspectContainer(t, root, name)
		ids = append(ids, id)
		mustKiln(t, root, "rm", name)
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kiln")
	dirs = append(dirs, "/sys/fs/cgroup/kiln")
	for _, id := range ids {
		for _, d := range dirs {
			if isDir(filepath.Join(d, id)) {
				t.Errorf("cgroup %s left after the container was removed", filepath.Join(d, id))
			}
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mounts)) {
		if strings.Contains(line, root) {
			t.Errorf("mount left: %s", line)
		}
	}
}

func TestRunLimitsAppliedInside(t *testing.T) {
	root := t.TempDir()
	limitsImage(t, root)
	r := mustKiln(t, root, "run", "--rm", "--cpuset-cpus", "0", "--cpus", "1", "-m", "64m", "lim",
		"grep", "Cpus_allowed_list", "/proc/self/status")
	if got := strings.Fields(r.stdout); len(got) != 2 || got[1] != "0" {
		t.Errorf("--cpuset-cpus 0: the container may run on %q", r.stdout)
	}
}

// Bad values are refused with Docker's words before anything is made: no container is left.
func TestRunLimitErrors(t *testing.T) {
	root := t.TempDir()
	limitsImage(t, root)
	for _, tt := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--memory", "4m"}, "--memory 4m: minimum memory limit allowed is 6MB"},
		{[]string{"--memory", "lots"}, `--memory "lots": invalid size`},
		{[]string{"--memory-swap", "1g"}, "--memory-swap 1g: you should always set the memory limit"},
		{[]string{"-m", "64m", "--memory-swap", "32m"}, "minimum memoryswap limit should be larger than memory limit"},
		{[]string{"--cpus", "0.001"}, "--cpus 0.001: range of CPUs is from 0.01 to"},
		{[]string{"--cpus", "many"}, `--cpus "many": want a number of CPUs`},
		{[]string{"--cpu-shares", "1"}, "--cpu-shares 1: want 2 to 262144"},
		{[]string{"--pids-limit", "-5"}, "--pids-limit -5: want a positive number"},
		{[]string{"--cpuset-cpus", "4000"}, `--cpuset-cpus "4000": requested CPUs are not available`},
	} {
		args := append(append([]string{"run", "--rm"}, tt.flags...), "lim", "true")
		r := kilnIn(t, root, args...)
		if r.code != 125 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 125 and %q", tt.flags, r.code, r.stderr, tt.want)
		}
	}
	if out := mustKiln(t, root, "ps", "-a", "--format", "json").stdout; strings.TrimSpace(out) != "[]" {
		t.Errorf("refused runs left containers: %s", out)
	}
}

func TestStats(t *testing.T) {
	root := t.TempDir()
	limitsImage(t, root)
	mustKiln(t, root, "run", "-d", "--name", "busy", "-m", "64m", "lim", "sh", "-c", "sleep 60 & while :; do :; done")
	defer kilnIn(t, root, "rm", "-f", "busy")
	mustKiln(t, root, "run", "-d", "--name", "idle", "lim", "sleep", "60")
	defer kilnIn(t, root, "rm", "-f", "idle")

	var row struct {
		Name               string
		CPUPerc, MemPerc   float64
		MemUsage, MemLimit uint64
		Pids               uint64
	}
	out := mustKiln(t, root, "stats", "--no-stream", "--format", "json", "busy").stdout
	if err := jsonUnmarshal(out, &row); err != nil {
		t.Fatalf("stats json %q: %v", out, err)
	}
	if row.Name != "busy" || row.MemLimit != 64<<20 || row.MemUsage == 0 || row.Pids != 2 || row.CPUPerc <= 0 {
		t.Errorf("stats of a busy loop beside a sleep under -m 64m: %+v", row)
	}
	table := mustKiln(t, root, "stats", "--no-stream").stdout
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.Contains(table, " busy ") || !strings.Contains(table, " idle ") {
		t.Errorf("stats table of two running containers:\n%s", table)
	}
	if r := kilnIn(t, root, "stats", "--no-stream", "nosuch"); r.code == 0 {
		t.Error("stats of a container that does not exist: exit 0")
	}
	streamTwice(t, root, "idle")
}

// streamTwice reads two samples of `kiln stats NAME` as it streams, then interrupts it, as a
// user does with ^C: it ends with status 0.
func streamTwice(t *testing.T, root, name string) {
	t.Helper()
	cmd := exec.Command(kiln, "--root", root, "stats", "--format", "json", name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for i := range 2 {
		if !sc.Scan() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("stream ended before sample %d", i+1)
		}
		if !strings.Contains(sc.Text(), `"Name":"`+name+`"`) {
			t.Errorf("sample %d: %s", i+1, sc.Text())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("stats after ^C: %v", err)
	}
}
