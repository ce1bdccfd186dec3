package container

import (
	"fmt"
	"os"
	"strconv"
)

// StartTime returns when process pid started (field 22 of /proc/PID/stat). With the pid it
// names one process for the life of the system.
func StartTime(pid int) (uint64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	if pid <= 0 {
		return 0, &os.PathError{Op: "read", Path: path, Err: os.ErrNotExist}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	t, err := parseStartTime(b)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return t, nil
}
