package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bake"
	"github.com/kiln-project/kiln/internal/registry"
)

// bakeFlags are the options `kiln bake` and `kiln boot IMAGE` share.
type bakeFlags struct {
	kernel, init, pull string
	tlsVerify          bool
}

func newBake(e *env) *cobra.Command {
	var f bakeFlags
	var out, format string
	cmd := &cobra.Command{
		Use:   "bake IMAGE -o DIR [--kernel PATH] [--format initramfs|dir]",
		Short: "Turn an image into a kernel and an initramfs that boot as a microVM",
		Long: `Write IMAGE as a bootable directory DIR: kernel (a copy of --kernel, default the newest
/boot/vmlinuz-*), initramfs (the image's flattened root, kiln-init as /init, the kernel modules it
needs, and its configuration at /kiln/config.json, as a zstd or gzip newc cpio), cmdline (the
kernel command line to start with) and config.json (the baked configuration: the image's
entrypoint and cmd, env, workdir, numeric user). The same image, kernel and kiln-init give the
same bytes. With --format dir, DIR/rootfs/ holds the tree instead of the initramfs. Boot the
result with kiln boot DIR, or any VMM: see docs/boot.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fm, err := bake.ParseFormat(format)
			if err != nil {
				return err
			}
			res, err := bakeImage(cmd.Context(), e, &f, args[0], out, fm)
			if err != nil {
				return err
			}
			printBake(e.stdout, out, res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "output", "o", "", "directory to write (required); replaced if it holds an earlier bake")
	fl.StringVar(&format, "format", "initramfs", "initramfs (a compressed cpio) or dir (a directory tree)")
	addBakeFlags(cmd, &f)
	cmd.MarkFlagRequired("output")
	return cmd
}

func addBakeFlags(cmd *cobra.Command, f *bakeFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.kernel, "kernel", "", "kernel to boot, a bzImage (default: the newest /boot/vmlinuz-*)")
	fl.StringVar(&f.init, "init", "", "kiln-init binary (default: kiln-init beside kiln, then in $PATH)")
	fl.StringVar(&f.pull, "pull", "missing", "pull IMAGE from its registry: always, missing or never")
	fl.BoolVar(&f.tlsVerify, "tls-verify", true, "verify the registry's certificate when pulling (HTTP is allowed for localhost)")
}

// bakeImage finds (or pulls) the image and bakes it into out.
func bakeImage(ctx context.Context, e *env, f *bakeFlags, ref, out string, format bake.Format) (*bake.Result, error) {
	o, err := f.options(out, format, ref)
	if err != nil {
		return nil, err
	}
	_, img, err := ensureImage(ctx, e, f, ref)
	if err != nil {
		return nil, err
	}
	return bake.Bake(ctx, img, o)
}

// ensureImage is ref in the store, pulled first if the --pull policy says so.
func ensureImage(ctx context.Context, e *env, f *bakeFlags, ref string) (v1.Hash, v1.Image, error) {
	st, err := e.store()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	policy, err := registry.ParsePolicy(f.pull)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	puller := registry.Puller{Options: e.registryOptions(f.tlsVerify, nil)}
	d, err := puller.Ensure(ctx, st, ref, policy)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	img, err := st.Image(d)
	return d, img, err
}

func (f *bakeFlags) options(out string, format bake.Format, ref string) (bake.Options, error) {
	o := bake.Options{Out: out, Kernel: f.kernel, Init: f.init, Format: format, Image: ref}
	var err error
	if o.Init == "" {
		if o.Init, err = findInit(); err != nil {
			return o, err
		}
	}
	if o.Kernel == "" {
		if o.Kernel, err = bake.DefaultKernel(); err != nil {
			return o, err
		}
	}
	return o, nil
}

// findInit is kiln-init beside the running kiln (make build puts both in bin/), else in $PATH.
func findInit() (string, error) {
	self, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(self), "kiln-init")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("kiln-init"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("kiln-init not found beside %s or in $PATH: build it (make build writes bin/kiln-init) or pass --init PATH", self)
}

func printBake(w io.Writer, out string, r *bake.Result) {
	fmt.Fprintf(w, "kernel     %s (%s)\n", r.Kernel.Release, r.Kernel.Path)
	fmt.Fprintf(w, "image      %s of files\n", size(r.ImageBytes))
	fmt.Fprintf(w, "kiln-init  %s\n", size(r.InitBytes))
	fmt.Fprintf(w, "modules    %d loaded at boot, %d for -p, %d for -v (%s)\n",
		len(r.Config.Modules), len(r.Config.NetModules), len(r.Config.MountModules), size(r.ModuleBytes))
	if r.Compression != "" {
		fmt.Fprintf(w, "initramfs  %s %s (cpio %s)\n", size(r.OutputBytes), r.Compression, size(r.CPIOBytes))
	}
	fmt.Fprintf(w, "baked      %s\n", out)
}

// bakeCacheKey names a cached bake of an image: its digest, and what stat says of the kernel,
// kiln-init and module index it was baked with (hashing a 14 MiB kernel on every boot would
// cost more than the rest of kiln's part of it), and of kiln itself, whose code makes the bake:
// a new kiln bakes again.
func bakeCacheKey(digest string, o bake.Options) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s %v\n", digest, o.Format, o.Uncompressed)
	k, err := bake.ReadKernel(o.Kernel) // for its modules directory; the config is not needed
	if err != nil {
		return "", err
	}
	files := []string{o.Kernel, o.Init, "/proc/self/exe"}
	if k.ModulesDir != "" {
		files = append(files, filepath.Join(k.ModulesDir, "modules.dep"))
	}
	for _, p := range files {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(h, "%s %d %d %d %d.%d %d.%d\n", p, st.Dev, st.Ino, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}
