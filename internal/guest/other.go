//go:build !linux

package guest

import (
	"fmt"
	"os"
)

// Main reports that kiln-init runs only in a Linux guest.
func Main() {
	fmt.Fprintln(os.Stderr, "kiln-init: runs only as PID 1 of a Linux guest")
	os.Exit(2)
}

// readFile is os.ReadFile: only the Linux one is kiln-init's.
func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
