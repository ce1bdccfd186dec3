package seccomp

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data (linux/seccomp.h); args are little-endian.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Compile turns a runtime-spec profile into a classic BPF program for the
// architecture kiln runs on (amd64 or arm64).
//
// The program checks seccomp_data.arch first. The native ABI is always
// filtered; the 32-bit compat ABI (x86 on amd64, arm on arm64) is filtered
// too if p.Architectures lists it. Every other arch, and x32 (syscall numbers
// with bit 30 set on x86_64), is killed with SECCOMP_RET_KILL_PROCESS.
//
// Then it finds the syscall number by binary search over ranges of numbers
// that share an outcome, and runs the argument checks of the few syscalls that
// have them.
//
// Rules apply as follows, for each syscall: rules with args, in profile
// order, the first whose conditions all hold deciding; then the rule without
// args, if any; then p.DefaultAction. A rule's args are ANDed, unless two of
// them test the same argument: then each is a rule of its own (ORed), as runc
// does. Two rules without args that disagree are an error. Arguments are
// compared as 64-bit values; on the 32-bit ABIs only the low word is read and
// the high word counts as 0.
//
// Numbers above the highest one kiln's table knows (syscalls newer than
// this build) return ENOSYS when the default action blocks (ERRNO, KILL*,
// TRAP), as runc does, so that libc falls back instead of failing.
//
// A name that exists on some Linux architecture but not this one is skipped;
// a name no architecture has is an error.
func Compile(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	t, ok := nativeTarget()
	if !ok {
		return nil, fmt.Errorf("seccomp: no syscall numbers for %s", runtime.GOARCH)
	}
	return compile(p, t)
}

// rule is one decision for one syscall: conds all hold -> ret.
type rule struct {
	conds []specs.LinuxSeccompArg
	ret   uint32
}

// profileRule is a rule with the syscalls it names.
type profileRule struct {
	syscalls []*syscallEntry
	rule
}

// syscallRules is everything a profile says about one syscall number.
type syscallRules struct {
	nr          uint32
	conditional []rule
	fallback    uint32
	explicit    bool // fallback comes from a rule without args, not the default
}

func compile(p *specs.LinuxSeccomp, t target) ([]unix.SockFilter, error) {
	if p == nil {
		return nil, errors.New("seccomp: no profile")
	}
	defaultRet, err := actionRet(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: defaultAction: %w", err)
	}
	rules, err := profileRules(p)
	if err != nil {
		return nil, err
	}
	abis, err := abisFor(p.Architectures, t)
	if err != nil {
		return nil, err
	}

	a := newAssembler()
	entries := make([]label, len(abis))
	for i := len(abis) - 1; i >= 0; i-- { // native last: nearest the arch check
		if entries[i], err = section(a, abis[i], rules, defaultRet); err != nil {
			return nil, err
		}
	}
	next := a.ret(unix.SECCOMP_RET_KILL_PROCESS) // an arch we do not filter
	for i := len(abis) - 1; i >= 0; i-- {
		next = a.jump(unix.BPF_JEQ, abis[i].audit, entries[i], next)
	}
	prog := a.program(a.load(offArch, next))
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: program has %d instructions, more than the kernel's %d", len(prog), unix.BPF_MAXINSNS)
	}
	return prog, nil
}

// abisFor lists the ABIs to filter: native first, then the listed compat ones.
func abisFor(archs []specs.Arch, t target) ([]abi, error) {
	abis := []abi{t.native}
	for _, arch := range archs {
		if !knownArch(arch) {
			return nil, fmt.Errorf("seccomp: unknown architecture %q", arch)
		}
	}
	for _, c := range t.compat {
		if slices.Contains(archs, c.spec) {
			abis = append(abis, c)
		}
	}
	return abis, nil
}

func knownArch(a specs.Arch) bool {
	switch a {
	case specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL,
		specs.ArchMIPSEL64, specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64,
		specs.ArchPPC64LE, specs.ArchS390, specs.ArchS390X, specs.ArchPARISC,
		specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64:
		return true
	}
	return false
}

