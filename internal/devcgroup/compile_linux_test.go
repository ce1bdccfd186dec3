package devcgroup

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	blk = unix.BPF_DEVCG_DEV_BLOCK
	chr = unix.BPF_DEVCG_DEV_CHAR
	m   = unix.BPF_DEVCG_ACC_MKNOD
	r   = unix.BPF_DEVCG_ACC_READ
	w   = unix.BPF_DEVCG_ACC_WRITE
)

func num(n int64) *int64 { return &n }

func dev(allow bool, typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: major, Minor: minor, Access: access}
}

// dockerDefault is the list a Docker container gets (internal/runspec's).
func dockerDefault() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		dev(false, "", nil, nil, "rwm"),
		dev(true, "c", nil, nil, "m"),
		dev(true, "b", nil, nil, "m"),
		dev(true, "c", num(1), num(3), "rwm"),
		dev(true, "c", num(1), num(5), "rwm"),
		dev(true, "c", num(1), num(7), "rwm"),
		dev(true, "c", num(1), num(8), "rwm"),
		dev(true, "c", num(1), num(9), "rwm"),
		dev(true, "c", num(5), num(0), "rwm"),
		dev(true, "c", num(5), num(1), "rwm"),
		dev(true, "c", num(5), num(2), "rwm"),
		dev(true, "c", num(136), nil, "rwm"),
		dev(true, "c", num(10), num(200), "rwm"),
	}
}

func compile(t testing.TB, rules []specs.LinuxDeviceCgroup) []insn {
	t.Helper()
	prog, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	insns, err := decode(prog)
	if err != nil {
		t.Fatal(err)
	}
	return insns
}

func verdict(t testing.TB, prog []insn, typ, major, minor, access uint32) bool {
	t.Helper()
	r0, err := execute(prog, typ, major, minor, access)
	if err != nil {
		t.Fatalf("%v\n%s", err, disasm(prog))
	}
	if r0 > 1 {
		t.Fatalf("r0 = %d\n%s", r0, disasm(prog))
	}
	return r0 == 1
}

func TestCompileDockerDefault(t *testing.T) {
	prog := compile(t, dockerDefault())
	if len(prog) != 127 {
		t.Errorf("%d instructions, want 127:\n%s", len(prog), disasm(prog))
	}
	for _, c := range []struct {
		what              string
		typ, major, minor uint32
		access            uint32
		allowed           bool
	}{
		{"read /dev/null", chr, 1, 3, r, true},
		{"read+write /dev/null", chr, 1, 3, r | w, true},
		{"mknod /dev/null", chr, 1, 3, m, true},
		{"write /dev/urandom", chr, 1, 9, w, true},
		{"read /dev/pts/7", chr, 136, 7, r | w, true},
		{"open /dev/ptmx", chr, 5, 2, r | w, true},
		{"open /dev/net/tun", chr, 10, 200, r | w, true},
		{"read /dev/mem", chr, 1, 1, r, false},
		{"read /dev/kmsg", chr, 1, 11, r, false},
		{"open /dev/fuse", chr, 10, 229, r | w, false},
		{"mknod /dev/mem", chr, 1, 1, m, true},
		{"mknod+read /dev/mem", chr, 1, 1, m | r, false},
		{"read /dev/sda", blk, 8, 0, r, false},
		{"write /dev/sda", blk, 8, 0, w, false},
		{"mknod /dev/sda", blk, 8, 0, m, true},
		{"read block 1:3", blk, 1, 3, r, false},
		{"read char 136:* only", chr, 137, 0, r, false},
		{"unknown type", 3, 1, 3, r, false},
	} {
		if got := verdict(t, prog, c.typ, c.major, c.minor, c.access); got != c.allowed {
			t.Errorf("%s (type %d %d:%d access %#x): allowed = %v, want %v", c.what, c.typ, c.major, c.minor, c.access, got, c.allowed)
		}
	}
}

