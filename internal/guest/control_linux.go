package guest

import (
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// listen takes the host's requests on the status port from when the app has started until
// power-off: each "kiln-signal N" joins the signals PID 1 forwards to the app. It first says
// it listens (bootconfig.ReadyLine): the host holds its requests until then, since bytes that
// reach a UART before its port is open are lost.
func (g *guest) listen() {
	f := g.statusPort()
	if f == nil {
		return
	}
	if _, err := io.WriteString(f, bootconfig.ReadyLine+"\n"); err != nil {
		return
	}
	readRequests(f, func(n int) { g.sigs <- unix.Signal(n) })
}

// statusPort opens the status port once, for both directions; nil when the host gave none.
// Not during setup: opening a port is tens of emulated port accesses, and nothing needs it
// before the app runs.
func (g *guest) statusPort() *os.File {
	g.statusOnce.Do(func() {
		if g.status == nil && hasPort("/sys", bootconfig.PortStatus) {
			g.status, _ = openPort(bootconfig.PortStatus, os.O_RDWR)
		}
	})
	return g.status
}
