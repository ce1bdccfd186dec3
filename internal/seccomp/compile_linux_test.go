package seccomp

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostKernel is a kernel new enough for every minKernel in Docker's profile.
var hostKernel = kernelVersion{6, 1}

func defaultFor(t testing.TB, goarch string, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	h := host{goarch: goarch, kernel: hostKernel, caps: map[string]bool{}}
	for _, c := range caps {
		h.caps[canonicalCap(c)] = true
	}
	p, err := dockerDefault().resolve(h)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustCompile(t testing.TB, p *specs.LinuxSeccomp, tg target) []unix.SockFilter {
	t.Helper()
	prog, err := compile(p, tg)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(prog); err != nil {
		t.Fatalf("program the kernel would refuse: %v", err)
	}
	return prog
}

// expect is what p means for d, worked out the slow, obvious way from the
// rules Compile documents.
func expect(t testing.TB, p *specs.LinuxSeccomp, abis []abi, d seccompData) uint32 {
	t.Helper()
	i := slices.IndexFunc(abis, func(ab abi) bool { return ab.audit == d.arch })
	if i < 0 {
		return unix.SECCOMP_RET_KILL_PROCESS
	}
	ab := abis[i]
	if ab.x32Bit != 0 && d.nr&ab.x32Bit != 0 && d.nr != ^uint32(0) {
		return unix.SECCOMP_RET_KILL_PROCESS
	}
	def, err := actionRet(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		t.Fatal(err)
	}
	name, ok := syscallNames[ab.column][d.nr]
	if !ok {
		if d.nr > maxNr(ab) && blocks(def) {
			return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		}
		return def
	}
	fallback := def
	for _, s := range p.Syscalls {
		if !slices.Contains(s.Names, name) {
			continue
		}
		ret, err := actionRet(s.Action, s.ErrnoRet)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Args) == 0 {
			fallback = ret
			continue
		}
		if matches(s.Args, ab, d) {
			return ret
		}
	}
	return fallback
}

// syscallNames maps each column's numbers back to names.
var syscallNames = func() (m [numColumns]map[uint32]string) {
	for c := range m {
		m[c] = map[uint32]string{}
		for _, e := range syscallTable {
			if e.nr[c] >= 0 {
				m[c][uint32(e.nr[c])] = e.name
			}
		}
	}
	return m
}()

func matches(conds []specs.LinuxSeccompArg, ab abi, d seccompData) bool {
	byIndex := map[uint]int{}
	for _, c := range conds {
		byIndex[c.Index]++
	}
	or := len(byIndex) < len(conds) // an argument tested twice: any condition will do
	for _, c := range conds {
		arg := d.args[c.Index]
		if ab.bits32 {
			arg = uint64(uint32(arg))
		}
		var ok bool
		switch c.Op {
		case specs.OpEqualTo:
			ok = arg == c.Value
		case specs.OpNotEqual:
			ok = arg != c.Value
		case specs.OpLessThan:
			ok = arg < c.Value
		case specs.OpLessEqual:
			ok = arg <= c.Value
		case specs.OpGreaterThan:
			ok = arg > c.Value
		case specs.OpGreaterEqual:
			ok = arg >= c.Value
		case specs.OpMaskedEqual:
			ok = arg&c.Value == c.ValueTwo
		}
		if or && ok {
			return true
		}
		if !or && !ok {
			return false
		}
	}
	return !or
}

// interesting are argument values near the edges the filters compare against.
var interesting = []uint64{
	0, 1, 2, 7, 8, 9, 37, 38, 39, 40, 41, 0x20000, 0x20008, 0xfffffffe, 0xffffffff,
	0x100000000, 0x100000001, 0x1ffffffff, 0x7e020000, 0x10000, 0x20000000, 0x40000000,
	0x7e020000 | 0x11, 0xffffffff7e020000, 0xffffffffffffffff, 0x8000000000000000,
}

