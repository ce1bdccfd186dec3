// Package flock takes flock(2) locks on files and directories, the way kiln serializes its
// processes: every Open makes a new open file description, so goroutines of one process exclude
// each other exactly as processes do, and closing the file (or the process dying) drops the lock.
package flock

import (
	"errors"
	"fmt"
	"os"
)

// Mode is a shared or an exclusive lock.
type Mode int

const (
	Shared Mode = iota
	Exclusive
)

var errUnsupported = fmt.Errorf("file locks: %w", errors.ErrUnsupported)

// Unlock drops the lock by closing f; nil is fine.
func Unlock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

func openFlags(create bool) int {
	if create {
		return os.O_RDONLY | os.O_CREATE
	}
	return os.O_RDONLY // also opens directories
}
