package devcgroup

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The opcodes the program is made of (linux/bpf.h). Every one works on
// 64-bit registers and 32-bit immediates, so the program loads on any
// kernel with BPF_PROG_TYPE_CGROUP_DEVICE (4.15).
const (
	opLoad   = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W   // dst = *(u32 *)(src + off)
	opMovReg = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_X // dst = src
	opMov    = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K // dst = imm
	opRsh    = unix.BPF_ALU64 | unix.BPF_RSH | unix.BPF_K // dst >>= imm
	opAnd    = unix.BPF_ALU64 | unix.BPF_AND | unix.BPF_K // dst &= imm
	opXor    = unix.BPF_ALU64 | unix.BPF_XOR | unix.BPF_K // dst ^= imm
	opOr     = unix.BPF_ALU64 | unix.BPF_OR | unix.BPF_X  // dst |= src
	opJeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K   // if dst == imm: pc += off
	opJne    = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K   // if dst != imm: pc += off
	opJset   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K  // if dst & imm != 0: pc += off
	opExit   = unix.BPF_JMP | unix.BPF_EXIT               // return r0
)

// Registers. The kernel passes the context in r1 and takes the verdict from r0.
const (
	regRet    = 0
	regCtx    = 1
	regType   = 2 // BPF_DEVCG_DEV_BLOCK or BPF_DEVCG_DEV_CHAR
	regAccess = 3 // the requested access bits no rule has allowed yet
	regMajor  = 4
	regMinor  = 5
	regDiff   = 6 // zero when the device is the one a rule names
	regTmp    = 7
)

// Offsets in struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
// where access_type is access<<16 | type.
const (
	offAccessType = 0
	offMajor      = 4
	offMinor      = 8
)

const (
	accessAll = unix.BPF_DEVCG_ACC_MKNOD | unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE
	wildcard  = -1 // a rule's type, major or minor that matches every value
	insnSize  = 8  // sizeof(struct bpf_insn)
)

// Compile turns runtime-spec device rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program: struct bpf_insn in this machine's byte order, ready for
// BPF_PROG_LOAD. The same rules always give the same bytes.
//
// Rules are read in order and the last match wins, bit by bit: for each
// access bit requested (r, w, m), the last rule that matches the device and
// names that bit decides, and a bit no rule names is denied. A rule's Type
// "a" or "" matches block and character devices, a nil or -1 Major or Minor
// matches every number, and an empty Access means "rwm" (as kiln's v1 path
// writes it). A request with no access bits (the kernel makes one for
// exec) is allowed when some allow rule matches the device, as on v1. This
// is the v1 devices controller's outcome for the lists runtimes write,
// except that on a deny-all list a deny here also takes its bits from an
// earlier wildcard allow ("allow c *:* rwm" then "deny c 1:3 w" denies
// writing 1:3), where v1 removes only an allow of exactly that device:
// stricter, never looser.
//
// The program walks the rules from last to first, clearing the bits each
// matching allow rule grants and allowing once none is left, and denying at
// the first matching deny rule that names a bit still wanted. Deny rules
// before the first allow rule only repeat the default and are left out.
func Compile(rules []specs.LinuxDeviceCgroup) ([]byte, error) {
	parsed := make([]rule, 0, len(rules))
	for i, r := range rules {
		pr, err := parseRule(r)
		if err != nil {
			return nil, fmt.Errorf("device rule %d (%s): %w", i, ruleString(r), err)
		}
		parsed = append(parsed, pr)
	}
	if first := slices.IndexFunc(parsed, func(r rule) bool { return r.allow }); first >= 0 {
		parsed = parsed[first:]
	} else {
		parsed = nil
	}

	var p program
	p.prologue()
	for _, r := range slices.Backward(parsed) {
		p.rule(r)
	}
	p.epilogue(len(parsed) > 0)
	if p.err != nil {
		return nil, fmt.Errorf("device rules: %w", p.err)
	}
	return p.encode(), nil
}

// rule is a parsed specs.LinuxDeviceCgroup.
type rule struct {
	allow        bool
	typ          int32 // BPF_DEVCG_DEV_*, or wildcard
	major, minor int32 // or wildcard
	access       int32 // BPF_DEVCG_ACC_* bits
}

func parseRule(r specs.LinuxDeviceCgroup) (rule, error) {
	out := rule{allow: r.Allow}
	switch r.Type {
	case "", "a":
		out.typ = wildcard
	case "b":
		out.typ = unix.BPF_DEVCG_DEV_BLOCK
	case "c":
		out.typ = unix.BPF_DEVCG_DEV_CHAR
	default:
		return rule{}, fmt.Errorf("type %q: want a, b or c", r.Type)
	}
	var err error
	if out.major, err = deviceNumber(r.Major); err != nil {
		return rule{}, fmt.Errorf("major: %w", err)
	}
	if out.minor, err = deviceNumber(r.Minor); err != nil {
		return rule{}, fmt.Errorf("minor: %w", err)
	}
	if r.Access == "" {
		out.access = accessAll
	}
	for _, c := range r.Access {
		switch c {
		case 'r':
			out.access |= unix.BPF_DEVCG_ACC_READ
		case 'w':
			out.access |= unix.BPF_DEVCG_ACC_WRITE
		case 'm':
			out.access |= unix.BPF_DEVCG_ACC_MKNOD
		default:
			return rule{}, fmt.Errorf("access %q: want letters r, w, m", r.Access)
		}
	}
	return out, nil
}

