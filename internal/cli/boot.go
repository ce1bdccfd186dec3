package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/bake"
	"github.com/kiln-project/kiln/internal/boot"
)

type bootFlags struct {
	bake                   bakeFlags
	accel, memory, network string
	cpus                   int
	env, ports, volumes    []string
	timeout                time.Duration
}

func newBoot(e *env) *cobra.Command {
	f := &bootFlags{}
	cmd := &cobra.Command{
		Use:   "boot IMAGE|BAKED_DIR [flags] [-- ARG...]",
		Short: "Boot an image, or a bake, as a qemu microVM",
		Long: `Boot IMAGE (baked first, and cached under the kiln root by image digest, kernel and kiln-init)
or a directory written by kiln bake, in qemu-system-x86_64 -M microvm. The app's stdout and stderr
are kiln's; kiln's exit status is the app's (125 when kiln, qemu or the guest fails first). KVM is
used when it works; otherwise (or with --accel tcg) qemu emulates, with a notice. Kernel messages
show only with --verbose. ARGs after -- replace the image's cmd, after its entrypoint, as with
docker run. -e, -v and ARGs reach kiln-init on the kernel command line, over the baked
configuration (visible in the host's process list: no place for secrets). Signals sent to kiln
(SIGTERM, ^C, SIGHUP, SIGUSR1...) are passed to the app, as docker run does; a second SIGINT or
SIGTERM kills the VM. See docs/boot.md.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var appArgs []string
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				args, appArgs = args[:dash], args[dash:]
				if len(appArgs) == 0 {
					return errors.New("nothing after --: give the command to run, or drop --")
				}
			}
			if len(args) != 1 {
				return fmt.Errorf("want one IMAGE or BAKED_DIR before --, got %q", args)
			}
			return runBoot(cmd.Context(), e, f, args[0], appArgs)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.accel, "accel", boot.AccelAuto, "kvm, tcg (emulation) or auto (kvm when it can boot a stock kernel)")
	fl.StringVarP(&f.memory, "memory", "m", "256M", "guest memory (qemu -m)")
	fl.IntVar(&f.cpus, "cpus", 1, "guest vCPUs")
	fl.StringVar(&f.network, "network", "", "user (qemu user networking: NAT, no inbound but -p) or none (default: user with -p, else none)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set NAME=VALUE in the app's environment (or pass NAME from kiln's)")
	fl.StringArrayVarP(&f.ports, "publish", "p", nil, "forward 127.0.0.1:HOSTPORT to the guest's GUESTPORT (TCP)")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "share HOSTDIR at GUESTDIR over virtio-9p: HOSTDIR:GUESTDIR[:ro]")
	fl.DurationVar(&f.timeout, "timeout", 0, "kill the VM after this long (0: never)")
	addBakeFlags(cmd, &f.bake)
	return cmd
}

// runBoot prints its own errors: every failure exits 125, the app's status passes through.
func runBoot(ctx context.Context, e *env, f *bootFlags, target string, args []string) error {
	code, err := bootTarget(ctx, e, f, target, args)
	if err != nil {
		fmt.Fprintf(e.stderr, "kiln: %v\n", err)
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

func bootTarget(ctx context.Context, e *env, f *bootFlags, target string, args []string) (int, error) {
	o := boot.Options{Accel: f.accel, Memory: f.memory, CPUs: f.cpus, Network: f.network, Args: args,
		Timeout: f.timeout, Verbose: e.verbose, Stdout: e.stdout, Stderr: e.stderr,
		Notice: func(s string) { fmt.Fprintf(e.stderr, "kiln: %s\n", s) }}
	var err error
	if o.Env, err = hostEnv(f.env); err != nil {
		return boot.ExitFailed, err
	}
	for _, p := range f.ports {
		port, err := boot.ParsePort(p)
		if err != nil {
			return boot.ExitFailed, err
		}
		o.Ports = append(o.Ports, port)
	}
	for _, v := range f.volumes {
		vol, err := boot.ParseVolume(v)
		if err != nil {
			return boot.ExitFailed, err
		}
		o.Volumes = append(o.Volumes, vol)
	}
	if o.Dir, err = bakedDir(ctx, e, &f.bake, target); err != nil {
		return boot.ExitFailed, err
	}
	return bootForeground(ctx, o)
}

// bootForeground boots with kiln's signals going to the app, as kiln run's do: from here a
// SIGINT or SIGTERM no longer ends kiln through ctx (main cancels it on one) but is the app's,
// and a second one kills the VM (see boot.Options.Signals).
func bootForeground(ctx context.Context, o boot.Options) (int, error) {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, bootSignals()...)
	defer signal.Stop(sigs)
	if ctx.Err() != nil { // a signal while baking: nothing has started
		return boot.ExitFailed, errors.New("interrupted")
	}
	o.Signals = sigs
	return boot.Run(context.WithoutCancel(ctx), o)
}

// bootSignals are the signals kiln boot passes to the app: every one a process is sent to ask
// something of it, standard and real-time. Not those that stay kiln's: SIGPIPE (kiln's output
// was closed: it ends, as any filter does, and qemu with it), SIGCHLD, SIGURG and SIGPROF (its
// own child and runtime), SIGWINCH (the guest has no terminal), job control (^Z stops kiln), the
// faults, nor 32 and 33 (the C library's).
func bootSignals() []os.Signal {
	kilns := []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGPIPE, syscall.SIGCHLD, syscall.SIGURG,
		syscall.SIGPROF, syscall.SIGWINCH, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
		syscall.SIGILL, syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGTRAP, syscall.SIGSYS, 32, 33}
	var sigs []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if !slices.Contains(kilns, s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// hostEnv completes -e NAME (no =) from kiln's own environment, as docker run does.
func hostEnv(env []string) ([]string, error) {
	var out []string
	for _, kv := range env {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		} else if v, ok := os.LookupEnv(kv); ok {
			out = append(out, kv+"="+v)
		}
	}
	return out, nil
}

// bakedDir is target if it is a bake, else the cached bake of the image target names.
func bakedDir(ctx context.Context, e *env, f *bakeFlags, target string) (string, error) {
	if fi, err := os.Stat(target); err == nil && fi.IsDir() && (strings.ContainsRune(target, '/') || exists(filepath.Join(target, bake.ConfigFile))) {
		if f.kernel != "" || f.init != "" {
			return "", fmt.Errorf("%s is a bake: --kernel and --init apply when booting an IMAGE (bake again to change them)", target)
		}
		return target, nil
	}
	o, err := f.options("", bake.FormatInitramfs, target)
	if err != nil {
		return "", err
	}
	// kiln's own cache is read only by qemu on this machine: an uncompressed initramfs spends
	// disk to save the guest kernel the decompression, the largest part of unpacking it.
	o.Uncompressed = true
	d, img, err := ensureImage(ctx, e, f, target)
	if err != nil {
		return "", err
	}
	key, err := bakeCacheKey(d.String(), o)
	if err != nil {
		return "", err
	}
	o.Out = filepath.Join(e.root, "cache", "boot", key)
	if cachedBake(o.Out) {
		return o.Out, nil
	}
	// Another kiln may be baking the same entry: the first to finish publishes it, the others
	// use it. An image with nothing to run is baked too: the command may come with the boot
	// (kiln boot IMAGE -- CMD), and boot refuses to start without one.
	o.KeepExisting, o.CommandAtBoot = true, true
	if _, err := bake.Bake(ctx, img, o); err != nil {
		return "", err
	}
	return o.Out, nil
}

// cachedBake reports whether dir holds a whole bake. An entry whose files are missing or empty
// (a crash before the data reached the disk) is baked again.
func cachedBake(dir string) bool {
	for _, name := range []string{bake.ConfigFile, bake.CmdlineFile, bake.KernelFile, bake.InitramfsFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			return false
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