// checkAll runs prog on every syscall number of each ABI (and a few that are
// none), with tries random argument values around the edges, against expect.
func checkAll(t *testing.T, p *specs.LinuxSeccomp, tg target, prog []unix.SockFilter, tries int) {
	t.Helper()
	abis, err := abisFor(p.Architectures, tg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, arch := range []uint32{auditArchX86_64, auditArchI386, auditArchAArch64, auditArchARM, 0xc00000f3} {
		nrs := []uint32{1000, 0x3fffffff, 0x40000000, 0x40000001, 0x400000ff, 0x7fffffff, 0xfffffffe, 0xffffffff}
		for _, e := range syscallTable {
			for _, nr := range e.nr {
				if nr >= 0 {
					nrs = append(nrs, uint32(nr), uint32(nr)+1)
				}
			}
		}
		for _, nr := range nrs {
			for range tries {
				d := seccompData{nr: nr, arch: arch}
				for i := range d.args {
					d.args[i] = interesting[rng.IntN(len(interesting))]
				}
				got, _ := run(prog, d)
				if want := expect(t, p, abis, d); got != want {
					t.Fatalf("arch %#x nr %d args %#x: got %#x, want %#x", arch, nr, d.args, got, want)
				}
			}
		}
	}
}

func TestDefaultMatchesItsRules(t *testing.T) {
	for _, tc := range []struct {
		goarch string
		tg     target
	}{{"amd64", targetAMD64}, {"arm64", targetARM64}} {
		for _, caps := range [][]string{nil, DockerDefaultCaps(), append(DockerDefaultCaps(), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")} {
			t.Run(tc.goarch, func(t *testing.T) {
				p := defaultFor(t, tc.goarch, caps)
				checkAll(t, p, tc.tg, mustCompile(t, p, tc.tg), 8)
			})
		}
	}
}

func TestDefaultProgram(t *testing.T) {
	for _, tc := range []struct {
		goarch string
		tg     target
	}{{"amd64", targetAMD64}, {"arm64", targetARM64}} {
		p := defaultFor(t, tc.goarch, DockerDefaultCaps())
		prog := mustCompile(t, p, tc.tg)
		if len(prog) >= unix.BPF_MAXINSNS {
			t.Errorf("%s: %d instructions", tc.goarch, len(prog))
		}
		if again := mustCompile(t, defaultFor(t, tc.goarch, DockerDefaultCaps()), tc.tg); !reflect.DeepEqual(prog, again) {
			t.Errorf("%s: two compilations differ", tc.goarch)
		}
		worst := 0
		for nr := uint32(0); nr < 500; nr++ {
			_, steps := run(prog, seccompData{nr: nr, arch: tc.tg.native.audit})
			worst = max(worst, steps)
		}
		t.Logf("%s: %d instructions, at most %d run for a native syscall", tc.goarch, len(prog), worst)
	}
}

// TestDefaultNames checks that Default says what Docker's profile says
// about a few syscalls, as resolved for given capabilities.
func TestDefaultCapabilities(t *testing.T) {
	allowed := func(p *specs.LinuxSeccomp, name string) bool {
		for _, s := range p.Syscalls {
			if slices.Contains(s.Names, name) && s.Action == specs.ActAllow && len(s.Args) == 0 {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		cap   string
		calls []string
	}{
		{"CAP_SYS_ADMIN", []string{"mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf", "sethostname"}},
		{"CAP_SYS_PTRACE", []string{"kcmp", "pidfd_getfd", "process_madvise"}},
		{"CAP_SYS_MODULE", []string{"init_module", "finit_module", "delete_module"}},
		{"CAP_SYS_BOOT", []string{"reboot"}},
		{"CAP_SYS_TIME", []string{"settimeofday", "clock_settime"}},
		{"CAP_SYS_NICE", []string{"mbind", "set_mempolicy"}},
		{"CAP_SYSLOG", []string{"syslog"}},
		{"CAP_SYS_PACCT", []string{"acct"}},
		{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}},
		{"CAP_SYS_CHROOT", []string{"chroot"}},
		{"CAP_SYS_TTY_CONFIG", []string{"vhangup"}},
		{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}},
		{"CAP_BPF", []string{"bpf"}},
		{"CAP_PERFMON", []string{"perf_event_open"}},
	} {
		without := defaultFor(t, "amd64", nil)
		with := defaultFor(t, "amd64", []string{strings.ToLower(strings.TrimPrefix(tc.cap, "CAP_"))})
		for _, name := range tc.calls {
			if allowed(without, name) {
				t.Errorf("%s allowed without %s", name, tc.cap)
			}
			if !allowed(with, name) {
				t.Errorf("%s not allowed with %s", name, tc.cap)
			}
		}
	}
	// ptrace is allowed from kernel 4.8 on, whatever the capabilities.
	old := host{goarch: "amd64", kernel: kernelVersion{4, 4}}
	p, _ := dockerDefault().resolve(old)
	if allowed(p, "ptrace") || !allowed(defaultFor(t, "amd64", nil), "ptrace") {
		t.Error("ptrace: minKernel 4.8 not applied")
	}
}

func TestDefaultArchitectures(t *testing.T) {
	if got := defaultFor(t, "amd64", nil).Architectures; !reflect.DeepEqual(got, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
		t.Errorf("amd64: %v", got)
	}
	if got := defaultFor(t, "arm64", nil).Architectures; !reflect.DeepEqual(got, []specs.Arch{specs.ArchAARCH64, specs.ArchARM}) {
		t.Errorf("arm64: %v", got)
	}
	// epoll_ctl_old is amd64's, skipped in the x86 section, where 214 is setgid32.
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"epoll_ctl_old"}, Action: specs.ActAllow}}}
	prog := mustCompile(t, p, targetAMD64)
	if got, _ := run(prog, seccompData{nr: 214, arch: auditArchX86_64}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("epoll_ctl_old on x86_64: %#x", got)
	}
	if got, _ := run(prog, seccompData{nr: 214, arch: auditArchI386}); got != unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM) {
		t.Errorf("setgid32 on x86: %#x", got)
	}
}

