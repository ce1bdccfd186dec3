package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunStdin(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	cmd := exec.Command(kiln, "--root", root, "run", "--rm", "-i", "busybox", "cat")
	cmd.Stdin = strings.NewReader("through stdin\n")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "through stdin\n" {
		t.Errorf("-i: %v %q", err, out)
	}
	// -it on a pipe is refused, as Docker does: EOF could never reach the terminal's reader.
	cmd = exec.Command(kiln, "--root", root, "run", "--rm", "-it", "busybox", "cat")
	cmd.Stdin = strings.NewReader("x\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not a TTY") {
		t.Errorf("-it without a terminal: %v %q", err, out)
	}
	// Without -i the container's stdin is empty, as with Docker.
	cmd = exec.Command(kiln, "--root", root, "run", "--rm", "busybox", "cat")
	cmd.Stdin = strings.NewReader("not passed\n")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("no -i: %v %q", err, out)
	}
}

// -t gives a real terminal with the caller's window size; script(1) provides kiln's own terminal.
func TestRunTerminal(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	need(t, "script")
	inner := kiln + " --root " + root + " run --rm -t busybox sh -c 'stty size; tty; exit 5'"
	cmd := exec.Command("script", "-qec", "stty rows 42 cols 101; "+inner, "/dev/null")
	out, err := cmd.CombinedOutput()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 5 {
		t.Errorf("exit status through the terminal: %v, want 5\n%s", err, out)
	}
	for _, want := range []string{"42 101", "/dev/pts/0"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Signals kiln gets go to the container's process; its handler's exit status comes back.
func TestRunForwardsSignals(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	cmd := exec.Command(kiln, "--root", root, "run", "--rm", "busybox", "sh", "-c",
		`trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done`)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		t.Fatalf("container did not start: %q", lines.Text())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(strings.Join(rest, "\n"), "got TERM") {
		t.Errorf("after SIGTERM: %v, output %q; want exit 3 and the trap's line", err, rest)
	}
}

func TestLogsFollow(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	mustKiln(t, root, "run", "-d", "--name", "talker", "busybox", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done")
	start := time.Now()
	r := mustKiln(t, root, "logs", "-f", "talker")
	if r.stdout != "line1\nline2\nline3\n" {
		t.Errorf("logs -f: %q", r.stdout)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("logs -f did not end when the container exited")
	}
	mustKiln(t, root, "rm", "talker")
	_ = os.Getpid
}
