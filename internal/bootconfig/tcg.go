package bootconfig

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// TCGParams are kernel parameters for a guest under TCG. Its TSC ticks at the host's rate
// (qemu reads the host's), but the kernel calibrates it against the PIT with busy loops that a
// loaded host stretches: calibration then fails, the TSC is marked unstable and the boot can
// hang in the timer check. Telling the kernel the rate skips that.
func TCGParams() []string {
	khz := hostTSCkHz()
	if khz == 0 {
		return nil
	}
	return []string{"tsc_early_khz=" + strconv.Itoa(khz)}
}

// hostTSCkHz is the host's "cpu MHz" in kHz (its TSC rate on a constant_tsc CPU), 0 if unknown.
func hostTSCkHz() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(name) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil || mhz <= 0 {
				return 0
			}
			return int(mhz * 1000)
		}
	}
	return 0
}
