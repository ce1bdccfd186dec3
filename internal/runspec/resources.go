package runspec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Limits are the container's resource limits, already parsed from the flags (zero: no limit).
type Limits struct {
	Memory     int64 // --memory, bytes
	MemorySwap int64 // --memory-swap, bytes of memory plus swap; -1: unlimited swap
	CPUs       float64
	CPUShares  uint64
	PidsLimit  int64 // > 0: at most this many; -1: unlimited
	CpusetCpus string
}

// resources is the spec's LinuxResources for the limits and device rules.
func resources(l Limits, devices []specs.LinuxDeviceCgroup) (*specs.LinuxResources, error) {
	return &specs.LinuxResources{Devices: devices}, nil
}