// TestCompileListing pins the program's layout for a small list: the
// prologue, one block per rule from last to first, then the exits.
func TestCompileListing(t *testing.T) {
	prog := compile(t, []specs.LinuxDeviceCgroup{
		dev(false, "a", nil, nil, "rwm"), // before any allow: left out
		dev(true, "c", nil, nil, "m"),
		dev(true, "c", num(1), num(3), "rwm"),
		dev(false, "c", num(1), num(3), "w"),
	})
	const want = `  0  r2 = *(u32 *)(r1 + 0)
  1  r3 = r2
  2  r3 >>= 16
  3  r2 &= 0xffff
  4  r4 = *(u32 *)(r1 + 4)
  5  r5 = *(u32 *)(r1 + 8)
  6  r6 = r2
  7  r6 ^= 2
  8  r7 = r4
  9  r7 ^= 1
 10  r6 |= r7
 11  r7 = r5
 12  r7 ^= 3
 13  r6 |= r7
 14  if r6 != 0 goto 16
 15  if r3 & 0x4 goto 32
 16  r6 = r2
 17  r6 ^= 2
 18  r7 = r4
 19  r7 ^= 1
 20  r6 |= r7
 21  r7 = r5
 22  r7 ^= 3
 23  r6 |= r7
 24  if r6 != 0 goto 27
 25  r3 &= 0x0
 26  if r3 == 0 goto 34
 27  r6 = r2
 28  r6 ^= 2
 29  if r6 != 0 goto 32
 30  r3 &= 0x6
 31  if r3 == 0 goto 34
 32  r0 = 0
 33  exit
 34  r0 = 1
 35  exit
`
	if got := disasm(prog); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestCompileDeterministic(t *testing.T) {
	a, err := Compile(dockerDefault())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Compile(dockerDefault())
	if !bytes.Equal(a, b) {
		t.Error("two compilations of the same rules differ")
	}
}

func TestCompileNoAllow(t *testing.T) {
	for _, rules := range [][]specs.LinuxDeviceCgroup{
		nil,
		{dev(false, "", nil, nil, "rwm")},
		{dev(false, "c", num(1), num(3), "r"), dev(false, "b", nil, nil, "")},
	} {
		prog := compile(t, rules)
		if len(prog) != 8 {
			t.Errorf("%v: %d instructions, want prologue and deny:\n%s", rules, len(prog), disasm(prog))
		}
		if verdict(t, prog, chr, 1, 3, r) {
			t.Errorf("%v: read 1:3 allowed", rules)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		rule specs.LinuxDeviceCgroup
		want string
	}{
		{dev(true, "u", nil, nil, "rwm"), `device rule 1 (allow u *:* rwm): type "u": want a, b or c`},
		{dev(true, "c", num(1), num(3), "rwx"), `device rule 1 (allow c 1:3 rwx): access "rwx": want letters r, w, m`},
		{dev(false, "c", num(-2), nil, "r"), `device rule 1 (deny c -2:* r): major: -2 out of range`},
		{dev(true, "b", num(8), num(1<<32), "r"), `device rule 1 (allow b 8:4294967296 r): minor: 4294967296 out of range`},
	} {
		_, err := Compile([]specs.LinuxDeviceCgroup{dev(false, "", nil, nil, "rwm"), c.rule})
		if err == nil || err.Error() != c.want {
			t.Errorf("Compile(%+v) = %v, want %s", c.rule, err, c.want)
		}
	}
}

// allowedByRules is the verdict of rules on one access, written the plain
// way: for each access bit, the last rule matching the device and naming
// the bit decides; no such rule means deny. An access with no bits is
// allowed when any allow rule matches the device (the v1 controller's rule).
func allowedByRules(rules []specs.LinuxDeviceCgroup, typ, major, minor, access uint32) bool {
	last := map[uint32]bool{}
	anyAllow := false
	for _, rule := range rules {
		if !matchesDevice(rule, typ, major, minor) {
			continue
		}
		letters := rule.Access
		if letters == "" {
			letters = "rwm"
		}
		for _, c := range letters {
			last[map[rune]uint32{'r': r, 'w': w, 'm': m}[c]] = rule.Allow
		}
		anyAllow = anyAllow || rule.Allow
	}
	if access == 0 {
		return anyAllow
	}
	for _, bit := range []uint32{r, w, m} {
		if access&bit != 0 && !last[bit] {
			return false
		}
	}
	return true
}

func matchesDevice(rule specs.LinuxDeviceCgroup, typ, major, minor uint32) bool {
	switch rule.Type {
	case "b":
		if typ != blk {
			return false
		}
	case "c":
		if typ != chr {
			return false
		}
	}
	matches := func(n *int64, v uint32) bool { return n == nil || *n == -1 || *n == int64(v) }
	return matches(rule.Major, major) && matches(rule.Minor, minor)
}

func randomRules(rng *rand.Rand) []specs.LinuxDeviceCgroup {
	number := func(values ...int64) *int64 {
		switch i := rng.IntN(len(values) + 2); i {
		case 0:
			return nil
		case 1:
			return num(-1)
		default:
			return num(values[i-2])
		}
	}
	rules := make([]specs.LinuxDeviceCgroup, rng.IntN(9))
	for i := range rules {
		var access []byte
		for _, c := range rng.Perm(3)[:rng.IntN(4)] {
			access = append(access, "rwm"[c])
		}
		rules[i] = dev(rng.IntN(2) == 0, []string{"", "a", "b", "c"}[rng.IntN(4)],
			number(0, 1, 5), number(0, 3, 4), string(access))
	}
	return rules
}

// TestCompileMatchesRules runs programs for random rule lists on every
// access of a small device space and compares with allowedByRules.
func TestCompileMatchesRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	checked := 0
	for range 3000 {
		rules := randomRules(rng)
		prog := compile(t, rules)
		for _, typ := range []uint32{blk, chr} {
			for _, major := range []uint32{0, 1, 5, 7} {
				for _, minor := range []uint32{0, 3, 4, 9} {
					for access := range uint32(8) {
						got := verdict(t, prog, typ, major, minor, access)
						if want := allowedByRules(rules, typ, major, minor, access); got != want {
							t.Fatalf("type %d %d:%d access %#x: allowed = %v, want %v\nrules:\n%s\nprogram:\n%s",
								typ, major, minor, access, got, want, listRules(rules), disasm(prog))
						}
						checked++
					}
				}
			}
		}
	}
	t.Logf("%d verdicts checked", checked)
}

func listRules(rules []specs.LinuxDeviceCgroup) string {
	var b strings.Builder
	for i, rule := range rules {
		fmt.Fprintf(&b, "%d: %s\n", i, ruleString(rule))
	}
	return b.String()
}

func BenchmarkCompile(b *testing.B) {
	rules := dockerDefault()
	for b.Loop() {
		if _, err := Compile(rules); err != nil {
			b.Fatal(err)
		}
	}
}
