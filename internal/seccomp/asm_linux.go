package seccomp

import "golang.org/x/sys/unix"

// label names an instruction by its distance from the end of the program.
//
// The assembler builds programs backwards, last instruction first: every
// jump in classic BPF goes forward, so by the time a jump is emitted its
// targets exist and their offsets are known. Conditional jumps reach at most
// 255 instructions; a farther target gets a trampoline (JA, or a copy of the
// RET it points at) placed right after the jump.
type label int

type assembler struct {
	rev  []unix.SockFilter // the program, reversed
	rets map[uint32]label  // the nearest RET of each value
}

func newAssembler() *assembler {
	return &assembler{rets: map[uint32]label{}}
}

// next is the label the next emitted instruction gets.
func (a *assembler) next() label { return label(len(a.rev)) }

func (a *assembler) emit(f unix.SockFilter) label {
	a.rev = append(a.rev, f)
	return label(len(a.rev) - 1)
}

// reaches tells whether a conditional jump emitted next can reach l.
func (a *assembler) reaches(l label) bool { return a.next()-l-1 <= 255 }

// ret is a RET k, reusing one that a jump emitted next can reach.
func (a *assembler) ret(k uint32) label {
	if l, ok := a.rets[k]; ok && a.reaches(l) {
		return l
	}
	l := a.emit(unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k})
	a.rets[k] = l
	return l
}

// fallInto makes sure that control falling through the instruction emitted
// next arrives at l.
func (a *assembler) fallInto(l label) {
	if l != a.next()-1 {
		a.emit(unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(a.next() - l - 1)})
	}
}

// load emits A = seccomp_data[off], continuing at then.
func (a *assembler) load(off uint32, then label) label {
	a.fallInto(then)
	return a.emit(unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off})
}

// and emits A &= k, continuing at then.
func (a *assembler) and(k uint32, then label) label {
	a.fallInto(then)
	return a.emit(unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: k})
}

// jump emits "if A op k goto jt else goto jf" (op: BPF_JEQ, BPF_JGT, BPF_JGE).
func (a *assembler) jump(op uint16, k uint32, jt, jf label) label {
	if jt == jf {
		return jt // nothing to decide
	}
	for {
		switch {
		case !a.reaches(jt):
			jt = a.trampoline(jt)
		case !a.reaches(jf):
			jf = a.trampoline(jf)
		default:
			n := a.next()
			return a.emit(unix.SockFilter{
				Code: unix.BPF_JMP | op | unix.BPF_K,
				Jt:   uint8(n - jt - 1),
				Jf:   uint8(n - jf - 1),
				K:    k,
			})
		}
	}
}

// trampoline is an instruction next to the jump being emitted that gets to l:
// a copy of l if l is a RET, else a JA (which reaches anywhere).
func (a *assembler) trampoline(l label) label {
	if in := a.rev[l]; in.Code == unix.BPF_RET|unix.BPF_K {
		return a.ret(in.K)
	}
	return a.emit(unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(a.next() - l - 1)})
}

// program returns the instructions in execution order, starting at entry,
// which must be the last instruction emitted.
func (a *assembler) program(entry label) []unix.SockFilter {
	a.fallInto(entry) // entry is reached by falling into it from "before the start"
	prog := make([]unix.SockFilter, len(a.rev))
	for i, in := range a.rev {
		prog[len(a.rev)-1-i] = in
	}
	return prog
}
