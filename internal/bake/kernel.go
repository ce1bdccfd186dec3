package bake

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Kernel is a Linux kernel image (an x86 bzImage) and what the host knows about it.
type Kernel struct {
	Path    string
	Release string // "6.1.0-56-cloud-amd64", the first word of its version string
	Version string // the whole version string the image carries
	// Config is its build configuration (CONFIG_X -> "y", "m", ...), from config-RELEASE beside
	// it or in /boot; nil when none was found, or not read (ReadKernel: see LoadConfig).
	Config     map[string]string
	ConfigPath string
	// ModulesDir holds modules.dep and the .ko files for Release ("" when there is none).
	ModulesDir string
	// CmdlineMax is the longest kernel command line it takes, in bytes (cmdline_size). A longer
	// one does not boot at all: the kernel never prints a line.
	CmdlineMax int
}

// bzImage header (Documentation/arch/x86/boot.rst): "HdrS" at 0x202, the boot protocol version
// at 0x206, the offset of the version string minus 0x200 at 0x20e, and from protocol 2.06 on
// the longest command line (without its NUL) at 0x238; before, 255.
const (
	hdrMagicOff    = 0x202
	hdrProtocolOff = 0x206
	hdrVersionOff  = 0x20e
	hdrCmdlineOff  = 0x238
	hdrSize        = 64 << 10
)

// OpenKernel checks that path is a bzImage and finds its release, configuration and modules.
func OpenKernel(path string) (*Kernel, error) {
	k, err := ReadKernel(path)
	if err != nil {
		return nil, err
	}
	k.LoadConfig()
	return k, nil
}

// ReadKernel is OpenKernel without reading the configuration (some 2,000 lines), which a boot
// from kiln's cache needs only for -p or -v: LoadConfig reads it when it is wanted.
func ReadKernel(path string) (*Kernel, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	defer f.Close()
	head := make([]byte, hdrSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("kernel %s: %w", path, err)
	}
	head = head[:n]
	if len(head) < hdrVersionOff+2 || string(head[hdrMagicOff:hdrMagicOff+4]) != "HdrS" {
		return nil, fmt.Errorf("kernel %s: not a Linux kernel image (no bzImage header \"HdrS\" at 0x202)", path)
	}
	k := &Kernel{Path: path, CmdlineMax: 255}
	if len(head) >= hdrCmdlineOff+4 && binary.LittleEndian.Uint16(head[hdrProtocolOff:]) >= 0x206 {
		k.CmdlineMax = int(binary.LittleEndian.Uint32(head[hdrCmdlineOff:]))
	}
	off := int(binary.LittleEndian.Uint16(head[hdrVersionOff:])) + 0x200
	if off < len(head) {
		v := head[off:]
		if i := bytes.IndexByte(v, 0); i >= 0 {
			k.Version = string(v[:i])
			k.Release, _, _ = strings.Cut(k.Version, " ")
		}
	}
	if k.Release == "" {
		return nil, fmt.Errorf("kernel %s: no version string in its header", path)
	}
	k.findModules()
	return k, nil
}

// searchDirs are where a kernel's config and modules are looked for: beside it (a kernel
// package unpacked with dpkg-deb -x keeps boot/ and lib/modules/ side by side), then the host's.
func (k *Kernel) searchDirs(sub string) []string {
	dir := filepath.Dir(k.Path)
	return []string{
		filepath.Join(dir, sub),
		filepath.Join(dir, "..", "lib", "modules", k.Release, sub),
		filepath.Join("/boot", sub),
		filepath.Join("/lib/modules", k.Release, sub),
	}
}

// LoadConfig finds and reads the kernel's configuration into Config and ConfigPath; once
// found, it is not read again.
func (k *Kernel) LoadConfig() {
	if k.ConfigPath != "" {
		return
	}
	for _, p := range append(k.searchDirs("config-"+k.Release), filepath.Join("/lib/modules", k.Release, "build", ".config")) {
		cfg, err := readKernelConfig(p)
		if err == nil {
			k.Config, k.ConfigPath = cfg, p
			return
		}
	}
}

