package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// How long kiln-init waits for devices the host announces after their driver loads.
const (
	portWait = 5 * time.Second
	nicWait  = 2 * time.Second
)

// guest is the state PID 1 carries from one step to the next.
type guest struct {
	console io.Writer // /dev/console, the kernel's console
	kmsg    *os.File  // /dev/kmsg: progress lines with the kernel's timestamps
	cfg     *bootconfig.Config
	cfgErr  error // a wrong command line, reported once the ports are open

	stdout, stderr, status *os.File // the virtio console ports; nil when the host gave none

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
		{"read config", g.loadConfig},
		{"load modules", func() error { return loadModules(g.cfg.Modules) }},
		{"open console ports", g.openPorts},
		{"check config", func() error { return g.cfgErr }},
		{"configure network", func() error { return setupNet(g.cfg.Net, "/sys", nicWait) }},
		{"write /etc/resolv.conf", g.writeResolvConf},
		{"set hostname", func() error { return unix.Sethostname([]byte(g.cfg.Hostname)) }},
		{"mount shares", func() error { return mountShares(g.cfg.Mounts) }},
	}
	for _, s := range steps {
		g.logf("%s", s.name)
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
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	g.cfg, g.cfgErr = LoadConfig(bootconfig.Path, string(cmdline))
	if g.cfg == nil {
		return g.cfgErr // no modules, so no ports: the error goes to the console
	}
	return nil
}

func (g *guest) writeResolvConf() error {
	if g.cfg.Net == nil {
		return nil
	}
	return writeResolvConf("/", g.cfg.Net.DNS)
}

// openPorts opens the three ports; without a virtio console the app writes to the console.
func (g *guest) openPorts() error {
	if !hasVirtioConsole("/sys") {
		g.logf("no virtio console: the app's output goes to the console")
		return nil
	}
	names := []string{bootconfig.PortStdout, bootconfig.PortStderr, bootconfig.PortStatus}
	found := findPorts("/sys", portWait, names...)
	for _, n := range names {
		if found[n] == "" {
			return fmt.Errorf("no virtio console port named %s in /sys/class/virtio-ports", n)
		}
	}
	var err error
	for i, f := range []**os.File{&g.stdout, &g.stderr, &g.status} {
		if *f, err = os.OpenFile(found[names[i]], os.O_WRONLY, 0); err != nil {
			return err
		}
		// Blocking mode (Fd sets it): a blocking write to a port returns once the host has
		// taken the data, so the app's output is out before the status line.
		(*f).Fd()
	}
	return nil
}

// runApp starts the app and supervises it until it exits.
func (g *guest) runApp() int {
	stdout, stderr := g.stdout, g.stderr
	if stdout == nil {
		stdout, stderr = os.Stdout, os.Stderr
	}
	g.logf("run %q", g.cfg.Args)
	app, err := startApp(g.cfg, stdout, stderr)
	if err != nil {
		g.fail(err)
		var ae *appError
		if errors.As(err, &ae) {
			return ae.status
		}
		return StatusSetupFailed
	}
	status := superviseApp(app, g.sigs)
	g.logf("app exited with status %d", status)
	return status
}

// poweroff ends the VM: what the app left running is killed, the status is written, the
// filesystems synced, and the machine powered off. It never returns.
func (g *guest) poweroff(status int) {
	killRest(time.Second)
	g.writeStatus(status)
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Fprintf(g.console, "kiln-init: power off: %v\n", err)
	unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	for {
		time.Sleep(time.Hour) // PID 1 must not exit
	}
}

// writeStatus writes the status line on the status port, finding the port first if setup
// failed before opening it, and on the console when there is no port.
func (g *guest) writeStatus(status int) {
	line := StatusLine(status)
	if g.status == nil && hasVirtioConsole("/sys") {
		if p := findPorts("/sys", time.Second, bootconfig.PortStatus)[bootconfig.PortStatus]; p != "" {
			if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
				f.Fd() // blocking, as in openPorts
				g.status = f
			}
		}
	}
	if g.status != nil {
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

// logf writes a progress line to the kernel log (info level: shown on the console unless
// quiet), where the kernel's timestamp measures each step.
func (g *guest) logf(format string, args ...any) {
	if g.kmsg == nil {
		return
	}
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	io.WriteString(g.kmsg, "<6>kiln-init: "+msg+"\n")
}
