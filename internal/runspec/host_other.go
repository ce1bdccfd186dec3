//go:build !linux

package runspec

import "os"

func hostHostname() string {
	h, _ := os.Hostname()
	return h
}
