package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Without -t a container never gets the caller's terminal, only pipes, as with Docker: what it
// leaves running cannot read the keys typed after kiln returns, nor change the terminal's
// settings. These tests give kiln a pseudo-terminal as its controlling terminal, stdin and
// stdout, as an interactive shell would.

// pty is a pseudo-terminal: the test plays the user on master, kiln gets slave.
type pty struct {
	master *os.File // nonblocking, for read deadlines
	slave  *os.File // blocking, as a login terminal is
	mu     sync.Mutex
	out    bytes.Buffer // everything written to the terminal (after onlcr: "\r\n")
}

// openPty opens /dev/ptmx with plain ioctls (go.mod has golang.org/x/sys, no pty package) and
// starts collecting what is written to the terminal.
func openPty(t *testing.T) *pty {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("SKIP: no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	fd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	p := &pty{master: master, slave: os.NewFile(uintptr(fd), name)}
	t.Cleanup(func() { p.slave.Close() })
	go p.collect()
	return p
}

func (p *pty) collect() {
	buf := make([]byte, 4096)
	for {
		n, err := p.master.Read(buf)
		p.mu.Lock()
		p.out.Write(buf[:n])
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// output is what was written to the terminal so far, with "\r\n" as "\n".
func (p *pty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.ReplaceAll(p.out.String(), "\r\n", "\n")
}

// echo reports whether the terminal still echoes.
func (p *pty) echo(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("tcgetattr %s: %v", p.slave.Name(), err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// kilnOnPty runs kiln with the terminal as its controlling terminal, stdin, stdout and stderr,
// and fails the test unless kiln exits 0 within limit.
func kilnOnPty(t *testing.T, p *pty, limit time.Duration, args ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(kiln, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kiln %s: %v\n%s", strings.Join(args, " "), err, p.output())
		}
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("kiln %s still ran after %v with nobody typing on its terminal\n%s",
			strings.Join(args, " "), limit, p.output())
	}
	return time.Since(start)
}

// pipeLinks checks that readlink printed a pipe for each of the container's fds.
func pipeLinks(t *testing.T, out string, fds int) {
	t.Helper()
	pipes := regexp.MustCompile(`(?m)^pipe:\[\d+\]$`).FindAllString(out, -1)
	if len(pipes) != fds || strings.Contains(out, "/dev/pts") {
		t.Errorf("the container's stdio: want %d pipes, got:\n%s", fds, out)
	}
}

// The container's stdio are pipes, it cannot turn echo off, and kiln returns as soon as it
// exits, though stdin is a terminal nobody types on.
func TestRunStdioTerminalIsPiped(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	p := openPty(t)
	script := `for fd in 0 1 2; do readlink /proc/self/fd/$fd; done
busybox stty -echo 2>/dev/null && echo stty-worked; echo container-done`
	took := kilnOnPty(t, p, 30*time.Second, "--root", root, "run", "--rm", "-i", "busybox", "sh", "-c", script)
	out := p.output()
	if !strings.Contains(out, "container-done\n") {
		t.Fatalf("the container's output did not reach the terminal:\n%s", out)
	}
	pipeLinks(t, out, 3)
	if strings.Contains(out, "stty-worked") || !p.echo(t) {
		t.Errorf("the container changed the terminal's settings:\n%s", out)
	}
	t.Logf("kiln run took %v", took)
}

// kiln exec returns though what it started left a process holding its stdin and stdout; that
// process never reads the keys typed after kiln returned.
func TestExecStdioTerminalIsPiped(t *testing.T) {
	root := t.TempDir()
	busyboxImage(t, root)
	mustKiln(t, root, "run", "-d", "--name", "box", "busybox", "sleep", "1000")
	defer kilnIn(t, root, "rm", "-f", "box")
	p := openPty(t)
	// fd 3: a background command's stdin is /dev/null in a non-interactive shell.
	script := `for fd in 0 1; do readlink /proc/self/fd/$fd; done
busybox stty -echo 2>/dev/null && echo stty-worked
exec 3<&0
setsid sh -c 'cat <&3 >/tmp/stolen' &
setsid sleep 60 &
echo exec-done`
	took := kilnOnPty(t, p, 20*time.Second, "--root", root, "exec", "-i", "box", "sh", "-c", script)
	out := p.output()
	if !strings.Contains(out, "exec-done\n") {
		t.Fatalf("the exec's output did not reach the terminal:\n%s", out)
	}
	pipeLinks(t, out, 2)
	if strings.Contains(out, "stty-worked") || !p.echo(t) {
		t.Errorf("the exec changed the terminal's settings:\n%s", out)
	}
	t.Logf("kiln exec took %v", took)

	// The user types at the shell kiln returned to, which is slow to read it: the line is
	// still there for the shell when it does.
	const typed = "typed-after-kiln-returned"
	if _, err := p.master.Write([]byte(typed + "\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if r := kilnIn(t, root, "exec", "box", "cat", "/tmp/stolen"); strings.Contains(r.stdout, typed) {
		t.Errorf("the process kiln exec left behind read the terminal: %q", r.stdout)
	}
	if got := readLine(t, p.slave, 5*time.Second); got != typed+"\n" {
		t.Errorf("the shell read %q after kiln exec, want %q", got, typed+"\n")
	}
}

// readLine reads what the terminal (in canonical mode) gives the next reader, within limit.
func readLine(t *testing.T, f *os.File, limit time.Duration) string {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	for end := time.Now().Add(limit); time.Now().Before(end); {
		if n, _ := unix.Poll(fds, 100); n > 0 {
			buf := make([]byte, 256)
			n, err := unix.Read(int(f.Fd()), buf)
			if err != nil {
				t.Fatalf("read %s: %v", f.Name(), err)
			}
			return string(buf[:n])
		}
	}
	return ""
}
