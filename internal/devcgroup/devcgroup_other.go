//go:build !linux

package devcgroup

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Compile needs Linux: the program is for the Linux kernel.
func Compile(rules []specs.LinuxDeviceCgroup) ([]byte, error) {
	return nil, fmt.Errorf("compile device rules: %w", errors.ErrUnsupported)
}

// Attach needs Linux and cgroup2.
func Attach(dir string, rules []specs.LinuxDeviceCgroup) error {
	return fmt.Errorf("attach device filter to %s: %w", dir, errors.ErrUnsupported)
}

// Unified is "": only Linux has cgroup2.
func Unified() string { return "" }
