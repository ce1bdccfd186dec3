package closure

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// ldconfigLine is one library line of "ldconfig -p": "\tlibz.so.1 (libc6,x86-64) => /lib/.../libz.so.1".
var ldconfigLine = regexp.MustCompile(`^\t(\S+) \((.*)\) => (.*)$`)

// ldconfigPrint returns the entries "ldconfig -p" prints for the cache file, with their flag text.
func ldconfigPrint(t *testing.T, file string) (entries []cacheEntry, descs []string) {
	t.Helper()
	out, err := exec.Command(requireTool(t, "ldconfig"), "-p", "-C", file).Output()
	if err != nil {
		t.Fatalf("ldconfig -p -C %s: %v", file, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if m := ldconfigLine.FindStringSubmatch(line); m != nil {
			entries = append(entries, cacheEntry{name: m[1], path: m[3]})
			descs = append(descs, m[2])
		}
	}
	return entries, descs
}

// flagText is how ldconfig prints the flags of the commonest ABIs.
var flagText = map[int32]string{
	flagELFLibc6 | flagX8664Lib64:   "libc6,x86-64",
	flagELFLibc6 | flagX8664LibX32:  "libc6,x32",
	flagELFLibc6 | flagAArch64Lib64: "libc6,AArch64",
	flagELFLibc6:                    "libc6",
}

func checkCacheMatchesLdconfig(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Skipf("no cache to read: %v", err)
	}
	got, err := parseLDCache(b)
	if err != nil {
		t.Fatal(err)
	}
	want, descs := ldconfigPrint(t, file)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d entries, ldconfig -p lists %d", len(got), len(want))
	}
	for i, e := range got {
		if e.name != want[i].name || e.path != want[i].path {
			t.Errorf("entry %d: %s => %s, ldconfig -p says %s => %s", i, e.name, e.path, want[i].name, want[i].path)
		}
		if text, ok := flagText[e.flags]; ok && !strings.HasPrefix(descs[i], text) {
			t.Errorf("entry %d (%s): flags %#x, ldconfig -p says %q", i, e.name, e.flags, descs[i])
		}
		if hw := strings.Contains(descs[i], "hwcap"); hw != (e.hwcap != 0) {
			t.Errorf("entry %d (%s): hwcap %#x, ldconfig -p says %q", i, e.name, e.hwcap, descs[i])
		}
	}
}

func TestParseHostLDCache(t *testing.T) {
	checkCacheMatchesLdconfig(t, "/etc/ld.so.cache")
}

// ldconfig writes each format it supports into a scratch file, from the host's ld.so.conf.
func TestParseLDCacheFormats(t *testing.T) {
	ldconfig := requireTool(t, "ldconfig")
	for _, format := range []string{"new", "compat", "old"} {
		t.Run(format, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "ld.so.cache")
			if out, err := exec.Command(ldconfig, "-X", "-c", format, "-C", file).CombinedOutput(); err != nil {
				t.Skipf("ldconfig -c %s cannot write a cache here: %v\n%s", format, err, out)
			}
			checkCacheMatchesLdconfig(t, file)
		})
	}
}

func TestParseLDCacheRejectsDamage(t *testing.T) {
	b, err := os.ReadFile("/etc/ld.so.cache")
	if err != nil || !bytes.HasPrefix(b, []byte(cacheMagicNew)) {
		t.Skip("no new-format host cache to damage")
	}
	for name, damaged := range map[string][]byte{
		"empty":         nil,
		"unknown magic": []byte("not a cache at all"),
		"truncated":     b[:len(b)/2],
		"header only":   b[:cacheHeaderNew],
		"huge count":    append(slices.Clone(b[:20]), append([]byte{0xff, 0xff, 0xff, 0x7f}, b[24:]...)...),
		"old truncated": []byte(cacheMagicOld + "\x00\x05\x00\x00\x00"),
	} {
		if _, err := parseLDCache(damaged); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCachedPicksTheExecutablesABI(t *testing.T) {
	r := &Resolver{cache: map[string][]cacheEntry{"libz.so.1": {
		{name: "libz.so.1", path: "/lib/i386-linux-gnu/libz.so.1", flags: flagELFLibc6},
		{name: "libz.so.1", path: "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1", flags: flagELFLibc6 | flagX8664Lib64, hwcap: 1<<62 | 1},
		{name: "libz.so.1", path: "/lib/x86_64-linux-gnu/libz.so.1", flags: flagELFLibc6 | flagX8664Lib64},
	}}}
	for _, tc := range []struct {
		abi  abi
		want []string
	}{
		{abi{class: 2, machine: 62}, []string{"/lib/x86_64-linux-gnu/libz.so.1"}}, // ELFCLASS64, EM_X86_64
		{abi{class: 1, machine: 3}, []string{"/lib/i386-linux-gnu/libz.so.1"}},    // ELFCLASS32, EM_386
		{abi{class: 2, machine: 183}, nil},                                        // EM_AARCH64
	} {
		if got := r.cached("libz.so.1", tc.abi); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %q, want %q", tc.abi, got, tc.want)
		}
	}
}

func FuzzParseLDCache(f *testing.F) {
	if b, err := os.ReadFile("/etc/ld.so.cache"); err == nil && len(b) < 1<<20 {
		f.Add(b)
	}
	f.Add([]byte(cacheMagicOld + "\x00\x01\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseLDCache(b) // must not panic
	})
}
