package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kiln-project/kiln/internal/runspec"
	"github.com/kiln-project/kiln/internal/runtime"
)

// limitFlags are `kiln run`'s resource limit flags, Docker's names and meanings.
type limitFlags struct {
	memory, memorySwap, cpus, cpusetCpus string
	cpuShares, pidsLimit                 int64
	limits                               runspec.Limits // filled by parse
}

func addLimitFlags(fl *pflag.FlagSet, f *limitFlags) {
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit: bytes, or a size like 16m or 1g (at least 6m)")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "memory plus swap limit, a size; -1 for unlimited swap (default: twice --memory)")
	fl.StringVar(&f.cpus, "cpus", "", "number of CPUs, like 1.5 (a CFS quota over 100 ms)")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "relative CPU weight (2 to 262144; 1024 is the default)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "at most this many processes and threads (0 or -1: no limit)")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs the container may run on, like 0-2,4")
}

// parse checks the flags' values and fills f.limits. The ranges are checked by runspec.Build.
func (f *limitFlags) parse() error {
	l := runspec.Limits{CpusetCpus: f.cpusetCpus, PidsLimit: f.pidsLimit}
	var err error
	if l.Memory, err = parseSize("--memory", f.memory, false); err != nil {
		return err
	}
	if l.MemorySwap, err = parseSize("--memory-swap", f.memorySwap, true); err != nil {
		return err
	}
	if l.MemorySwap > 0 && !runtime.SwapLimitSupported() {
		// Docker warns and runs with unlimited swap; a limit the user asked for and does not get
		// is a surprise better stopped here.
		return fmt.Errorf("--memory-swap %s: this kernel does not account swap (no memory.memsw.limit_in_bytes or "+
			"memory.swap.max; boot with swapaccount=1), so the limit cannot be enforced: drop --memory-swap or pass -1", f.memorySwap)
	}
	if f.cpus != "" {
		l.CPUs, err = strconv.ParseFloat(f.cpus, 64)
		if err != nil || math.IsInf(l.CPUs, 0) || math.IsNaN(l.CPUs) {
			return fmt.Errorf("--cpus %q: want a number of CPUs, like 1.5", f.cpus)
		}
	}
	if f.cpuShares < 0 {
		return fmt.Errorf("--cpu-shares %d: must not be negative", f.cpuShares)
	}
	l.CPUShares = uint64(f.cpuShares)
	f.limits = l
	return nil
}

// parseSize reads Docker's size grammar: a number with an optional unit b, k, m, g, t or p
// (powers of 1024, case-insensitive, "mb" and "mib" too), so "16m" and "1.5g". "" is 0; -1 is
// accepted when minusOne.
func parseSize(flag, s string, minusOne bool) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if minusOne && s == "-1" {
		return -1, nil
	}
	num := strings.ToLower(strings.TrimSpace(s))
	num = strings.TrimSuffix(strings.TrimSuffix(num, "b"), "i")
	shift := 0
	if i := len(num) - 1; i >= 0 {
		if j := strings.IndexByte("kmgtp", num[i]); j >= 0 {
			shift, num = 10*(j+1), strings.TrimSpace(num[:i])
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || strings.Trim(num, "0123456789.") != "" {
		return 0, fmt.Errorf("%s %q: invalid size: want bytes or a number with a unit, like 16m or 1g", flag, s)
	}
	b := v * float64(int64(1)<<shift)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%s %q: too large", flag, s)
	}
	return int64(b), nil
}
