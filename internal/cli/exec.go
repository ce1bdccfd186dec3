package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/runspec"
	"github.com/kiln-project/kiln/internal/runtime"
)

type execFlags struct {
	interactive, tty bool
	user, workdir    string
	env              []string
}

func newExec(e *env) *cobra.Command {
	f := &execFlags{}
	cmd := &cobra.Command{
		Use:   "exec [-it] [-u USER] [-e NAME=VALUE] [-w DIR] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Long: `Run a command inside a running container: in every one of its namespaces and cgroups, with the
same capabilities, no_new_privs and seccomp filter as its main process.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := execIn(cmd, e, f, args[0], args[1:])
			var ee exitError
			if err == nil || errors.As(err, &ee) {
				return err
			}
			fmt.Fprintf(e.stderr, "kiln: %v\n", err)
			return exitError{runtime.ExitCode(err)}
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.StringVarP(&f.user, "user", "u", "", "user[:group] to run as (default: the container's)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory (default: the container's)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set NAME=VALUE (or pass NAME from kiln's environment)")
	return cmd
}

func execIn(cmd *cobra.Command, e *env, f *execFlags, ref string, args []string) error {
	rec, s, err := runningContainer(e, ref)
	if err != nil {
		return err
	}
	if !container.Alive(s.Pid, s.PidStart) {
		return fmt.Errorf("container %s is not running", ref)
	}
	spec, err := readSpec(rec.Dir())
	if err != nil {
		return err
	}
	p, err := execProcess(spec, s.Pid, f, args)
	if err != nil {
		return err
	}
	stdio := runtime.Stdio{Stdout: fileOr(e.stdout, os.Stdout), Stderr: fileOr(e.stderr, os.Stderr)}
	if f.interactive {
		stdio.Stdin = fileOr(e.stdin, os.Stdin)
	}
	sh, err := newShield(stdio)
	if err != nil {
		return err
	}
	sigs := catchSignals()
	proc, err := runtime.Exec(cmd.Context(), runtime.ExecConfig{Pid: s.Pid, Process: p, Seccomp: spec.Linux.Seccomp, Stdio: sh.stdio})
	sh.started()
	if err != nil {
		signal.Stop(sigs)
		return err
	}
	defer sh.wait()
	stop := forwardSignals(sigs, func(sig syscall.Signal) { proc.Signal(sig) }, sh.cut)
	defer stop()
	detachTTY := func() {}
	if c := proc.Console(); c != nil {
		detachTTY = attachConsole(c, fileOr(e.stdin, os.Stdin), e.stdout, f.interactive)
	}
	exit, _ := proc.Wait()
	detachTTY()
	if exit.Code != 0 {
		return statusError(exit.Code)
	}
	return nil
}

// execProcess is the container's process with exec's command, env, user and directory.
func execProcess(spec *specs.Spec, pid int, f *execFlags, args []string) (*specs.Process, error) {
	p := *spec.Process
	p.Args, p.Terminal = args, f.tty
	if f.tty {
		p.ConsoleSize = consoleSize(os.Stdin)
	}
	if f.workdir != "" {
		p.Cwd = f.workdir
	}
	if f.user != "" {
		// Names resolve in the container's live root, as Docker does.
		u, home, err := runspec.ResolveUserInRoot(f.user, fmt.Sprintf("/proc/%d/root", pid))
		if err != nil {
			return nil, err
		}
		p.User = u
		p.Env = setEnv(p.Env, []string{"HOME=" + home}) // the user's own, unless -e sets it
	}
	p.Env = setEnv(p.Env, f.env)
	return &p, nil
}

func readSpec(dir string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, specFile), err)
	}
	return &s, nil
}

// setEnv returns env with each NAME=VALUE of set replacing an earlier value of NAME, as Docker
// does. A bare NAME takes its value from kiln's environment, and unsets NAME when kiln has none.
func setEnv(env, set []string) []string {
	out := append([]string{}, env...)
	for _, kv := range set {
		name, _, hasValue := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(old string) bool { return strings.HasPrefix(old, name+"=") })
		if !hasValue {
			v, ok := os.LookupEnv(name)
			if !ok {
				if i >= 0 {
					out = slices.Delete(out, i, i+1)
				}
				continue
			}
			kv = name + "=" + v
		}
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}
