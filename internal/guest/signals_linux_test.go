package guest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestSignalsDuringSetupDoNotKillInit plays kiln-init before the app has started: a SIGTERM,
// a SIGINT (what Ctrl-Alt-Del becomes) or a SIGHUP must not end PID 1 (the Go runtime's default
// would, and the kernel would panic), but wait on the channel the app's supervision forwards; a
// SIGSEGV, SIGABRT, SIGSYS, SIGTRAP or SIGILL sent by a process must not crash it either.
// The helper is this test binary with a guest made as Main makes it.
func TestSignalsDuringSetupDoNotKillInit(t *testing.T) {
	if os.Getenv("KILN_GUEST_TEST_HELPER") == "early-signals" {
		earlySignalsHelper()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalsDuringSetupDoNotKillInit$")
	cmd.Env = append(os.Environ(), "KILN_GUEST_TEST_HELPER=early-signals")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not get ready: %q", lines.Text())
	}
	// Sent by a process, these crash a Go program that does not ignore them.
	for _, s := range []syscall.Signal{syscall.SIGSEGV, syscall.SIGABRT, syscall.SIGSYS, syscall.SIGTRAP, syscall.SIGILL} {
		if err := cmd.Process.Signal(s); err != nil {
			t.Fatalf("send %v: %v", s, err)
		}
	}
	sent := []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}
	for _, s := range sent {
		if err := cmd.Process.Signal(s); err != nil {
			t.Fatalf("send %v: %v", s, err)
		}
	}
	var got []string
	for lines.Scan() {
		got = append(got, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the init ended on a signal during setup: %v (it received %q)", err, got)
	}
	for _, s := range sent {
		if !strings.Contains(strings.Join(got, "\n"), s.String()) {
			t.Errorf("%v not kept for the app: received %q", s, got)
		}
	}
	// A child (the app) is not born with the dropped signals ignored.
	var ignored uint64
	if len(got) == 0 {
		t.Fatal("no SigIgn line from the helper's child")
	}
	if _, err := fmt.Sscanf(got[0], "SigIgn:\t%x", &ignored); err != nil {
		t.Fatalf("SigIgn line %q: %v", got[0], err)
	}
	for _, s := range fatal {
		if ignored&(1<<(s.(syscall.Signal)-1)) != 0 {
			t.Errorf("a child of the init is born with %v ignored (SigIgn %x)", s, ignored)
		}
	}
}

// earlySignalsHelper makes a guest, says ready, and prints the signals it holds for the app.
func earlySignalsHelper() {
	g := newGuest()
	out, err := exec.Command("sh", "-c", "grep SigIgn /proc/self/status").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: run sh:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	fmt.Print(string(out))
	seen := map[os.Signal]bool{}
	for len(seen) < 3 {
		s := <-g.sigs
		if s == syscall.SIGCHLD {
			continue
		}
		seen[s] = true
		fmt.Println(s)
	}
	os.Exit(0)
}
