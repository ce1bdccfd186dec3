//go:build !linux

package container

import (
	"errors"
	"fmt"
)

// StartTime needs Linux's /proc.
func StartTime(pid int) (uint64, error) {
	return 0, fmt.Errorf("start time of pid %d: %w", pid, errors.ErrUnsupported)
}
