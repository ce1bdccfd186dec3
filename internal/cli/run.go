package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/runspec"
	"github.com/kiln-project/kiln/internal/runtime"
)

// runFlags are `kiln run`'s options, Docker's names and meanings.
type runFlags struct {
	rm, detach, interactive, tty, readOnly, privileged, init bool
	name, workdir, user, hostname, network, entrypoint, pull string
	tlsVerify                                                bool
	entrypointSet                                            bool
	env, envFiles, volumes, tmpfs, capAdd, capDrop, secOpts  []string
	limits                                                   limitFlags // run_limits.go
	net                                                      netFlags   // run_network.go
}

func newRun(e *env) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new container",
		Long: `Run IMAGE as a container: its layers shared read-only under a private copy-on-write upper
directory, in new mount, pid, uts, ipc and network namespaces, with Docker's default capabilities,
seccomp filter, masked paths and /dev. The exit status is the command's (128+N when killed by
signal N); 125 when kiln fails, 126 when the command cannot be run, 127 when it is not found.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.entrypointSet = cmd.Flags().Changed("entrypoint")
			return runContainer(cmd, e, f, args[0], args[1:])
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)              // flags after IMAGE belong to the command
	fl.Bool("help", false, "help for run") // -h is --hostname, as in Docker
	addRunFlags(fl, f)
	return cmd
}

func addRunFlags(fl *pflag.FlagSet, f *runFlags) {
	fl.BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	fl.BoolVarP(&f.detach, "detach", "d", false, "run in the background and print the container ID")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root read-only")
	fl.BoolVar(&f.privileged, "privileged", false, "all capabilities, no seccomp filter, no masked paths")
	fl.BoolVar(&f.init, "init", false, "run a reaper as PID 1 that forwards signals (built into kiln)")
	fl.StringVar(&f.name, "name", "", "name the container")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "user[:group], names or ids (resolved in the image)")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name (default: the ID's first 12 characters)")
	addNetworkFlags(fl, f)
	fl.StringVar(&f.entrypoint, "entrypoint", "", "override the image's entrypoint")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set NAME=VALUE (or pass NAME from kiln's environment)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read NAME=VALUE lines from a file")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind /host/path:/ctr/path[:ro] or volume NAME:/ctr/path[:ro]")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs at PATH[:OPTIONS]")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add a capability (or ALL)")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop a capability (or ALL)")
	fl.StringArrayVar(&f.secOpts, "security-opt", nil, "seccomp=unconfined|PROFILE.json, no-new-privileges")
	fl.StringVar(&f.pull, "pull", "missing", "pull IMAGE from its registry: always, missing or never")
	fl.BoolVar(&f.tlsVerify, "tls-verify", true, "verify the registry's certificate when pulling (HTTP is allowed for localhost)")
	addLimitFlags(fl, &f.limits)
}

// checkTerminal refuses -it without a terminal to read from, as Docker does: EOF can never
// reach a terminal's reader, so the container would wait forever.
func checkTerminal(f *runFlags, in *os.File) error {
	if f.tty && f.interactive && !term.IsTerminal(int(in.Fd())) {
		return errors.New("the input device is not a TTY (drop -t, or run kiln from a terminal)")
	}
	return nil
}

func (f *runFlags) validate() error {
	if err := f.limits.parse(); err != nil {
		return err
	}
	return f.validateNetwork()
}

// runContainer is `kiln run`: errors exit 125 (or 126/127 from the runtime), as with Docker.
func runContainer(cmd *cobra.Command, e *env, f *runFlags, image string, args []string) error {
	err := runContainerErr(cmd, e, f, image, args)
	var ee exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	fmt.Fprintf(e.stderr, "kiln: %v\n", err)
	return exitError{runtime.ExitCode(err)}
}

func runContainerErr(cmd *cobra.Command, e *env, f *runFlags, image string, args []string) error {
	if err := f.validate(); err != nil {
		return err
	}
	if err := checkTerminal(f, fileOr(e.stdin, os.Stdin)); err != nil {
		return err
	}
	if f.net.mode.Kind == "bridge" {
		sweepNetworks() // free what dead containers hold: their addresses, their ports
	}
	if !f.detach {
		return foreground(cmd.Context(), e, f, image, args)
	}
	p, err := prepare(cmd.Context(), e, f, image, args, "")
	if err != nil {
		return err
	}
	return detach(e, p)
}

// foreground runs the container with kiln as its monitor: kiln's own stdio passed through (or a
// terminal), signals forwarded, kiln's exit status the container's.
func foreground(ctx context.Context, e *env, f *runFlags, image string, args []string) error {
	stdio := runtime.Stdio{Stdout: fileOr(e.stdout, os.Stdout), Stderr: fileOr(e.stderr, os.Stderr)}
	if f.interactive {
		stdio.Stdin = fileOr(e.stdin, os.Stdin)
	}
	sh, err := newShield(stdio)
	if err != nil {
		return err
	}
	id, early := startEarly(f, sh.stdio)
	p, err := prepare(ctx, e, f, image, args, id)
	if err != nil {
		early.Abort()
		sh.started()
		return err
	}
	if f.tty {
		p.spec.Process.ConsoleSize = consoleSize(fileOr(e.stdin, os.Stdin))
	}
	// Until the container starts, signals keep their default effect on kiln. From here they
	// are caught (registering takes a while: it overlaps the start) and, once the container
	// runs, forwarded to it.
	caught := catchSignalsAsync()
	ctr, err := p.start(ctx, sh.stdio, early)
	sigs := caught()
	sh.started()
	if err != nil {
		signal.Stop(sigs)
		p.discard()
		return err
	}
	defer sh.wait()
	stop := forwardSignals(sigs, func(s syscall.Signal) { ctr.Signal(s) }, sh.cut)
	defer stop()
	detachTTY := func() {}
	if c := ctr.Console(); c != nil {
		detachTTY = attachConsole(c, fileOr(e.stdin, os.Stdin), e.stdout, f.interactive)
	}
	code := p.finish(ctr)
	detachTTY()
	if code != 0 {
		return statusError(code)
	}
	return nil
}

// startEarly starts the container's init while kiln prepares the rest (see runtime.Early), when
// the flags already say its namespaces: all new, as with the default network or --network none.
// Without it (other flags, or any failure) the start goes the usual way, which reports errors.
func startEarly(f *runFlags, stdio runtime.Stdio) (string, *runtime.Early) {
	if k := f.net.mode.Kind; k != "bridge" && k != "none" {
		return "", nil
	}
	id := container.NewID()
	early, err := runtime.StartEarly(id, runspec.OwnNamespaces(), stdio, f.tty)
	if err != nil {
		return "", nil
	}
	return id, early
}

func fileOr(w any, def *os.File) *os.File {
	if f, ok := w.(*os.File); ok {
		return f
	}
	return def
}

// statusError is an exit status kiln passes on without printing anything more.
func statusError(code int) error { return exitError{code} }
