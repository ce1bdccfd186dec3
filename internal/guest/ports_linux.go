package guest

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// hasPort reports whether the UART behind a port's device exists: the 8250 driver makes
// ttyS0-3 whether or not there is hardware behind them, and says "0" (PORT_UNKNOWN) in
// sys/class/tty/NAME/type for those without. qemu started by hand, or Firecracker, has none.
func hasPort(sys string, p bootconfig.Port) bool {
	b, err := readFile(sys + "/class/tty/" + filepath.Base(p.Device) + "/type")
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

// openPort opens a port (flag: os.O_WRONLY, or os.O_RDWR for the status port, which the host
// also writes to), raw: a serial line is a terminal, whose defaults would turn "\n" into "\r\n"
// and echo what comes in. Reads and writes block, as tcdrain at the end relies on.
func openPort(p bootconfig.Port, flag int) (*os.File, error) {
	f, err := os.OpenFile(p.Device, flag|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd()) // also puts f in blocking mode
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == nil {
		makeRaw(t)
		err = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "make raw", Path: p.Device, Err: err}
	}
	return f, nil
}

// makeRaw is cfmakeraw(3), with CLOCAL and without CRTSCTS: no modem line or flow control to
// wait for, whatever the port was left with.
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CLOCAL
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0 // a read returns what has come, without a timer
}

// drain waits until what was written to f has left the UART (tcdrain). A signal ends the
// wait with EINTR, which no SA_RESTART restarts: it waits again.
func drain(f *os.File) {
	if f == nil {
		return
	}
	for unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1) == unix.EINTR {
	}
}

// unsent is how many bytes written to the ports have not left their UARTs yet (TIOCOUTQ).
func unsent(fs ...*os.File) int64 {
	var n int64
	for _, f := range fs {
		if f != nil {
			q, _ := unix.IoctlGetInt(int(f.Fd()), unix.TIOCOUTQ)
			n += int64(q)
		}
	}
	return n
}
