// Package bake turns an image of the store into something a virtual machine boots: a kernel,
// and an initramfs holding the image's flattened root, kiln-init as /init, the kernel modules
// kiln-init needs and the boot configuration (internal/bootconfig) at bootconfig.Path.
//
//	res, err := bake.Bake(ctx, img, bake.Options{Out: "curl.vm", Init: "bin/kiln-init", Image: "curl"})
//
// The same image, kernel, modules and kiln-init give the same bytes. It never starts anything:
// internal/boot runs the result.
package bake

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/kiln-project/kiln/internal/bootconfig"
	"github.com/kiln-project/kiln/internal/runspec"
)

// Format is what Bake writes as the root.
type Format string

const (
	FormatInitramfs Format = "initramfs" // OUT/initramfs, a compressed newc cpio
	FormatDir       Format = "dir"       // OUT/rootfs/, the same tree as files
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatInitramfs, FormatDir:
		return f, nil
	}
	return "", fmt.Errorf("--format %q: want initramfs or dir", s)
}

// The files of a bake.
const (
	KernelFile    = "kernel"
	InitramfsFile = "initramfs"
	RootfsDir     = "rootfs"
	CmdlineFile   = "cmdline"
	ConfigFile    = "config.json"
)

// Cmdline is the kernel command line a bake starts with: the console on the first serial port
// (kiln boot hides it unless asked), the app's three ports registered, few messages, and a panic
// powers off at once.
const Cmdline = "console=ttyS0 " + bootconfig.UARTsParam + " quiet panic=-1"

// Where kiln's own files go in the initramfs.
const (
	initPath    = "init"
	modulesPath = "kiln/modules"
)

// Modules kiln-init loads when the kernel has them as modules, only when kiln boot asks
// (bootconfig.Config.NetModules, MountModules): the virtio-mmio transport with the NIC, or with
// 9P. A boot without either loads none: its ports are serial ports, built in.
var (
	netModules   = []string{"virtio_mmio", "virtio_net"}
	mountModules = []string{"virtio_mmio", "9pnet_virtio", "9p"}
)

// Options say what to bake.
type Options struct {
	Out    string // the directory to write; replaced if it holds an earlier bake
	Kernel string // a bzImage; "" is DefaultKernel
	Init   string // the kiln-init binary
	Format Format // "" is FormatInitramfs
	Image  string // the image's name, for errors
	// Uncompressed writes the cpio as is: more disk, less boot time (the guest kernel unpacks
	// it without decompressing). kiln boot's own cache of bakes uses it.
	Uncompressed bool
	// CommandAtBoot bakes an image that has no entrypoint and no cmd: the command comes with
	// each boot (kiln boot IMAGE -- CMD), which refuses to start without one.
	CommandAtBoot bool
	// KeepExisting leaves a bake another process put at Out first (kiln boot's cache, whose
	// entries are named by what they hold) instead of replacing it.
	KeepExisting bool
}

// Result is what was baked.
type Result struct {
	Kernel      *Kernel
	Config      bootconfig.Config
	Compression string // "zstd", "gzip", "uncompressed" or "" (format dir)
	ImageBytes  int64  // the image's files, uncompressed
	InitBytes   int64  // kiln-init
	ModuleBytes int64  // kernel modules
	CPIOBytes   int64  // the whole cpio, uncompressed
	OutputBytes int64  // the initramfs file as written
}

