package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// signals are Linux's names by number (as on amd64 and arm64): the image runs on Linux
// whatever the host building it, so the host's own table would be the wrong one.
var signals = [...]string{
	1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS", 8: "FPE",
	9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
	16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN", 22: "TTOU",
	23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO",
	30: "PWR", 31: "SYS",
}

var signalAliases = map[string]string{"IOT": "ABRT", "CLD": "CHLD", "POLL": "IO"}

// Real-time signals as the C library numbers them (it keeps 32 and 33 for itself).
const sigRTMin, sigRTMax = 34, 64

// parseSignal normalises "SIGTERM", "term", "15", "SIGRTMIN+3" to the name kill -l prints.
func parseSignal(s string) (string, error) {
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if n, err := strconv.Atoi(name); err == nil && !strings.HasPrefix(name, "+") {
		return signalName(n, s)
	}
	if a, ok := signalAliases[name]; ok {
		name = a
	}
	for _, known := range signals {
		if known != "" && known == name {
			return "SIG" + known, nil
		}
	}
	if n, ok := realtime(name); ok {
		return signalName(n, s)
	}
	return "", fmt.Errorf("%q is not a signal such as SIGTERM, TERM or 15", s)
}

// realtime reads "RTMIN", "RTMIN+3", "RTMAX-2" as a signal number.
func realtime(name string) (int, bool) {
	for _, base := range []struct {
		prefix string
		num    int
		sign   string
	}{{"RTMIN", sigRTMin, "+"}, {"RTMAX", sigRTMax, "-"}} {
		rest, ok := strings.CutPrefix(name, base.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return base.num, true
		}
		off, err := strconv.Atoi(strings.TrimPrefix(rest, base.sign))
		if !strings.HasPrefix(rest, base.sign) || err != nil || off < 0 || off > sigRTMax-sigRTMin {
			return 0, false
		}
		if base.sign == "-" {
			off = -off
		}
		return base.num + off, true
	}
	return 0, false
}

// signalName names signal n as kill -l does; s is what was written, for the error.
func signalName(n int, s string) (string, error) {
	switch {
	case n >= 1 && n < len(signals):
		return "SIG" + signals[n], nil
	case n == sigRTMin:
		return "SIGRTMIN", nil
	case n == sigRTMax:
		return "SIGRTMAX", nil
	case n > sigRTMin && n <= (sigRTMin+sigRTMax)/2:
		return fmt.Sprintf("SIGRTMIN+%d", n-sigRTMin), nil
	case n > sigRTMin && n < sigRTMax:
		return fmt.Sprintf("SIGRTMAX-%d", sigRTMax-n), nil
	}
	return "", fmt.Errorf("%q is not a Linux signal (1..31, %d..%d)", s, sigRTMin, sigRTMax)
}
