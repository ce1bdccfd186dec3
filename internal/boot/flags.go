package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Port is a published port: TCP on the host's 127.0.0.1:Host to the guest's Guest.
type Port struct{ Host, Guest int }

// ParsePort parses -p HOSTPORT:GUESTPORT.
func ParsePort(s string) (Port, error) {
	h, g, ok := strings.Cut(s, ":")
	hp, err1 := strconv.Atoi(h)
	gp, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || hp < 1 || hp > 65535 || gp < 1 || gp > 65535 {
		return Port{}, fmt.Errorf("-p %q: want HOSTPORT:GUESTPORT, ports 1-65535", s)
	}
	return Port{Host: hp, Guest: gp}, nil
}

// Volume is a host directory shared with the guest over virtio-9p.
type Volume struct {
	HostDir, Target string
	ReadOnly        bool
}

// ParseVolume parses -v HOSTDIR:GUESTDIR[:ro]; HOSTDIR must be an existing directory.
func ParseVolume(s string) (Volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
		return Volume{}, fmt.Errorf("-v %q: want HOSTDIR:/GUESTDIR[:ro]", s)
	}
	v := Volume{Target: filepath.Clean(parts[1])}
	if len(parts) == 3 {
		if parts[2] != "ro" {
			return Volume{}, fmt.Errorf("-v %q: the only option is ro", s)
		}
		v.ReadOnly = true
	}
	dir, err := filepath.Abs(parts[0])
	if err != nil {
		return Volume{}, fmt.Errorf("-v %q: %w", s, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return Volume{}, fmt.Errorf("-v %q: host directory: %w", s, err)
	}
	if !fi.IsDir() {
		return Volume{}, fmt.Errorf("-v %q: %s is not a directory", s, dir)
	}
	v.HostDir = dir
	return v, nil
}
