package guest

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// openPty returns a pseudo-terminal's master and the path of its slave: a terminal like a
// serial port, whose other end the test holds.
func openPty(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("SKIP: no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return m, "/dev/pts/" + strconv.Itoa(int(n))
}

// TestOpenPortIsRaw: what the app writes arrives unchanged: no "\r" before "\n", all 8 bits;
// nothing waits for flow control, even on a port left with it on.
func TestOpenPortIsRaw(t *testing.T) {
	m, slave := openPty(t)
	s, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	setCflag(t, s, unix.CRTSCTS, 0)
	f, err := openPort(bootconfig.Port{Device: slave}, os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Cflag&(unix.CRTSCTS|unix.PARENB) != 0 || tio.Cflag&unix.CSIZE != unix.CS8 || tio.Cflag&unix.CLOCAL == 0 ||
		tio.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 || tio.Oflag&unix.OPOST != 0 || tio.Iflag&unix.IXON != 0 {
		t.Errorf("termios after openPort: %+v", tio)
	}
	sent := []byte("line one\nline two\n\xff\x80\t\x00end")
	if _, err := f.Write(sent); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(m, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent) {
		t.Errorf("the port passed %q for %q", got, sent)
	}
}

// TestFinishPortsOnWedgedPort: a status port that takes no bytes (a UART that never empties)
// must not keep PID 1 from powering off.
func TestFinishPortsOnWedgedPort(t *testing.T) {
	_, slave := openPty(t)
	f, err := openPort(bootconfig.Port{Device: slave}, os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop(t, f)
	g := &guest{console: io.Discard, status: f}
	done := make(chan struct{})
	go func() {
		g.finishPorts(3, 100*time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute): // a hang, not a measurement
		t.Fatal("finishPorts blocked on a port that never empties")
	}
}

// setCflag sets and clears control flags of f's terminal.
func setCflag(t *testing.T, f *os.File, set, clear uint32) {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Cflag = tio.Cflag&^clear | set
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
}

// stop suspends f's output (tcflow TCOOFF): writes block, as on a UART that never empties.
func stop(t *testing.T, f *os.File) {
	if err := unix.IoctlSetInt(int(f.Fd()), unix.TCXONC, unix.TCOOFF); err != nil {
		t.Fatal(err)
	}
}

// TestWaitRelaysWarnsWhenStuck: output that stops moving (a port that takes no more) is given
// up after the idle time, and the host is told.
func TestWaitRelaysWarnsWhenStuck(t *testing.T) {
	_, slave := openPty(t)
	f, err := openPort(bootconfig.Port{Device: slave}, os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop(t, f)
	g := &guest{console: io.Discard}
	w, err := g.relay(f)
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(bytes.Repeat([]byte("x"), 1<<16)); w.Close() }()
	g.waitRelays(100 * time.Millisecond)
	if len(g.warnings) != 1 || !strings.Contains(g.warnings[0], "stopped moving") {
		t.Errorf("warnings %q, want one saying the output stopped", g.warnings)
	}
}

// TestWaitProgress: a wait that keeps seeing progress goes on past the idle time; one that
// sees none ends after it.
func TestWaitProgress(t *testing.T) {
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		for range 30 { // 300 ms of progress, three times the idle time
			time.Sleep(10 * time.Millisecond)
			n.Add(1)
		}
		close(done)
	}()
	if !waitProgress(done, n.Load, 100*time.Millisecond) {
		t.Error("gave up while there was progress")
	}
	if waitProgress(make(chan struct{}), n.Load, 100*time.Millisecond) {
		t.Error("done without done")
	}
}
