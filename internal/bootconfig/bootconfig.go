// Package bootconfig is the contract between `kiln bake`/`kiln boot` on the host and kiln-init,
// PID 1 of a baked image: the configuration file baked into the initramfs, the kernel command
// line parameters that override it, and the serial ports the guest talks through.
//
// It imports only the standard library: kiln-init links it and must stay small.
//
// Precedence, lowest first: the image config and bake options (Config, baked as Path), then
// the kernel command line (kiln.* parameters, applied by Apply).
package bootconfig

// Path is where the configuration lives in the initramfs.
const Path = "/kiln/config.json"

// Port is a serial port kiln boot adds beside the console (ttyS0): the PC's standard COM2-COM4
// addresses, which the kernel's built-in 8250 driver finds without ACPI, a module or waiting
// for a device to be announced.
type Port struct {
	Device string // in the guest
	IOBase int    // the ISA I/O address qemu gives it
	IRQ    int
}

// The ports, and what travels on each.
var (
	PortStdout = Port{"/dev/ttyS1", 0x2f8, 3} // the app's standard output
	PortStderr = Port{"/dev/ttyS2", 0x3e8, 4} // the app's standard error
	PortStatus = Port{"/dev/ttyS3", 0x2e8, 3} // both ways: kiln-init's lines to the host, the host's requests to it
)

// UARTsParam, on the kernel command line, makes the 8250 driver register the four ports
// whatever its CONFIG_SERIAL_8250_RUNTIME_UARTS (1 in some minimal kernels, which would leave
// ttyS1-3 out and the app's output on the console).
const UARTsParam = "8250.nr_uarts=4"

// The lines on PortStatus, each ended by "\n". From kiln-init: ReadyLine once it reads the
// port (after the app has started), any WarningPrefix lines, then StatusPrefix and the exit
// status ("kiln-exit 3") before it powers off. From the host, after ReadyLine only:
// SignalPrefix and a signal number ("kiln-signal 15"), sent on to the app.
const (
	StatusPrefix  = "kiln-exit "
	ReadyLine     = "kiln-ready"
	WarningPrefix = "kiln-warning "
	SignalPrefix  = "kiln-signal "
)

// Config is what kiln-init runs and how it sets up the guest.
type Config struct {
	Args []string `json:"args"` // entrypoint + cmd; Args[0] is looked up in PATH from Env
	// Entrypoint is the image's entrypoint, the start of Args: kiln boot IMAGE -- ARGS runs
	// Entrypoint + ARGS, as docker run does. kiln-init does not read it.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Env        []string `json:"env,omitempty"`      // NAME=VALUE
	Workdir    string   `json:"workdir,omitempty"`  // default "/"
	User       string   `json:"user,omitempty"`     // numeric "uid:gid", resolved at bake time; "" is root
	Hostname   string   `json:"hostname,omitempty"` // default "kiln"
	Net        *Net     `json:"net,omitempty"`      // nil: loopback only, even if there is a NIC
	Mounts     []Mount  `json:"mounts,omitempty"`   // 9P shares to mount
	// Modules are kernel modules in the initramfs (absolute paths, "/lib/modules/...ko"), loaded
	// in this order before anything else, for the drivers the kernel has as modules.
	Modules []string `json:"modules,omitempty"`
	// NetModules and MountModules are in the initramfs too, for the NIC and for 9P, but only
	// kiln boot asks for them (kiln.module=PATH, which appends to Modules) when it gives the
	// guest a NIC or shares: loading unused modules would slow every boot. kiln-init loads
	// Modules only.
	NetModules   []string `json:"net_modules,omitempty"`
	MountModules []string `json:"mount_modules,omitempty"`
}

// Net configures the first network interface statically.
type Net struct {
	Address string   `json:"address"`           // CIDR, "10.0.2.15/24"
	Gateway string   `json:"gateway,omitempty"` // "10.0.2.2"
	DNS     []string `json:"dns,omitempty"`     // written to /etc/resolv.conf
}

// Mount is a virtio-9p share.
type Mount struct {
	Tag      string `json:"tag"`    // the mount_tag qemu gives the share
	Target   string `json:"target"` // absolute path in the guest; created if missing
	ReadOnly bool   `json:"readonly,omitempty"`
}

// UserNet is the static configuration matching qemu's user-mode network defaults.
func UserNet() *Net {
	return &Net{Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}}
}