// Bake writes img as a bootable directory at o.Out. On error nothing is left at o.Out.
func Bake(ctx context.Context, img v1.Image, o Options) (*Result, error) {
	if o.Format == "" {
		o.Format = FormatInitramfs
	}
	if o.Kernel == "" {
		var err error
		if o.Kernel, err = DefaultKernel(); err != nil {
			return nil, err
		}
	}
	k, err := OpenKernel(o.Kernel)
	if err != nil {
		return nil, err
	}
	res := &Result{Kernel: k}
	initBin, err := os.ReadFile(o.Init)
	if err != nil {
		return nil, fmt.Errorf("kiln-init: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", o.Image, err)
	}
	t, err := flatten(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", o.Image, err)
	}
	res.ImageBytes = t.size()
	if res.Config, err = imageConfig(o.Image, cf, t, o.CommandAtBoot); err != nil {
		return nil, err
	}
	if err := res.addModules(t, k); err != nil {
		return nil, err
	}
	if err := res.addInit(t, initBin, o.Image); err != nil {
		return nil, err
	}
	cfgJSON, err := json.MarshalIndent(res.Config, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgJSON = append(cfgJSON, '\n')
	if err := t.addFile(strings.TrimPrefix(bootconfig.Path, "/"), cfgJSON, 0o644); err != nil {
		return nil, err
	}
	return res, res.write(o, t, cfgJSON)
}

// imageConfig is what kiln-init runs: the image's entrypoint and cmd, env, workdir and user,
// the user resolved to numbers from the image's own /etc/passwd and /etc/group.
func imageConfig(name string, cf *v1.ConfigFile, t tree, commandAtBoot bool) (bootconfig.Config, error) {
	c := cf.Config
	bc := bootconfig.Config{Args: append(slices.Clone(c.Entrypoint), c.Cmd...), Entrypoint: c.Entrypoint,
		Env: slices.Clone(c.Env), Workdir: c.WorkingDir}
	if len(bc.Args) == 0 && !commandAtBoot {
		return bc, fmt.Errorf("image %s has no entrypoint and no cmd: nothing to run", name)
	}
	if !slices.ContainsFunc(bc.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		bc.Env = append(bc.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	uid, gid, home, err := resolveUser(c.User, t)
	if err != nil {
		return bc, fmt.Errorf("image %s: config User %s: %w", name, c.User, err)
	}
	if c.User != "" {
		bc.User = fmt.Sprintf("%d:%d", uid, gid)
	}
	if !slices.ContainsFunc(bc.Env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		bc.Env = append(bc.Env, "HOME="+home)
	}
	return bc, nil
}

// resolveUser applies `kiln run`'s rules (Docker's) to the image's User, reading /etc/passwd
// and /etc/group from the flattened tree.
func resolveUser(user string, t tree) (uid, gid uint32, home string, err error) {
	dir, err := os.MkdirTemp("", "kiln-bake-etc-")
	if err != nil {
		return 0, 0, "", err
	}
	defer os.RemoveAll(dir)
	for _, f := range []string{"etc/passwd", "etc/group"} {
		if data, ok := t.readFile(f); ok {
			if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o700); err != nil {
				return 0, 0, "", err
			}
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
				return 0, 0, "", err
			}
		}
	}
	u, home, err := runspec.ResolveUser(user, []string{dir})
	return u.UID, u.GID, home, err
}

// addModules puts the modules the kernel needs into the tree and names them in the config.
func (res *Result) addModules(t tree, k *Kernel) error {
	// The app's output and status travel on serial ports, which must need no module.
	if k.Config != nil && !k.has("CONFIG_SERIAL_8250") {
		return fmt.Errorf("kernel %s: CONFIG_SERIAL_8250 is %q in %s: kiln boot needs the 8250 serial driver built in",
			k.Path, k.Config["CONFIG_SERIAL_8250"], k.ConfigPath)
	}
	if n, err := strconv.Atoi(k.Config["CONFIG_SERIAL_8250_NR_UARTS"]); err == nil && n < 4 {
		return fmt.Errorf("kernel %s: CONFIG_SERIAL_8250_NR_UARTS is %d in %s: kiln boot needs 4 serial ports (the console, the app's stdout, stderr and status)",
			k.Path, n, k.ConfigPath)
	}
	if k.ModulesDir == "" {
		return nil // drivers built in, or -p and -v refused by kiln boot
	}
	idx, err := readModuleIndex(k.ModulesDir)
	if err != nil {
		return fmt.Errorf("kernel %s: modules: %w", k.Release, err)
	}
	idx.stripSignatures = k.Config != nil && !k.demandsSignedModules()
	// Optional: a kernel without a NIC driver or 9P still boots; kiln boot refuses -p or -v then.
	if nm, err := idx.resolve(netModules...); err == nil {
		if res.Config.NetModules, err = res.copyModules(t, idx, nm); err != nil {
			return err
		}
	}
	if mm, err := idx.resolve(mountModules...); err == nil {
		res.Config.MountModules, err = res.copyModules(t, idx, mm)
		return err
	}
	return nil
}

// copyModules adds the .ko files kos under /kiln/modules (once: the sets share some),
// decompressed, and returns their paths in the initramfs.
func (res *Result) copyModules(t tree, idx *moduleIndex, kos []string) ([]string, error) {
	var out []string
	for _, ko := range kos {
		p := path.Join(modulesPath, moduleName(ko)+".ko")
		if n, ok := t[p]; ok && !n.fromLayers { // copied for the other set; an image's file is replaced
			out = append(out, "/"+p)
			continue
		}
		data, err := readModule(filepath.Join(idx.dir, ko))
		if err != nil {
			return nil, err
		}
		if idx.stripSignatures {
			data = stripSignature(data)
		}
		if err := t.addFile(p, data, 0o644); err != nil {
			return nil, err
		}
		res.ModuleBytes += int64(len(data))
		out = append(out, "/"+p)
	}
	return out, nil
}

// readModule reads a .ko file, decompressing .ko.gz, .ko.zst and .ko.xz: kiln-init loads
// plain modules, whatever the kernel's CONFIG_MODULE_DECOMPRESS.
func readModule(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("module: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(p, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", p, err)
		}
		r = zr
	case strings.HasSuffix(p, ".zst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", p, err)
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(p, ".xz"):
		return nil, fmt.Errorf("module %s: xz-compressed modules are not supported yet: unpack them with unxz and run depmod", p)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", p, err)
	}
	return data, nil
}

