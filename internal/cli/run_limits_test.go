package cli

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "1048576": 1 << 20, "16m": 16 << 20, "16M": 16 << 20, "16mb": 16 << 20, "16MiB": 16 << 20,
		"1g": 1 << 30, "1.5g": 3 << 29, "512k": 512 << 10, "100b": 100, "2t": 2 << 40,
	} {
		got, err := parseSize("--memory", in, false)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if got, err := parseSize("--memory-swap", "-1", true); got != -1 || err != nil {
		t.Errorf(`parseSize("-1") with -1 allowed = %d, %v`, got, err)
	}
	for _, bad := range []string{"-1", "lots", "1x", "0x10", "1e3", "inf", "NaN", "1..5m", "m", "99999999999p"} {
		if _, err := parseSize("--memory", bad, false); err == nil || !strings.HasPrefix(err.Error(), "--memory ") {
			t.Errorf("parseSize(%q): error %v, want one naming --memory", bad, err)
		}
	}
}

func TestLimitFlagsParse(t *testing.T) {
	f := limitFlags{memory: "64m", memorySwap: "-1", cpus: "1.5", cpuShares: 512, pidsLimit: 10, cpusetCpus: "0"}
	if err := f.parse(); err != nil {
		t.Fatal(err)
	}
	l := f.limits
	if l.Memory != 64<<20 || l.MemorySwap != -1 || l.CPUs != 1.5 || l.CPUShares != 512 || l.PidsLimit != 10 || l.CpusetCpus != "0" {
		t.Errorf("limits %+v", l)
	}
	for _, f := range []limitFlags{{cpus: "many"}, {cpus: "NaN"}, {cpuShares: -1}, {memory: "x"}} {
		if err := f.parse(); err == nil {
			t.Errorf("%+v: no error", f)
		}
	}
}