func (k *Kernel) findModules() {
	dir := filepath.Dir(k.Path)
	for _, d := range []string{filepath.Join(dir, "..", "lib", "modules", k.Release), filepath.Join("/lib/modules", k.Release)} {
		if _, err := os.Stat(filepath.Join(d, "modules.dep")); err == nil {
			k.ModulesDir = filepath.Clean(d)
			return
		}
	}
}

func readKernelConfig(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if name, value, ok := strings.Cut(s.Text(), "="); ok && strings.HasPrefix(name, "CONFIG_") {
			cfg[name] = value
		}
	}
	return cfg, s.Err()
}

// has reports whether the kernel config sets option to y; unknown is false.
func (k *Kernel) has(option string) bool { return k.Config[option] == "y" }

// demandsSignedModules reports whether the kernel refuses a module without a valid signature
// whatever its command line says: signatures enforced, or lockdown forced on (which refuses
// unsigned modules even where MODULE_SIG_FORCE is off).
func (k *Kernel) demandsSignedModules() bool {
	return k.has("CONFIG_MODULE_SIG_FORCE") || k.has("CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY") ||
		k.has("CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY")
}

// DefaultKernel is the newest /boot/vmlinuz-*, the kernel of a Debian linux-image-* package.
func DefaultKernel() (string, error) {
	ms, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ms) == 0 {
		return "", fmt.Errorf("no kernel in /boot/vmlinuz-*: pass --kernel PATH, or install one (Debian: apt-get install linux-image-cloud-amd64)")
	}
	slices.SortFunc(ms, compareVersions)
	return ms[len(ms)-1], nil
}

// compareVersions orders names by their runs of digits as numbers ("6.10" after "6.9").
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		switch {
		case na >= 0 && nb >= 0 && na != nb:
			return cmpInt(na, nb)
		case na >= 0 && nb >= 0:
			a, b = ra, rb
		case a[0] != b[0]:
			return cmpInt(int(a[0]), int(b[0]))
		default:
			a, b = a[1:], b[1:]
		}
	}
	return cmpInt(len(a), len(b))
}

func leadingNumber(s string) (int, string) {
	i, n := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1<<30 {
		n = n*10 + int(s[i]-'0')
		i++
	}
	if i == 0 {
		return -1, s
	}
	return n, s[i:]
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var errNoModule = errors.New("not in the kernel")

// moduleIndex is what modules.dep and modules.builtin say.
type moduleIndex struct {
	dir     string
	deps    map[string][]string // module name -> .ko path (first) and its dependencies' paths
	paths   map[string]string   // .ko path -> module name
	builtin map[string]bool
	// stripSignatures: copy modules without their signatures (the kernel does not insist).
	stripSignatures bool
}

func moduleName(p string) string {
	base := filepath.Base(p)
	base, _, _ = strings.Cut(base, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

func readModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: dir, deps: map[string][]string{}, paths: map[string]string{}, builtin: map[string]bool{}}
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(dep), "\n") {
		ko, deps, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name := moduleName(ko)
		idx.deps[name] = append([]string{ko}, strings.Fields(deps)...)
		idx.paths[ko] = name
	}
	builtin, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, line := range strings.Fields(string(builtin)) {
		idx.builtin[moduleName(line)] = true
	}
	return idx, nil
}

// resolve returns the .ko paths (relative to dir) that give the kernel the named modules, in
// the order to load them: dependencies first. A built-in module needs nothing; one the kernel
// has neither way is errNoModule.
func (idx *moduleIndex) resolve(names ...string) ([]string, error) {
	var order []string
	var visit func(ko string)
	visit = func(ko string) {
		if slices.Contains(order, ko) {
			return
		}
		for _, d := range idx.deps[idx.paths[ko]][1:] {
			visit(d)
		}
		order = append(order, ko)
	}
	for _, name := range names {
		name = strings.ReplaceAll(name, "-", "_")
		switch d, ok := idx.deps[name]; {
		case ok:
			visit(d[0])
		case idx.builtin[name]:
		default:
			return nil, fmt.Errorf("module %s: %w", name, errNoModule)
		}
	}
	return order, nil
}