// deviceNumber is n as the program compares it: a sign-extended 32-bit
// immediate, which can hold every major and minor Linux has (12 and 20 bits).
func deviceNumber(n *int64) (int32, error) {
	switch {
	case n == nil || *n == -1:
		return wildcard, nil
	case *n < 0 || *n > math.MaxInt32:
		return 0, fmt.Errorf("%d out of range", *n)
	}
	return int32(*n), nil
}

// ruleString is r in the v1 devices.allow notation, for error messages.
func ruleString(r specs.LinuxDeviceCgroup) string {
	num := func(n *int64) string {
		if n == nil || *n == -1 {
			return "*"
		}
		return strconv.FormatInt(*n, 10)
	}
	verb, typ := "deny", r.Type
	if r.Allow {
		verb = "allow"
	}
	if typ == "" {
		typ = "a"
	}
	return fmt.Sprintf("%s %s %s:%s %s", verb, typ, num(r.Major), num(r.Minor), r.Access)
}

// target is where a jump goes, resolved once the place exists.
type target uint8

const (
	toNone  target = iota
	toNext         // the next rule (the end of the current one)
	toDeny         // the r0 = 0 exit
	toAllow        // the r0 = 1 exit
)

type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
	to       target // for a jump: sets off when resolved
}

// program assembles straight-line code whose jumps all go forward.
type program struct {
	insns []insn
	err   error
}

func (p *program) emit(in insn) { p.insns = append(p.insns, in) }

func (p *program) jump(op, reg uint8, imm int32, to target) {
	p.emit(insn{op: op, dst: reg, imm: imm, to: to})
}

// land points every unresolved jump to t at the next instruction.
func (p *program) land(t target) {
	for i := range p.insns {
		if p.insns[i].to != t {
			continue
		}
		off := len(p.insns) - i - 1
		if off > math.MaxInt16 && p.err == nil {
			p.err = fmt.Errorf("program too long (%d instructions)", len(p.insns))
		}
		p.insns[i].off, p.insns[i].to = int16(off), toNone
	}
}

// prologue unpacks the context into registers.
func (p *program) prologue() {
	p.emit(insn{op: opLoad, dst: regType, src: regCtx, off: offAccessType})
	p.emit(insn{op: opMovReg, dst: regAccess, src: regType})
	p.emit(insn{op: opRsh, dst: regAccess, imm: 16})
	p.emit(insn{op: opAnd, dst: regType, imm: 0xffff})
	p.emit(insn{op: opLoad, dst: regMajor, src: regCtx, off: offMajor})
	p.emit(insn{op: opLoad, dst: regMinor, src: regCtx, off: offMinor})
}

// rule emits one rule: skip to the next unless the device matches, then
// grant or refuse its access bits.
//
// The device test takes one branch, on diff = (type^T) | (major^M) |
// (minor^N) over the fields the rule names, not a branch per field. A
// branch on a field would tell the verifier its value on the path that
// falls through, and with it the outcome of later tests of that field; the
// verifier then walks the later rules once per value it knows, which for
// Docker's list doubles its work, and verifying is most of Attach's time.
func (p *program) rule(r rule) {
	fields := 0
	for _, f := range []struct {
		reg  uint8
		want int32
	}{{regType, r.typ}, {regMajor, r.major}, {regMinor, r.minor}} {
		if f.want == wildcard {
			continue
		}
		if fields == 0 {
			p.emit(insn{op: opMovReg, dst: regDiff, src: f.reg})
			p.emit(insn{op: opXor, dst: regDiff, imm: f.want})
		} else {
			p.emit(insn{op: opMovReg, dst: regTmp, src: f.reg})
			p.emit(insn{op: opXor, dst: regTmp, imm: f.want})
			p.emit(insn{op: opOr, dst: regDiff, src: regTmp})
		}
		fields++
	}
	if fields > 0 {
		p.jump(opJne, regDiff, 0, toNext)
	}
	if r.allow {
		p.emit(insn{op: opAnd, dst: regAccess, imm: ^r.access & accessAll})
		p.jump(opJeq, regAccess, 0, toAllow)
	} else {
		p.jump(opJset, regAccess, r.access, toDeny)
	}
	p.land(toNext)
}

// epilogue emits the exits: deny, reached by falling off the last rule, and
// allow if any rule can jump there (the verifier refuses unreachable code).
func (p *program) epilogue(allows bool) {
	p.land(toDeny)
	p.emit(insn{op: opMov, dst: regRet, imm: 0})
	p.emit(insn{op: opExit})
	if allows {
		p.land(toAllow)
		p.emit(insn{op: opMov, dst: regRet, imm: 1})
		p.emit(insn{op: opExit})
	}
}

// encode lays the program out as struct bpf_insn { u8 code; u8 dst_reg:4,
// src_reg:4; s16 off; s32 imm; }.
func (p *program) encode() []byte {
	b := make([]byte, 0, len(p.insns)*insnSize)
	for _, in := range p.insns {
		b = append(b, in.op, packRegs(in.dst, in.src))
		b = binary.NativeEndian.AppendUint16(b, uint16(in.off))
		b = binary.NativeEndian.AppendUint32(b, uint32(in.imm))
	}
	return b
}

// packRegs packs the dst_reg:4, src_reg:4 bitfields, which C compilers
// allocate from the low bits on little-endian machines and from the high
// bits on big-endian ones.
func packRegs(dst, src uint8) uint8 {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return dst | src<<4
	}
	return dst<<4 | src
}
