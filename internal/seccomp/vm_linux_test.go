package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data, as the kernel hands it to a filter.
type seccompData struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

func (d seccompData) word(off uint32) uint32 {
	var b [64]byte
	binary.LittleEndian.PutUint32(b[0:], d.nr)
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return binary.LittleEndian.Uint32(b[off:])
}

// verify checks prog as the kernel would before loading it: a known length,
// only the instructions seccomp accepts, aligned loads inside seccomp_data,
// jumps that land inside the program, and no way to run off its end.
func verify(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > unix.BPF_MAXINSNS {
		return fmt.Errorf("%d instructions", len(prog))
	}
	for pc, in := range prog {
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || in.K >= 64 {
				return fmt.Errorf("%d: load at %d", pc, in.K)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_RET | unix.BPF_K:
		case unix.BPF_JMP | unix.BPF_JA:
			if uint64(pc)+1+uint64(in.K) >= uint64(len(prog)) {
				return fmt.Errorf("%d: ja past the end", pc)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			if pc+1+int(max(in.Jt, in.Jf)) >= len(prog) {
				return fmt.Errorf("%d: jump past the end", pc)
			}
		default:
			return fmt.Errorf("%d: opcode %#x", pc, in.Code)
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		return fmt.Errorf("does not end with ret")
	}
	return nil
}

// run executes a verified prog on d and returns its verdict and how many
// instructions it took.
func run(prog []unix.SockFilter, d seccompData) (ret uint32, steps int) {
	var a uint32
	for pc := 0; ; pc++ {
		in := prog[pc]
		steps++
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a = d.word(in.K)
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			pc += int(pick(a == in.K, in.Jt, in.Jf))
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			pc += int(pick(a > in.K, in.Jt, in.Jf))
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			pc += int(pick(a >= in.K, in.Jt, in.Jf))
		case unix.BPF_RET | unix.BPF_K:
			return in.K, steps
		}
	}
}

func pick(c bool, t, f uint8) uint8 {
	if c {
		return t
	}
	return f
}