// sigMarker ends a module with an appended signature (the kernel's scripts/sign-file).
const sigMarker = "~Module signature appended~\n"

// stripSignature drops a module's appended signature. The kernel would check it on every boot
// (a SHA-256 of the module and an RSA verification: about a third of the time modules take to
// load under emulation), yet the bake took the module from the kernel's own tree and the
// initramfs is kiln's. A kernel that insists on signatures keeps them (see addModules).
func stripSignature(data []byte) []byte {
	n := len(data) - len(sigMarker)
	if n < 12 || string(data[n:]) != sigMarker {
		return data
	}
	// struct module_signature: algo, hash, id_type, signer_len, key_id_len, pad[3], sig_len (be32).
	info := data[n-12 : n]
	total := int(binary.BigEndian.Uint32(info[8:])) + int(info[3]) + int(info[4]) + 12
	if total > n {
		return data
	}
	return data[:n-total]
}

// addInit puts kiln-init at /init; an image with an /init of its own is refused rather than
// silently changed.
func (res *Result) addInit(t tree, bin []byte, image string) error {
	if n, ok := t[initPath]; ok && n.fromLayers {
		return fmt.Errorf("image %s has an /init of its own: kiln-init must be /init", image)
	}
	res.InitBytes = int64(len(bin))
	return t.addFile(initPath, bin, 0o755)
}

// addFile adds a file owned by root, with parents, at the Unix epoch.
func (t tree) addFile(p string, data []byte, perm uint32) error {
	if err := t.parents(p, 0); err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	if n, ok := t[p]; ok && n.isDir() {
		return fmt.Errorf("add /%s: the image has a directory there", p)
	}
	t[p] = &node{mode: modeReg | perm, data: data}
	return nil
}

// size is the bytes of the image's regular files, each inode once.
func (t tree) size() int64 {
	seen := map[*node]bool{}
	var n int64
	for _, nd := range t {
		if !seen[nd] {
			seen[nd] = true
			n += int64(len(nd.data))
		}
	}
	return n
}

// write writes the bake into a new directory beside o.Out, then puts it in place.
func (res *Result) write(o Options, t tree, cfgJSON []byte) error {
	out := filepath.Clean(o.Out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	if err := checkReplaceable(out); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".bake-")
	if err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := copyFile(res.Kernel.Path, filepath.Join(tmp, KernelFile)); err != nil {
		return err
	}
	cmdline := Cmdline + "\n"
	files := map[string][]byte{CmdlineFile: []byte(cmdline), ConfigFile: cfgJSON}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
	}
	if o.Format == FormatDir {
		if err := writeDir(filepath.Join(tmp, RootfsDir), t); err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
	} else if err := res.writeInitramfs(filepath.Join(tmp, InitramfsFile), t, o.Uncompressed); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	if err := publish(tmp, out, !o.KeepExisting); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	return nil
}

// publish puts the finished bake tmp at out, in one step that another bake of the same out,
// running at the same time, cannot tear: a rename, or an exchange when out holds an earlier
// bake and replace is set (the earlier one is left at tmp, for the caller to remove). Without
// replace, a bake already at out stays and tmp is dropped.
func publish(tmp, out string, replace bool) error {
	err := os.Rename(tmp, out)
	if !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOTEMPTY) {
		return err // nil, or a real failure
	}
	if !replace {
		return nil // another bake of the same content got there first
	}
	return exchange(tmp, out)
}

// checkReplaceable refuses to replace anything at out but an earlier bake.
func checkReplaceable(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s exists and is not a bake: %w", out, err)
	}
	for _, e := range entries {
		if !slices.Contains([]string{KernelFile, InitramfsFile, RootfsDir, CmdlineFile, ConfigFile}, e.Name()) {
			return fmt.Errorf("output %s exists and is not a bake (it has %s): remove it or pick another -o", out, e.Name())
		}
	}
	return nil
}

func (res *Result) writeInitramfs(p string, t tree, uncompressed bool) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	cw := &countWriter{w: f}
	zw, kind, err := compressor(cw, res.Kernel, uncompressed)
	if err != nil {
		return err
	}
	res.Compression = kind
	if res.CPIOBytes, err = writeCPIO(zw, t); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	res.OutputBytes = cw.n
	return f.Close()
}

// compressor is zstd when the kernel's config says it unpacks zstd (faster to unpack), else gzip,
// unless asked for none.
// Both are written with fixed settings: no names, no times, one thread.
func compressor(w io.Writer, k *Kernel, uncompressed bool) (io.WriteCloser, string, error) {
	if uncompressed {
		return nopCloser{w}, "uncompressed", nil
	}
	if k.has("CONFIG_RD_ZSTD") {
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		return zw, "zstd", err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	return zw, "gzip", err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
