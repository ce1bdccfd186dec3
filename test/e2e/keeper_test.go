package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A detached container is kept by a one-thread process that dropped the kiln it was forked
// from: it is the container's parent, has no other child (the monitor that started the
// container was reaped), says what it is in ps, and stays small. The container's output,
// with a terminal too, reaches the log, and its exit status the record.
func TestDetachedKeeper(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	id := strings.TrimSpace(mustKiln(t, root, "run", "-d", "--name", "kept", "busybox", "sh", "-c", "echo kept; exec sleep 100").stdout)
	var st []struct {
		MonitorPid, Pid int
	}
	if err := jsonUnmarshal(mustKiln(t, root, "ps", "--format", "json").stdout, &st); err != nil || len(st) != 1 {
		t.Fatalf("ps: %v %+v", err, st)
	}
	keeper, ctr := st[0].MonitorPid, st[0].Pid
	status := procFields(t, keeper, "/status")
	t.Logf("keeper %d: VmRSS %s, RssAnon %s, RssFile %s", keeper, status["VmRSS"], status["RssAnon"], status["RssFile"])
	if status["Threads"] != "1" {
		t.Errorf("the keeper has %s threads, want 1", status["Threads"])
	}
	if rss, _ := strconv.Atoi(strings.Fields(status["VmRSS"] + " 0")[0]); rss == 0 || rss > 2048 {
		t.Errorf("the keeper's VmRSS is %s, want at most 2 MiB", status["VmRSS"])
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(keeper), "cmdline"))
	if err != nil || !strings.HasPrefix(string(cmdline), "kiln-keeper "+id[:12]) {
		t.Errorf("the keeper's command line is %q (%v), want kiln-keeper %s", cmdline, err, id[:12])
	}
	if pp := procFields(t, ctr, "/status")["PPid"]; pp != strconv.Itoa(keeper) {
		t.Errorf("the container's parent is %s, want its keeper %d", pp, keeper)
	}
	// The monitor exits once it has told kiln run: the keeper reaps it right after.
	kids := childrenOf(t, keeper)
	for deadline := time.Now().Add(5 * time.Second); len(kids) != 1 && time.Now().Before(deadline); kids = childrenOf(t, keeper) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(kids) != 1 || kids[0] != ctr {
		t.Errorf("the keeper's children are %v, want the container %d alone", kids, ctr)
	}
	waitLog(t, root, "kept", "kept")
	// A terminal's hangup, a shutdown's first round: the keeper stays, and so does the container.
	for _, sig := range []int{1, 2, 15} {
		if err := syscallKill(keeper, sig); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if state := procFields(t, keeper, "/status")["State"]; !strings.HasPrefix(state, "S") {
		t.Errorf("after SIGHUP, SIGINT and SIGTERM the keeper is %q, want sleeping", state)
	}
	if r := mustKiln(t, root, "ps", "-q"); r.stdout != id[:12]+"\n" {
		t.Errorf("after SIGHUP, SIGINT and SIGTERM to its keeper, kiln ps -q: %q", r.stdout)
	}
	mustKiln(t, root, "rm", "-f", "kept")

	// A terminal: the keeper copies the console.
	mustKiln(t, root, "run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", "echo on-tty; exit 7")
	if r := mustKiln(t, root, "wait", "tty"); strings.TrimSpace(r.stdout) != "7" {
		t.Errorf("kiln wait of the -t container: %q, want 7", r.stdout)
	}
	if r := mustKiln(t, root, "logs", "tty"); r.stdout != "on-tty\r\n" {
		t.Errorf("kiln logs of the -t container: %q", r.stdout)
	}
}

// procFields reads /proc/PID/<file> as "Key: value" lines.
func procFields(t *testing.T, pid int, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + file)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, n)
		}
	}
	return kids
}