// profileRules checks p's rules and resolves their names.
func profileRules(p *specs.LinuxSeccomp) ([]profileRule, error) {
	var out []profileRule
	for i, s := range p.Syscalls {
		where := fmt.Sprintf("seccomp: syscalls[%d]", i)
		if len(s.Names) > 0 {
			where = fmt.Sprintf("%s (%s)", where, s.Names[0])
		}
		ret, err := actionRet(s.Action, s.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if len(s.Names) == 0 {
			return nil, fmt.Errorf("%s: no names", where)
		}
		entries := make([]*syscallEntry, len(s.Names))
		for j, name := range s.Names {
			e, ok := lookup(name)
			if !ok {
				return nil, fmt.Errorf("%s: unknown syscall %q", where, name)
			}
			entries[j] = e
		}
		var seen [6]bool
		sameArgTwice := false
		for _, c := range s.Args {
			if c.Index >= 6 {
				return nil, fmt.Errorf("%s: argument index %d: a syscall has 6 arguments", where, c.Index)
			}
			switch c.Op {
			case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
				specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
			default:
				return nil, fmt.Errorf("%s: unknown operator %q", where, c.Op)
			}
			sameArgTwice = sameArgTwice || seen[c.Index]
			seen[c.Index] = true
		}
		if sameArgTwice {
			for _, c := range s.Args {
				out = append(out, profileRule{entries, rule{[]specs.LinuxSeccompArg{c}, ret}})
			}
			continue
		}
		out = append(out, profileRule{entries, rule{s.Args, ret}})
	}
	return out, nil
}

// actionRet is the SECCOMP_RET_* value of an action.
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint(unix.EPERM)
	if errnoRet != nil {
		if act != specs.ActErrno && act != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet given for %s", act)
		}
		if *errnoRet > 4095 { // MAX_ERRNO
			return 0, fmt.Errorf("errnoRet %d is not an errno", *errnoRet)
		}
		data = *errnoRet
	}
	switch act {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(data), nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(data), nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("%s is not supported (no seccomp agent)", act)
	case "":
		return 0, errors.New("no action")
	}
	return 0, fmt.Errorf("unknown action %q", act)
}

// blocks tells whether a RET value stops the syscall from running.
func blocks(ret uint32) bool {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_TRACE, unix.SECCOMP_RET_USER_NOTIF:
		return false
	}
	return true
}

// section emits the filter for one ABI and returns its first instruction.
func section(a *assembler, ab abi, rules []profileRule, defaultRet uint32) (label, error) {
	bySyscall, err := gather(ab, rules, defaultRet)
	if err != nil {
		return 0, err
	}
	ivs := intervals(ab, bySyscall, defaultRet)
	if len(ivs) == 1 && ivs[0].rules == nil {
		return a.ret(ivs[0].ret), nil
	}
	return a.load(offNr, tree(a, ab, ivs)), nil
}

// gather groups the rules by the syscall numbers they have on ab, in
// number order, keeping profile order within each.
func gather(ab abi, rules []profileRule, defaultRet uint32) ([]syscallRules, error) {
	hits := sortedHits(ab, rules)
	out := make([]syscallRules, 0, len(hits))
	for i, h := range hits {
		if i == 0 || hits[i-1].nr != h.nr {
			out = append(out, syscallRules{nr: h.nr, fallback: defaultRet})
		}
		s, r := &out[len(out)-1], rules[h.rule].rule
		if len(r.conds) > 0 {
			s.conditional = append(s.conditional, r)
			continue
		}
		if s.explicit && s.fallback != r.ret {
			return nil, fmt.Errorf("seccomp: syscall %q has two rules without args and different actions", h.entry.name)
		}
		s.fallback, s.explicit = r.ret, true
	}
	for i := range out {
		// Rules with args at the end that decide as the fallback would change nothing.
		s := &out[i]
		for n := len(s.conditional); n > 0 && s.conditional[n-1].ret == s.fallback; n-- {
			s.conditional = s.conditional[:n-1]
		}
	}
	return out, nil
}

