package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// How long kiln-init waits for a NIC to appear after its driver loads, and, once every process
// has gone, how long the app's output may go without moving (to the ports, out of the UARTs)
// before kiln-init gives up on it: output that moves is waited for, however much is left.
const (
	nicWait   = 2 * time.Second
	relayIdle = 2 * time.Second
	portIdle  = 2 * time.Second
)

// guest is the state PID 1 carries from one step to the next.
type guest struct {
	console io.Writer // /dev/console, the kernel's console
	kmsg    *os.File  // /dev/kmsg: progress lines with the kernel's timestamps
	cfg     *bootconfig.Config
	cfgErr  error // a wrong command line, reported once the ports are open

	stdout, stderr, status *os.File       // the serial ports; nil when the host gave none, status until opened
	statusOnce             sync.Once      // opens status (statusPort)
	relays                 sync.WaitGroup // copying the app's pipes to stdout and stderr
	relayed                atomic.Int64   // bytes the relays have written to the ports
	warnings               []string       // for the host, written before the status line

	sigs chan os.Signal // SIGCHLD and the forwarded signals, caught from the start
}

// Main is kiln-init: it sets the guest up, runs the app, and powers the VM off with the app's
// exit status on the status port. It never returns.
func Main() {
	g := newGuest()
	g.poweroff(g.run())
}

// newGuest catches the signals PID 1 forwards before anything else: until then the Go runtime's
// default for SIGTERM, SIGINT (Ctrl-Alt-Del) and SIGHUP is to exit, and PID 1 exiting panics
// the kernel. Those that come during setup are forwarded once the app has started.
func newGuest() *guest {
	sigs := notifySignals()
	// Caught, and dropped, when a process sends them; a real fault in kiln-init still panics.
	// Not signal.Ignore: the app would inherit SIGABRT ignored.
	signal.Notify(make(chan os.Signal, 1), fatal...)
	return &guest{console: os.Stderr, sigs: sigs}
}

// fatal are the signals on which the Go runtime crashes when a process sends them (kill -SEGV 1
// from the app, as root in the guest).
var fatal = []os.Signal{unix.SIGABRT, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGSEGV,
	unix.SIGSTKFLT, unix.SIGSYS, unix.SIGTRAP}

// run does every step and returns the exit status to report.
func (g *guest) run() (status int) {
	defer func() {
		if r := recover(); r != nil {
			g.fail(fmt.Errorf("panic: %v", r))
			status = StatusSetupFailed
		}
	}()
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) // Ctrl-Alt-Del becomes SIGINT to PID 1, forwarded
	if err := g.setup(); err != nil {
		g.fail(err)
		return StatusSetupFailed
	}
	return g.runApp()
}

// setup is the sequence of steps before the app starts.
func (g *guest) setup() error {
	steps := []struct {
		name string
		do   func() error
	}{
		{"mount pseudo filesystems", g.mount},
		{"open ports", g.openPorts},
		{"read config", g.loadConfig},
		{"check config", func() error { return g.cfgErr }},
		{"load modules", func() error { return loadModules(g.cfg.Modules) }},
		{"configure network", func() error { return setupNet(g.cfg.Net, "/sys", nicWait) }},
		{"write /etc/resolv.conf", g.writeResolvConf},
		{"set hostname", func() error { return unix.Sethostname([]byte(g.cfg.Hostname)) }},
		{"mount shares", func() error { return mountShares(g.cfg.Mounts) }},
	}
	for _, s := range steps {
		g.log(s.name)
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func (g *guest) mount() error {
	err := mountPseudo()
	ensureStdio()
	if f, kerr := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); kerr == nil {
		g.kmsg = f
	}
	return err
}

func (g *guest) loadConfig() error {
	cmdline, err := readFile("/proc/cmdline")
	if err != nil {
		return err
	}
	g.cfg, g.cfgErr = LoadConfig(bootconfig.Path, string(cmdline))
	if g.cfg == nil {
		return g.cfgErr
	}
	return nil
}

func (g *guest) writeResolvConf() error {
	if g.cfg.Net == nil {
		return nil
	}
	return writeResolvConf("/", g.cfg.Net.DNS)
}

// openPorts opens the app's stdout and stderr ports; without them the app writes to the
// console. The status port is opened when the status is written: opening a port is tens of
// emulated port accesses, and nothing needs it before.
func (g *guest) openPorts() error {
	ports := []bootconfig.Port{bootconfig.PortStdout, bootconfig.PortStderr}
	for _, p := range ports {
		if !hasPort("/sys", p) {
			g.log("no UART at " + p.Device + ": the app's output goes to the console")
			return nil
		}
	}
	var err error
	for i, f := range []**os.File{&g.stdout, &g.stderr} {
		if *f, err = openPort(ports[i], os.O_WRONLY); err != nil {
			return err
		}
	}
	return nil
}

// runApp starts the app and supervises it until it exits.
func (g *guest) runApp() int {
	stdout, stderr := os.Stdout, os.Stderr
	if g.stdout != nil {
		// The app writes to pipes, as under docker run, relayed to the ports: a serial port is
		// a terminal, and a program on one writes differently (line buffering, colours).
		var err error
		if stdout, err = g.relay(g.stdout); err == nil {
			defer stdout.Close()
			stderr, err = g.relay(g.stderr)
			defer stderr.Close()
		}
		if err != nil {
			g.fail(err)
			return StatusSetupFailed
		}
	}
	g.log("run " + quoteArgs(g.cfg.Args))
	app, err := startApp(g.cfg, stdout, stderr)
	if err != nil {
		g.fail(err)
		var ae *appError
		if errors.As(err, &ae) {
			return ae.status
		}
		return StatusSetupFailed
	}
	go g.listen()
	status := superviseApp(app, g.sigs)
	g.log("app exited with status " + strconv.Itoa(status))
	return status
}

// relay returns the write end of a pipe whose contents are copied to port until every
// writer has closed it.
func (g *guest) relay(port *os.File) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for the app's output: %w", err)
	}
	g.relays.Add(1)
	go func() {
		defer g.relays.Done()
		g.copyToPort(port, r)
		r.Close()
	}()
	return w, nil
}