// TestOperators compares each operator at the edges of both 32-bit halves.
func TestOperators(t *testing.T) {
	values := []uint64{0, 1, 0xfffffffe, 0xffffffff, 0x100000000, 0x100000001, 0x1ffffffff,
		0xfffffffe00000000, 0xffffffff00000000, 0xfffffffffffffffe, 0xffffffffffffffff, 0x123456789}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
		specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	errno := uint(42)
	for _, op := range ops {
		for _, v := range values {
			for _, v2 := range []uint64{0, 1, 0xffffffff, 0x100000000, 0x123456789} {
				if op != specs.OpMaskedEqual && v2 != 0 {
					continue
				}
				p := &specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Architectures: []specs.Arch{specs.ArchX86},
					Syscalls: []specs.LinuxSyscall{{
						Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: &errno,
						Args: []specs.LinuxSeccompArg{{Index: 1, Op: op, Value: v, ValueTwo: v2}},
					}},
				}
				prog := mustCompile(t, p, targetAMD64)
				abis, _ := abisFor(p.Architectures, targetAMD64)
				lseek, _ := lookup("lseek")
				for _, ab := range abis {
					nr := uint32(lseek.nr[ab.column])
					for _, arg := range values {
						d := seccompData{nr: nr, arch: ab.audit, args: [6]uint64{0, arg}}
						got, _ := run(prog, d)
						if want := expect(t, p, abis, d); got != want {
							t.Errorf("%s %s %#x (%#x), arg %#x: got %#x, want %#x", ab.spec, op, v, v2, arg, got, want)
						}
					}
				}
			}
		}
	}
}

func TestRandomProfiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	actions := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess,
		specs.ActTrap, specs.ActLog, specs.ActKillThread, specs.ActTrace}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
		specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	names := []string{"read", "write", "openat", "close", "socket", "clone", "lseek", "mmap", "ioctl", "kill"}
	for round := 0; round < 40; round++ {
		p := &specs.LinuxSeccomp{
			DefaultAction: actions[rng.IntN(len(actions))],
			Architectures: []specs.Arch{specs.ArchX86, specs.ArchARM},
		}
		for range rng.IntN(12) {
			errno := uint(rng.IntN(100))
			s := specs.LinuxSyscall{Names: []string{names[rng.IntN(len(names))]}, Action: actions[rng.IntN(len(actions))]}
			if s.Action == specs.ActErrno {
				s.ErrnoRet = &errno
			}
			for range rng.IntN(4) {
				s.Args = append(s.Args, specs.LinuxSeccompArg{
					Index: uint(rng.IntN(3)), Op: ops[rng.IntN(len(ops))],
					Value: interesting[rng.IntN(len(interesting))], ValueTwo: interesting[rng.IntN(len(interesting))] & 0xff,
				})
			}
			p.Syscalls = append(p.Syscalls, s)
		}
		for _, tg := range []target{targetAMD64, targetARM64} {
			prog, err := compile(p, tg)
			if err != nil {
				if strings.Contains(err.Error(), "two rules without args") {
					continue
				}
				t.Fatal(err)
			}
			if err := verify(prog); err != nil {
				t.Fatal(err)
			}
			checkAll(t, p, tg, prog, 2)
		}
	}
}

// TestFarJumps makes a program whose jumps need trampolines.
func TestFarJumps(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	for i, e := range syscallTable {
		if e.nr[colAMD64] < 0 || i%3 == 0 {
			continue
		}
		errno := uint(i % 50)
		var args []specs.LinuxSeccompArg
		if i%2 == 0 {
			args = []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpNotEqual, Value: uint64(i) << 31}}
		}
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{e.name}, Action: specs.ActErrno, ErrnoRet: &errno, Args: args})
	}
	prog := mustCompile(t, p, targetAMD64)
	if !strings.Contains(disasm(prog), "ja ") {
		t.Fatalf("no trampoline in %d instructions", len(prog))
	}
	checkAll(t, p, targetAMD64, prog, 4)
}

func TestCompileErrors(t *testing.T) {
	errno := uint(5000)
	for _, tc := range []struct {
		want string
		p    specs.LinuxSeccomp
	}{
		{`unknown syscall "getpdi"`, specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid", "getpdi"}, Action: specs.ActAllow}}}},
		{"defaultAction: no action", specs.LinuxSeccomp{}},
		{`unknown action "SCMP_ACT_MAYBE"`, specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"}},
		{"not supported", specs.LinuxSeccomp{DefaultAction: specs.ActNotify}},
		{"errnoRet 5000", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &errno}},
		{`unknown operator "SCMP_CMP_XX"`, specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_XX"}}}}}},
		{"argument index 6", specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}},
		{`"read" has two rules without args`, specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}, {Names: []string{"read"}, Action: specs.ActLog}}}},
		{`unknown architecture "SCMP_ARCH_Z80"`, specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}},
	} {
		_, err := compile(&tc.p, targetAMD64)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error with %q", err, tc.want)
		}
	}
	// Names of other architectures are skipped.
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"s390_pci_mmio_read", "_llseek", "getpid"}, Action: specs.ActAllow}}}
	prog := mustCompile(t, p, targetAMD64)
	if got, _ := run(prog, seccompData{nr: unix.SYS_GETPID, arch: auditArchX86_64}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("getpid: %#x", got)
	}
}

func BenchmarkCompileDefault(b *testing.B) {
	p := Default(DockerDefaultCaps())
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDefaultAndCompile(b *testing.B) {
	for b.Loop() {
		if _, err := Compile(Default(DockerDefaultCaps())); err != nil {
			b.Fatal(err)
		}
	}
}
