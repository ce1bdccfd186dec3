package devcgroup

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// decode is the inverse of program.encode.
func decode(prog []byte) ([]insn, error) {
	if len(prog) == 0 || len(prog)%insnSize != 0 {
		return nil, fmt.Errorf("program of %d bytes", len(prog))
	}
	littleEndian := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	var out []insn
	for b := prog; len(b) > 0; b = b[insnSize:] {
		in := insn{
			op:  b[0],
			off: int16(binary.NativeEndian.Uint16(b[2:])),
			imm: int32(binary.NativeEndian.Uint32(b[4:])),
		}
		in.dst, in.src = b[1]&0xf, b[1]>>4
		if !littleEndian {
			in.dst, in.src = in.src, in.dst
		}
		out = append(out, in)
	}
	return out, nil
}

// execute runs prog on one device access the way the kernel would, for the
// opcodes Compile emits, and returns r0. Like the verifier it refuses
// reading a register nobody wrote, loading through anything but the
// context, and jumping backwards or off the end.
func execute(prog []insn, typ, major, minor, access uint32) (uint64, error) {
	ctx := [3]uint32{access<<16 | typ, major, minor}
	var reg [11]uint64
	written := [11]bool{regCtx: true}
	isCtx := [11]bool{regCtx: true}
	for pc := 0; ; {
		if pc >= len(prog) {
			return 0, fmt.Errorf("pc %d: past the end", pc)
		}
		in := prog[pc]
		if in.dst > 9 || in.src > 9 {
			return 0, fmt.Errorf("pc %d: register r%d/r%d", pc, in.dst, in.src)
		}
		reads := []uint8{in.dst}
		switch in.op {
		case opOr:
			reads = []uint8{in.dst, in.src}
		case opLoad, opMovReg:
			reads = []uint8{in.src}
		case opMov:
			reads = nil
		case opExit:
			reads = []uint8{regRet}
		}
		for _, r := range reads {
			if !written[r] {
				return 0, fmt.Errorf("pc %d: r%d read before written", pc, r)
			}
		}
		if in.off < 0 {
			return 0, fmt.Errorf("pc %d: backward jump", pc)
		}
		pc++

		d := &reg[in.dst]
		switch in.op {
		case opLoad:
			if !isCtx[in.src] || in.off%4 != 0 || int(in.off)/4 >= len(ctx) {
				return 0, fmt.Errorf("pc %d: load from r%d%+d", pc-1, in.src, in.off)
			}
			*d = uint64(ctx[in.off/4])
		case opMovReg:
			*d = reg[in.src]
		case opMov:
			*d = uint64(int64(in.imm))
		case opRsh:
			*d >>= uint(in.imm)
		case opAnd:
			*d &= uint64(int64(in.imm))
		case opXor:
			*d ^= uint64(int64(in.imm))
		case opOr:
			*d |= reg[in.src]
		case opJeq:
			if *d == uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opJne:
			if *d != uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opJset:
			if *d&uint64(int64(in.imm)) != 0 {
				pc += int(in.off)
			}
		case opExit:
			return reg[regRet], nil
		default:
			return 0, fmt.Errorf("pc %d: opcode %#x", pc-1, in.op)
		}
		if in.op&0x07 != unix.BPF_JMP { // not a jump: wrote dst
			written[in.dst] = true
			isCtx[in.dst] = in.op == opMovReg && isCtx[in.src]
		}
	}
}

// disasm prints prog one instruction a line with absolute jump targets,
// for golden tests and failures.
func disasm(prog []insn) string {
	var b strings.Builder
	for pc, in := range prog {
		fmt.Fprintf(&b, "%3d  ", pc)
		to := pc + 1 + int(in.off)
		switch in.op {
		case opLoad:
			fmt.Fprintf(&b, "r%d = *(u32 *)(r%d + %d)\n", in.dst, in.src, in.off)
		case opMovReg:
			fmt.Fprintf(&b, "r%d = r%d\n", in.dst, in.src)
		case opMov:
			fmt.Fprintf(&b, "r%d = %d\n", in.dst, in.imm)
		case opRsh:
			fmt.Fprintf(&b, "r%d >>= %d\n", in.dst, in.imm)
		case opAnd:
			fmt.Fprintf(&b, "r%d &= %#x\n", in.dst, in.imm)
		case opXor:
			fmt.Fprintf(&b, "r%d ^= %d\n", in.dst, in.imm)
		case opOr:
			fmt.Fprintf(&b, "r%d |= r%d\n", in.dst, in.src)
		case opJeq:
			fmt.Fprintf(&b, "if r%d == %d goto %d\n", in.dst, in.imm, to)
		case opJne:
			fmt.Fprintf(&b, "if r%d != %d goto %d\n", in.dst, in.imm, to)
		case opJset:
			fmt.Fprintf(&b, "if r%d & %#x goto %d\n", in.dst, in.imm, to)
		case opExit:
			b.WriteString("exit\n")
		default:
			fmt.Fprintf(&b, "? %#v\n", in)
		}
	}
	return b.String()
}