// hit is a syscall named by a rule.
type hit struct {
	nr    uint32
	rule  int
	entry *syscallEntry
}

// sortedHits lists every (syscall, rule) of rules on ab, by syscall number
// and then rule order: a counting sort, as Compile is on the container start
// path and nearly all numbers are small.
func sortedHits(ab abi, rules []profileRule) []hit {
	const dense = 1024 // above: only ARM's private calls
	var start [dense + 1]int
	n := 0
	for _, r := range rules {
		n += len(r.syscalls)
	}
	near, far := make([]hit, 0, n), []hit(nil)
	for i, r := range rules {
		for _, e := range r.syscalls {
			switch nr := e.nr[ab.column]; {
			case nr < 0: // not on this ABI
			case nr < dense:
				start[nr+1]++
				near = append(near, hit{uint32(nr), i, e})
			default:
				far = append(far, hit{uint32(nr), i, e})
			}
		}
	}
	for i := 1; i <= dense; i++ {
		start[i] += start[i-1]
	}
	sorted := make([]hit, len(near), len(near)+len(far))
	for _, h := range near {
		sorted[start[h.nr]] = h
		start[h.nr]++
	}
	slices.SortStableFunc(far, func(x, y hit) int { return cmp.Compare(x.nr, y.nr) })
	return append(sorted, far...)
}

// interval is a run of syscall numbers, from lo up to the next interval's
// lo, with one outcome: ret, or the rules of the single syscall lo.
type interval struct {
	lo    uint32
	ret   uint32
	rules *syscallRules
}

// intervals partitions all 2^32 syscall numbers by outcome.
func intervals(ab abi, bySyscall []syscallRules, defaultRet uint32) []interval {
	ivs := make([]interval, 0, 2*len(bySyscall)+4)
	add := func(iv interval) {
		if n := len(ivs); n > 0 && ivs[n-1].lo == iv.lo {
			ivs = ivs[:n-1] // an empty run
		}
		if n := len(ivs); n > 0 && iv.rules == nil && ivs[n-1].rules == nil && ivs[n-1].ret == iv.ret {
			return // same outcome as the run before
		}
		ivs = append(ivs, iv)
	}
	add(interval{lo: 0, ret: defaultRet})
	for i := range bySyscall {
		s := &bySyscall[i]
		if len(s.conditional) > 0 {
			add(interval{lo: s.nr, rules: s})
		} else {
			add(interval{lo: s.nr, ret: s.fallback})
		}
		add(interval{lo: s.nr + 1, ret: defaultRet}) // nr < 2^31: no overflow
	}

	tail := defaultRet
	if blocks(defaultRet) {
		tail = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	}
	add(interval{lo: maxNr(ab) + 1, ret: tail})
	if ab.x32Bit != 0 {
		add(interval{lo: ab.x32Bit, ret: unix.SECCOMP_RET_KILL_PROCESS})
		// -1 is not x32: it is what a tracer sets to skip a syscall.
		add(interval{lo: ^uint32(0), ret: tail})
	}
	return ivs
}

// maxNr is the highest syscall number the table has for ab.
func maxNr(ab abi) uint32 {
	var m int32
	for i := range syscallTable {
		m = max(m, syscallTable[i].nr[ab.column])
	}
	return uint32(m)
}

// tree emits a binary search over ivs (sorted by lo, the first at 0), with
// the syscall number in A.
func tree(a *assembler, ab abi, ivs []interval) label {
	if len(ivs) == 1 {
		if ivs[0].rules == nil {
			return a.ret(ivs[0].ret)
		}
		return chain(a, ab, ivs[0].rules)
	}
	mid := len(ivs) / 2
	above := tree(a, ab, ivs[mid:])
	below := tree(a, ab, ivs[:mid])
	return a.jump(unix.BPF_JGE, ivs[mid].lo, above, below)
}

