package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/build"
)

// On a terminal, a log line written while a step's status line is on screen starts a line of its
// own: the status line is cleared first, then drawn again under it.
func TestStepViewLogOnTerminal(t *testing.T) {
	master, tty := openPty(t)
	defer master.Close()
	v := (&env{stderr: tty}).stepView()
	if !v.tty {
		t.Fatal("a pty is not taken for a terminal")
	}
	v.event(build.Event{Kind: build.StepStart, Step: 1, Steps: 1, Command: "make all"})
	v.logger(false).Info("resolved contents", "entries", 3)
	v.stop()
	tty.Close()
	out, _ := io.ReadAll(master) // EIO once the tty side is closed and drained
	i := strings.Index(string(out), "resolved contents entries=3")
	if i < 0 {
		t.Fatalf("no log line in %q", out)
	}
	if before := string(out[:i]); !strings.HasSuffix(before, "\x1b[2K") && !strings.HasSuffix(before, "\n") {
		t.Errorf("the log line follows %q on the same line:\n%q", before[max(0, len(before)-30):], out)
	}
}

// A step that prints much does not get the status line drawn again after every line: that
// cost such a build several times its own time on a terminal. The ticker draws it.
func TestStepViewDoesNotRedrawPerLine(t *testing.T) {
	master, tty := openPty(t)
	defer master.Close()
	read := make(chan []byte)
	go func() { b, _ := io.ReadAll(master); read <- b }() // drained as written: a full pty blocks
	v := (&env{stderr: tty}).stepView()
	v.event(build.Event{Kind: build.StepStart, Step: 1, Steps: 1, Command: "seq 1 1000"})
	const lines = 1000
	for i := range lines {
		v.event(build.Event{Kind: build.StepOutput, Step: 1, Steps: 1, Line: fmt.Sprint(i)})
	}
	v.stop()
	tty.Close()
	out := string(<-read)
	if n := strings.Count(out, "step 1/1 | "); n != lines {
		t.Fatalf("%d output lines on the terminal, want %d", n, lines)
	}
	// One status line per tick (100 ms) at most: far fewer than one per line.
	if n := strings.Count(out, "s step 1/1: seq 1 1000"); n >= lines/10 {
		t.Errorf("the status line was drawn %d times for %d lines of output", n, lines)
	}
}

// openPty opens a pseudo-terminal pair: the master, and the terminal a program writes to.
func openPty(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("SKIP: no pseudo-terminals:", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}
