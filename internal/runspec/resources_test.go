package runspec

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestResourcesMapping(t *testing.T) {
	r, err := resources(Limits{Memory: 16 << 20, CPUs: 1.5, CPUShares: 512, PidsLimit: 10, CpusetCpus: "0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *r.Memory.Limit != 16<<20 || *r.Memory.Swap != 32<<20 {
		t.Errorf("memory %d swap %d: want 16 MiB and twice that (Docker's default swap)", *r.Memory.Limit, *r.Memory.Swap)
	}
	if *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 || r.CPU.Cpus != "0" {
		t.Errorf("cpu: quota %d period %d shares %d cpus %q", *r.CPU.Quota, *r.CPU.Period, *r.CPU.Shares, r.CPU.Cpus)
	}
	if *r.Pids.Limit != 10 {
		t.Errorf("pids limit %d", *r.Pids.Limit)
	}

	r, err = resources(Limits{Memory: 64 << 20, MemorySwap: -1}, nil)
	if err != nil || *r.Memory.Swap != -1 {
		t.Errorf("--memory-swap -1: %v, %+v", err, r)
	}
	r, err = resources(Limits{Memory: 64 << 20, MemorySwap: 64 << 20}, nil)
	if err != nil || *r.Memory.Swap != 64<<20 {
		t.Errorf("--memory-swap equal to --memory (no swap): %v, %+v", err, r)
	}
}

func TestResourcesNoLimits(t *testing.T) {
	for _, l := range []Limits{{}, {PidsLimit: -1}} {
		r, err := resources(l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Memory != nil || r.CPU != nil || r.Pids != nil {
			t.Errorf("%+v: got limits %+v %+v %+v, want none", l, r.Memory, r.CPU, r.Pids)
		}
	}
}

func TestResourcesErrors(t *testing.T) {
	n := runtime.NumCPU()
	tests := []struct {
		l    Limits
		want string
	}{
		{Limits{Memory: 4 << 20}, "--memory 4m: minimum memory limit allowed is 6MB"},
		{Limits{Memory: -5}, "--memory -5: must not be negative"},
		{Limits{MemorySwap: 1 << 30}, "--memory-swap 1g: you should always set the memory limit"},
		{Limits{Memory: 1 << 30, MemorySwap: 512 << 20}, "--memory-swap 512m: minimum memoryswap limit should be larger than memory limit (--memory 1g)"},
		{Limits{Memory: 1 << 30, MemorySwap: -2}, "--memory-swap -2: want a size, or -1"},
		{Limits{CPUs: 0.001}, "--cpus 0.001: range of CPUs is from 0.01 to"},
		{Limits{CPUs: float64(n + 1)}, "--cpus " + strconv.Itoa(n+1) + ": range of CPUs is from 0.01 to " + strconv.Itoa(n) + ".00"},
		{Limits{CPUs: -1}, "--cpus -1: range"},
		{Limits{CPUShares: 1}, "--cpu-shares 1: want 2 to 262144"},
		{Limits{CPUShares: 300000}, "--cpu-shares 300000: want 2 to 262144"},
		{Limits{PidsLimit: -2}, "--pids-limit -2: want a positive number"},
		{Limits{CpusetCpus: "1-0"}, `--cpuset-cpus "1-0": invalid CPU list item "1-0"`},
		{Limits{CpusetCpus: "a"}, `--cpuset-cpus "a": invalid CPU list item "a"`},
		{Limits{CpusetCpus: "0,4096"}, `--cpuset-cpus "0,4096": requested CPUs are not available, available: `},
	}
	for _, tt := range tests {
		_, err := resources(tt.l, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want it to start with %q", tt.l, err, tt.want)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	set, err := parseCPUList("0-2,5")
	if err != nil {
		t.Fatal(err)
	}
	for cpu, in := range map[int]bool{0: true, 1: true, 2: true, 3: false, 5: true} {
		if set[cpu] != in {
			t.Errorf("CPU %d in set: %v, want %v", cpu, set[cpu], in)
		}
	}
	for _, bad := range []string{"", "0,", "-1", "2-", "x"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{16 << 20: "16m", 1 << 30: "1g", 1536: "1536", 3 << 10: "3k", 1000: "1000", -1: "-1"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
