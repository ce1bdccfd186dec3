//go:build !linux

package runtime

// ReadStats samples a container's resource use (Linux only).
func ReadStats(id string, pid int) (Stats, error) { return Stats{}, errNotLinux }

// SwapLimitSupported reports whether swap is accounted per cgroup (Linux only).
func SwapLimitSupported() bool { return false }