// chain emits one syscall's rules: each rule in order, then the fallback.
func chain(a *assembler, ab abi, s *syscallRules) label {
	next := a.ret(s.fallback)
	for i := len(s.conditional) - 1; i >= 0; i-- {
		r := s.conditional[i]
		pass := a.ret(r.ret)
		for j := len(r.conds) - 1; j >= 0; j-- {
			pass = cond(a, ab, r.conds[j], pass, next)
		}
		next = pass
	}
	return next
}

// cond emits one 64-bit argument comparison, as a comparison of the high
// words and, if they are equal, of the low words. On a 32-bit ABI the high
// word is 0 and that half is decided here, at compile time.
func cond(a *assembler, ab abi, c specs.LinuxSeccompArg, pass, fail label) label {
	lo := offArgs + 8*uint32(c.Index)
	hi := lo + 4
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)

	if c.Op == specs.OpMaskedEqual {
		return maskedEqual(a, ab, lo, c, pass, fail)
	}

	// The outcome if the high words differ (arg below or above value), and
	// the test of the low words if they are equal.
	var below, above label
	var lowOp uint16
	var lowTrue, lowFalse label
	switch c.Op {
	case specs.OpEqualTo:
		below, above, lowOp, lowTrue, lowFalse = fail, fail, unix.BPF_JEQ, pass, fail
	case specs.OpNotEqual:
		below, above, lowOp, lowTrue, lowFalse = pass, pass, unix.BPF_JEQ, fail, pass
	case specs.OpGreaterThan:
		below, above, lowOp, lowTrue, lowFalse = fail, pass, unix.BPF_JGT, pass, fail
	case specs.OpGreaterEqual:
		below, above, lowOp, lowTrue, lowFalse = fail, pass, unix.BPF_JGE, pass, fail
	case specs.OpLessThan:
		below, above, lowOp, lowTrue, lowFalse = pass, fail, unix.BPF_JGE, fail, pass
	case specs.OpLessEqual:
		below, above, lowOp, lowTrue, lowFalse = pass, fail, unix.BPF_JGT, fail, pass
	}
	if ab.bits32 && vhi > 0 {
		return below
	}
	low := a.jump(lowOp, vlo, lowTrue, lowFalse)
	if low != pass && low != fail {
		low = a.load(lo, low)
	}
	if ab.bits32 {
		return low
	}
	var high label
	switch {
	case vhi == 0: // arg's high word cannot be below
		high = a.jump(unix.BPF_JGT, 0, above, low)
	case vhi == ^uint32(0) || below == above: // cannot be above, or no matter
		high = a.jump(unix.BPF_JEQ, vhi, low, below)
	default:
		high = a.jump(unix.BPF_JGT, vhi, above, a.jump(unix.BPF_JEQ, vhi, low, below))
	}
	if high == pass || high == fail || high == low {
		return high
	}
	return a.load(hi, high)
}

// maskedEqual emits (arg & c.Value) == c.ValueTwo.
func maskedEqual(a *assembler, ab abi, lo uint32, c specs.LinuxSeccompArg, pass, fail label) label {
	mlo, mhi := uint32(c.Value), uint32(c.Value>>32)
	wlo, whi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
	if wlo&^mlo != 0 || whi&^mhi != 0 {
		return fail // wants bits the mask clears
	}
	low := pass
	if mlo != 0 {
		low = a.load(lo, a.and(mlo, a.jump(unix.BPF_JEQ, wlo, pass, fail)))
	}
	if mhi == 0 || ab.bits32 { // the high word is masked out, or 0
		if ab.bits32 && whi != 0 {
			return fail
		}
		return low
	}
	return a.load(lo+4, a.and(mhi, a.jump(unix.BPF_JEQ, whi, low, fail)))
}
