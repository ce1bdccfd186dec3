package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/runtime"
)

// openTestPty returns a pseudo-terminal's master (nonblocking) and slave (blocking, as a login
// terminal is).
func openTestPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	slave = os.NewFile(uintptr(fd), fmt.Sprintf("/dev/pts/%d", n))
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func TestPassThrough(t *testing.T) {
	_, tty := openTestPty(t)
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	zero, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer zero.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	for _, tt := range []struct {
		f    *os.File
		want bool
	}{{null, true}, {r, true}, {w, true}, {tty, false}, {zero, false}, {file, false}} {
		if got := passThrough(tt.f); got != tt.want {
			t.Errorf("passThrough(%s) = %v, want %v", tt.f.Name(), got, tt.want)
		}
	}
}

// The container reads a terminal through a pipe; once it has exited, kiln reads nothing more of
// the terminal: the next line is there for whoever reads the terminal next (the shell).
func TestShieldStopsReadingTerminal(t *testing.T) {
	master, tty := openTestPty(t)
	sh, err := newShield(runtime.Stdio{Stdin: tty})
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := dupFile(sh.stdio.Stdin) // the container's stdin, which it keeps after started
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Close()
	sh.started()
	master.Write([]byte("to the container\n"))
	if got := readWithin(t, ctr, 5*time.Second); got != "to the container\n" {
		t.Fatalf("the container read %q", got)
	}
	sh.wait() // the container exited
	time.Sleep(100 * time.Millisecond)
	master.Write([]byte("to the shell\n"))
	if got := readWithin(t, tty, 5*time.Second); got != "to the shell\n" {
		t.Errorf("the shell read %q after the container exited", got)
	}
	if got, err := io.ReadAll(ctr); len(got) != 0 || err != nil {
		t.Errorf("the container read %q, %v after it exited; want EOF", got, err)
	}
}

// With -t the container never gets the pipe: kiln must not read what is typed ahead for the
// container's console.
func TestShieldReadsNothingWithoutReader(t *testing.T) {
	master, tty := openTestPty(t)
	sh, err := newShield(runtime.Stdio{Stdin: tty})
	if err != nil {
		t.Fatal(err)
	}
	master.Write([]byte("typed ahead\n"))
	sh.started()
	time.Sleep(200 * time.Millisecond)
	if got := readWithin(t, tty, 5*time.Second); got != "typed ahead\n" {
		t.Errorf("the console's reader got %q", got)
	}
	sh.wait()
}

// A process the container left behind holds its stdout: kiln stops copying after drainTimeout.
func TestShieldDrainIsBounded(t *testing.T) {
	sh, out, left := heldShield(t)
	sh.started()
	left.Write([]byte("before exit\n"))
	start := time.Now()
	sh.wait()
	if took := time.Since(start); took > drainTimeout+time.Second {
		t.Errorf("wait took %v with the pipe held open", took)
	}
	if b, _ := os.ReadFile(out.Name()); string(b) != "before exit\n" {
		t.Errorf("copied %q", b)
	}
}

// heldShield is a shield writing to a file, whose output pipe a process left behind (left)
// holds open.
func heldShield(t *testing.T) (sh *shield, out, left *os.File) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	if sh, err = newShield(runtime.Stdio{Stdout: out, Stderr: out}); err != nil {
		t.Fatal(err)
	}
	if left, err = dupFile(sh.stdio.Stdout); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { left.Close() })
	return sh, out, left
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// readWithin returns what one read of f gives within limit, or "".
func readWithin(t *testing.T, f *os.File, limit time.Duration) string {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, int(limit/time.Millisecond)); n <= 0 {
		return ""
	}
	buf := make([]byte, 256)
	n, _ := unix.Read(int(f.Fd()), buf)
	if n < 0 {
		n = 0
	}
	return string(buf[:n])
}

// A late ^C (after the container exited, while its output drains) ends the drain at once,
// whether it comes before wait sets its deadline or during the wait.
func TestShieldCutEndsDrain(t *testing.T) {
	for _, during := range []bool{false, true} {
		sh, _, _ := heldShield(t)
		sh.started()
		start := time.Now()
		if during {
			time.AfterFunc(100*time.Millisecond, sh.cut)
		} else {
			sh.cut()
		}
		sh.wait()
		took := time.Since(start)
		if took >= drainTimeout {
			t.Errorf("cut during wait=%v: wait took %v, the whole drain timeout", during, took)
		}
	}
}

// Once stopped, forwardSignals no longer sends: a signal asking kiln to end calls late, others
// are dropped.
func TestForwardSignalsAfterStop(t *testing.T) {
	ch := make(chan os.Signal, 4)
	sent := make(chan syscall.Signal, 4)
	late := make(chan struct{}, 4)
	stop := forwardSignals(ch, func(s syscall.Signal) { sent <- s }, func() { late <- struct{}{} })
	ch <- syscall.SIGUSR1
	if s := <-sent; s != syscall.SIGUSR1 {
		t.Fatalf("sent %v, want SIGUSR1", s)
	}
	stop()
	stop() // twice is fine: deferred, and called early on some paths
	ch <- syscall.SIGUSR2
	ch <- syscall.SIGINT
	select {
	case <-late:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT after stop did not call late")
	}
	select {
	case s := <-sent:
		t.Errorf("%v sent after stop", s)
	default:
	}
	if n := len(late); n != 0 {
		t.Errorf("late called %d more times, for SIGUSR2", n)
	}
}
