package container

import (
	"bytes"
	"errors"
	"strconv"
)

// Alive reports whether process pid exists (a zombie counts) and started at start, as returned
// by StartTime. A pid the kernel has since given to another process does not match.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, err := StartTime(pid)
	return err == nil && s == start
}

// parseStartTime returns field 22 of a /proc/PID/stat line: when the process started, in clock
// ticks after boot.
func parseStartTime(stat []byte) (uint64, error) {
	// Field 2, the command in parentheses, may itself hold spaces and ')': skip to the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command")
	}
	fields := bytes.Fields(stat[i+1:]) // fields[0] is field 3
	if len(fields) < 22-2 {
		return 0, errors.New("too few fields")
	}
	return strconv.ParseUint(string(fields[22-3]), 10, 64)
}
