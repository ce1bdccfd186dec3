package seccomp

import (
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

//go:generate go run mktables.go

// syscallEntry is one row of the generated syscallTable.
type syscallEntry struct {
	name string
	nr   [numColumns]int32 // -1: not on that architecture
}

// Columns of syscallTable.
const (
	colAMD64 = iota
	col386
	colARM64
	colARM
	numColumns
)

// abi is one syscall ABI a filter can dispatch on: the value of
// seccomp_data.arch and where its numbers are in syscallTable.
type abi struct {
	spec   specs.Arch
	audit  uint32 // AUDIT_ARCH_*
	column int
	bits32 bool // arguments are 32 bits wide; the high words are never compared
	// x32Bit: syscall numbers with this bit set belong to another ABI that
	// shares the audit arch (x32 on x86_64); they are rejected as a foreign arch.
	x32Bit uint32
}

// Values of seccomp_data.arch (linux/audit.h), little-endian only.
const (
	auditArchX86_64  = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAArch64 = 0xc00000b7
	auditArchARM     = 0x40000028
)

var (
	abiAMD64 = abi{spec: specs.ArchX86_64, audit: auditArchX86_64, column: colAMD64, x32Bit: 0x40000000}
	abi386   = abi{spec: specs.ArchX86, audit: auditArchI386, column: col386, bits32: true}
	abiARM64 = abi{spec: specs.ArchAARCH64, audit: auditArchAArch64, column: colARM64}
	abiARM   = abi{spec: specs.ArchARM, audit: auditArchARM, column: colARM, bits32: true}
)

// target is what a filter is compiled for: the native ABI, and the compat
// ABIs the same kernel can run and this package has numbers for.
type target struct {
	native abi
	compat []abi
}

var (
	targetAMD64 = target{native: abiAMD64, compat: []abi{abi386}}
	targetARM64 = target{native: abiARM64, compat: []abi{abiARM}}
)

// nativeTarget is the target for the running binary, ok false where kiln has
// no syscall numbers.
func nativeTarget() (target, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return targetAMD64, true
	case "arm64":
		return targetARM64, true
	}
	return target{}, false
}

// dockerArch is the architecture name Docker profiles use in
// includes/excludes "arches" (libseccomp's names), for a GOARCH.
func dockerArch(goarch string) string {
	switch goarch {
	case "386":
		return "x86"
	case "loong64":
		return "loongarch64"
	case "mips64p32":
		return "mips64n32"
	case "mips64le":
		return "mipsel64"
	case "mips64p32le":
		return "mipsel64n32"
	case "mipsle":
		return "mipsel"
	}
	return goarch // amd64, arm64, arm, ppc64le, s390x, riscv64, ...
}

// lookup finds a syscall by name; ok is false if no Linux architecture has it.
func lookup(name string) (e *syscallEntry, ok bool) {
	i, ok := slices.BinarySearchFunc(syscallTable[:], name, func(e syscallEntry, name string) int {
		return strings.Compare(e.name, name)
	})
	if !ok {
		return nil, false
	}
	return &syscallTable[i], true
}