// copyToPort copies r to port, counting in g.relayed. Not io.Copy: a write to a port returns
// once the UART has taken all but its buffer's worth, and small writes keep the count moving
// on a slow one.
func (g *guest) copyToPort(port io.Writer, r io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := port.Write(buf[:n]); werr != nil {
				return
			}
			g.relayed.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

// waitRelays waits until the app's output has been copied to the ports, giving up when no
// byte has moved for idle (what is left running and cannot be killed holds a pipe open).
func (g *guest) waitRelays(idle time.Duration) {
	done := make(chan struct{})
	go func() { g.relays.Wait(); close(done) }()
	if !waitProgress(done, g.relayed.Load, idle) {
		g.warn("the app's output stopped moving to the serial ports for " + idle.String() + ": the rest of it is lost")
	}
}

// waitProgress waits until done is closed, or until progress has not changed for idle; it
// reports whether done was closed.
func waitProgress(done <-chan struct{}, progress func() int64, idle time.Duration) bool {
	tick := time.NewTicker(idle / 4)
	defer tick.Stop()
	last, moved := progress(), time.Now()
	for {
		select {
		case <-done:
			return true
		case now := <-tick.C:
			if n := progress(); n != last {
				last, moved = n, now
			} else if now.Sub(moved) >= idle {
				return false
			}
		}
	}
}

// poweroff ends the VM: what the app left running is killed, the status is written, the
// filesystems synced, and the machine powered off. It never returns.
func (g *guest) poweroff(status int) {
	killRest(time.Second)
	g.waitRelays(relayIdle) // every writer is gone: the pipes end
	g.finishPorts(status, portIdle)
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Fprintf(g.console, "kiln-init: power off: %v\n", err)
	unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	for {
		time.Sleep(time.Hour) // PID 1 must not exit
	}
}

// finishPorts waits until the app's output has left the UARTs, then writes the warnings and the
// status and waits until they have left too: out of the UARTs before the machine stops. Each
// wait gives up when nothing has left for idle: a port that never empties (a VMM that stops
// taking its bytes) must not keep PID 1 from powering off. Writes and drains block, so they
// run aside; if they are still blocked, the power-off goes ahead without them.
func (g *guest) finishPorts(status int, idle time.Duration) {
	if !g.whileSending(idle, func() { drain(g.stdout); drain(g.stderr) }, g.stdout, g.stderr) {
		g.warn("the app's output stopped leaving the serial ports for " + idle.String() + ": its end may be lost")
	}
	if !g.whileSending(idle, func() { g.writeStatus(status); drain(g.status) }, g.status) {
		g.log("the status port stopped sending for " + idle.String())
	}
}

// whileSending runs send aside and waits for it while the ports' UARTs keep sending; it
// reports whether send finished.
func (g *guest) whileSending(idle time.Duration, send func(), ports ...*os.File) bool {
	done := make(chan struct{})
	go func() { send(); close(done) }()
	return waitProgress(done, func() int64 { return unsent(ports...) }, idle)
}

// warn logs msg and keeps it for the host, which shows it.
func (g *guest) warn(msg string) {
	g.log(msg)
	g.warnings = append(g.warnings, msg)
}

// writeStatus writes the warnings and the status line on the status port, or on the console
// when there is no port.
func (g *guest) writeStatus(status int) {
	var line string
	for _, w := range g.warnings {
		line += bootconfig.WarningPrefix + w + "\n"
	}
	line += StatusLine(status)
	if g.statusPort() != nil {
		if _, err := io.WriteString(g.status, line); err == nil {
			return
		}
	}
	io.WriteString(g.console, line)
}

// fail reports a setup error on the app's stderr port, and on the console through the kernel
// log (shown even with quiet).
func (g *guest) fail(err error) {
	msg := "kiln-init: " + err.Error() + "\n"
	if g.stderr != nil {
		io.WriteString(g.stderr, msg)
	}
	if g.kmsg != nil {
		io.WriteString(g.kmsg, "<3>"+msg)
		return
	}
	io.WriteString(g.console, msg)
}

// log writes a progress line to the kernel log (info level: shown on the console unless
// quiet), where the kernel's timestamp measures each step. Not fmt: its first call is
// milliseconds of new code under emulation.
func (g *guest) log(msg string) {
	if g.kmsg == nil {
		return
	}
	io.WriteString(g.kmsg, "<6>kiln-init: "+strings.ReplaceAll(msg, "\n", " ")+"\n")
}

// quoteArgs writes args as ["a" "b"], as %q would.
func quoteArgs(args []string) string {
	b := []byte{'['}
	for i, a := range args {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendQuote(b, a)
	}
	return string(append(b, ']'))
}
