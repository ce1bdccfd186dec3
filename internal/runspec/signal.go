package runspec

import (
	"fmt"
	"strconv"
	"strings"
)

// linuxSignals are the names of Linux's standard signals, by number (the
// container is Linux whatever builds the spec).
var linuxSignals = [...]string{
	1: "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1",
	"SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP",
	"TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
}

const (
	sigRTMin = 34
	sigRTMax = 64
)

// StopSignal spells an image's StopSignal ("SIGTERM", "term", "15",
// "RTMIN+3") as "SIGTERM" or "SIGRTMIN+3"; empty is SIGTERM, Docker's default.
func StopSignal(s string) (string, error) {
	if s == "" {
		return "SIGTERM", nil
	}
	n, err := signalNumber(s)
	if err != nil {
		return "", fmt.Errorf("stop signal %s: %w", s, err)
	}
	if n < len(linuxSignals) {
		return "SIG" + linuxSignals[n], nil
	}
	return fmt.Sprintf("SIGRTMIN+%d", n-sigRTMin), nil
}

func signalNumber(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax || n >= len(linuxSignals) && n < sigRTMin {
			return 0, fmt.Errorf("no signal %d", n)
		}
		return n, nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for n, known := range linuxSignals {
		if known != "" && known == name {
			return n, nil
		}
	}
	if name == "IOT" {
		return 6, nil
	}
	if name == "POLL" {
		return 29, nil
	}
	base, off, signed := name, 0, 1
	if i := strings.IndexAny(name, "+-"); i >= 0 {
		var err error
		if off, err = strconv.Atoi(name[i+1:]); err != nil || off < 0 {
			return 0, fmt.Errorf("unknown signal")
		}
		if name[i] == '-' {
			signed = -1
		}
		base = name[:i]
	}
	var n int
	switch {
	case base == "RTMIN" && signed > 0:
		n = sigRTMin + off
	case base == "RTMAX" && (signed < 0 || off == 0):
		n = sigRTMax - off
	default:
		return 0, fmt.Errorf("unknown signal")
	}
	if n < sigRTMin || n > sigRTMax {
		return 0, fmt.Errorf("unknown signal")
	}
	return n, nil
}
