package seccomp

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// disasm prints prog one instruction a line, for test failures and -v logs.
func disasm(prog []unix.SockFilter) string {
	var b strings.Builder
	for pc, in := range prog {
		fmt.Fprintf(&b, "%4d  ", pc)
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			fmt.Fprintf(&b, "ld   [%d]\n", in.K)
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			fmt.Fprintf(&b, "and  %#x\n", in.K)
		case unix.BPF_JMP | unix.BPF_JA:
			fmt.Fprintf(&b, "ja   %d\n", pc+1+int(in.K))
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			op := map[uint16]string{unix.BPF_JEQ: "jeq", unix.BPF_JGT: "jgt", unix.BPF_JGE: "jge"}[in.Code&0xf0]
			fmt.Fprintf(&b, "%-4s %#x, %d, %d\n", op, in.K, pc+1+int(in.Jt), pc+1+int(in.Jf))
		case unix.BPF_RET | unix.BPF_K:
			fmt.Fprintf(&b, "ret  %#x\n", in.K)
		default:
			fmt.Fprintf(&b, "?    %#v\n", in)
		}
	}
	return b.String()
}
