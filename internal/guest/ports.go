package guest

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// virtioConsoleID is the virtio device ID of a console (virtio-serial) device.
const virtioConsoleID = "0x0003"

// hasVirtioConsole reports whether the virtio bus under sys has a console device, so that
// the named ports are worth waiting for. Firecracker, or qemu started by hand, has none.
func hasVirtioConsole(sys string) bool {
	ids, _ := filepath.Glob(filepath.Join(sys, "bus/virtio/devices/*/device"))
	for _, f := range ids {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == virtioConsoleID {
			return true
		}
	}
	return false
}

// findPorts maps each port name to its device (/dev/vportNpM), reading the names under
// sys/class/virtio-ports. Ports appear a little after the driver loads (the host announces them
// on the control queue), so it polls until all are there or wait has passed, and returns those
// it found.
func findPorts(sys string, wait time.Duration, names ...string) map[string]string {
	found := map[string]string{}
	deadline := time.Now().Add(wait)
	for {
		dirs, _ := filepath.Glob(filepath.Join(sys, "class/virtio-ports/*/name"))
		for _, f := range dirs {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			name := strings.TrimSpace(string(b))
			for _, n := range names {
				if n == name {
					found[n] = "/dev/" + filepath.Base(filepath.Dir(f))
				}
			}
		}
		if len(found) == len(names) || time.Now().After(deadline) {
			return found
		}
		time.Sleep(2 * time.Millisecond)
	}
}
