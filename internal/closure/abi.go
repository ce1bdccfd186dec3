package closure

import "debug/elf"

// abi is what ld.so requires a library to share with the executable: a 32-bit library in a
// directory searched for a 64-bit program is skipped, and so is one for another machine.
type abi struct {
	class   elf.Class
	data    elf.Data
	machine elf.Machine
	flags   uint32 // e_flags: the float ABI on ARM and RISC-V picks the ld.so.cache flavour
}

func (a abi) matches(b abi) bool {
	return a.class == b.class && a.data == b.data && a.machine == b.machine
}

// ld.so.cache entry flags, from glibc's sysdeps/generic/ldconfig.h: the low byte is the kind of
// library, the next one the ABI variant.
const (
	flagELF            = 0x0001
	flagELFLibc6       = 0x0003
	flagSPARCLib64     = 0x0100
	flagS390Lib64      = 0x0400
	flagPowerPCLib64   = 0x0500
	flagX8664Lib64     = 0x0300
	flagX8664LibX32    = 0x0800
	flagARMLibHF       = 0x0900
	flagAArch64Lib64   = 0x0a00
	flagARMLibSF       = 0x0b00
	flagRISCVSoft      = 0x0f00
	flagRISCVDouble    = 0x1000
	flagLArchDouble    = 0x1200
	efARMFloatHard     = 0x400 // EF_ARM_ABI_FLOAT_HARD
	efRISCVFloatMask   = 0x6   // EF_RISCV_FLOAT_ABI
	efRISCVFloatDouble = 0x4   // EF_RISCV_FLOAT_ABI_DOUBLE
)

// cacheFlags lists the ld.so.cache flags the ld.so for a lists as its own (glibc's
// _dl_cache_check_flags); entries with other flags belong to another ABI.
func (a abi) cacheFlags() []int32 {
	is64 := a.class == elf.ELFCLASS64
	switch {
	case a.machine == elf.EM_X86_64 && is64:
		return []int32{flagELFLibc6 | flagX8664Lib64}
	case a.machine == elf.EM_X86_64:
		return []int32{flagELFLibc6 | flagX8664LibX32}
	case a.machine == elf.EM_AARCH64:
		return []int32{flagELFLibc6 | flagAArch64Lib64}
	case a.machine == elf.EM_ARM && a.flags&efARMFloatHard != 0:
		return []int32{flagELFLibc6 | flagARMLibHF, flagELFLibc6}
	case a.machine == elf.EM_ARM:
		return []int32{flagELFLibc6 | flagARMLibSF, flagELFLibc6}
	case a.machine == elf.EM_PPC64:
		return []int32{flagELFLibc6 | flagPowerPCLib64}
	case a.machine == elf.EM_S390 && is64:
		return []int32{flagELFLibc6 | flagS390Lib64}
	case a.machine == elf.EM_SPARCV9:
		return []int32{flagELFLibc6 | flagSPARCLib64}
	case a.machine == elf.EM_RISCV && a.flags&efRISCVFloatMask == efRISCVFloatDouble:
		return []int32{flagELFLibc6 | flagRISCVDouble}
	case a.machine == elf.EM_RISCV:
		return []int32{flagELFLibc6 | flagRISCVSoft}
	case a.machine == elf.EM_LOONGARCH:
		return []int32{flagELFLibc6 | flagLArchDouble}
	}
	return []int32{flagELFLibc6, flagELF}
}

// triplet is the Debian multiarch directory name for a, or "" when there is none.
func (a abi) triplet() string {
	is64 := a.class == elf.ELFCLASS64
	le := a.data == elf.ELFDATA2LSB
	switch {
	case a.machine == elf.EM_X86_64 && is64:
		return "x86_64-linux-gnu"
	case a.machine == elf.EM_X86_64:
		return "x86_64-linux-gnux32"
	case a.machine == elf.EM_386:
		return "i386-linux-gnu"
	case a.machine == elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case a.machine == elf.EM_ARM && a.flags&efARMFloatHard != 0:
		return "arm-linux-gnueabihf"
	case a.machine == elf.EM_ARM:
		return "arm-linux-gnueabi"
	case a.machine == elf.EM_PPC64 && le:
		return "powerpc64le-linux-gnu"
	case a.machine == elf.EM_PPC64:
		return "powerpc64-linux-gnu"
	case a.machine == elf.EM_S390 && is64:
		return "s390x-linux-gnu"
	case a.machine == elf.EM_RISCV && is64:
		return "riscv64-linux-gnu"
	case a.machine == elf.EM_LOONGARCH && is64:
		return "loongarch64-linux-gnu"
	}
	return ""
}

// platform is the $PLATFORM ld.so would expand for a: the kernel's AT_PLATFORM string. Where that
// names the exact CPU (POWER, s390) it cannot be known ahead of time, so it is "" and, as ld.so does
// for a token without a value, the search path entry using it is dropped.
func (a abi) platform() string {
	switch a.machine {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_386:
		return "i686"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_ARM:
		return "v7l"
	}
	return ""
}

// defaultDirs are the directories ld.so searches last. glibc's list is fixed when it is built; this
// is the union of what Debian (multiarch), Fedora (lib64) and Arch (lib) build in, in that order,
// which is harmless because a library for another ABI is skipped.
func (a abi) defaultDirs() []string {
	var dirs []string
	if t := a.triplet(); t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	if a.class == elf.ELFCLASS64 {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	} else {
		dirs = append(dirs, "/lib32", "/usr/lib32")
	}
	return append(dirs, "/lib", "/usr/lib")
}
