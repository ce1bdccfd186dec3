package cli

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/container"
)

func newStop(e *env) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [-t SECONDS] CONTAINER...",
		Short: "Stop containers: the image's stop signal, then SIGKILL after a grace period",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, ref := range args {
				if err := stopOne(cmd.Context(), e, ref, time.Duration(timeout)*time.Second); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, ref)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

func stopOne(ctx context.Context, e *env, ref string, grace time.Duration) error {
	rec, err := getContainer(e, ref)
	if err != nil {
		return err
	}
	s, err := rec.State()
	if err != nil || s.Status != container.StatusRunning {
		return err
	}
	sig := syscall.SIGTERM
	if s.StopSignal != "" {
		if n, err := parseSignal(s.StopSignal); err == nil {
			sig = n
		}
	}
	signalContainer(s, sig)
	if waitExit(ctx, rec, grace) {
		return nil
	}
	signalContainer(s, syscall.SIGKILL)
	waitExit(ctx, rec, 10*time.Second)
	return nil
}

// signalContainer signals the container's process if it is still the one the state names.
func signalContainer(s *container.State, sig syscall.Signal) error {
	if !container.Alive(s.Pid, s.PidStart) {
		return nil
	}
	return unix.Kill(s.Pid, sig)
}

// waitExit waits until the container has exited and its monitor recorded it, or d passes.
func waitExit(ctx context.Context, rec *container.Container, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		s, err := rec.State()
		if err != nil || s.Status != container.StatusRunning {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func newKill(e *env) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [-s SIGNAL] CONTAINER...",
		Short: "Send a signal (default SIGKILL) to containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseSignal(sig)
			if err != nil {
				return err
			}
			for _, ref := range args {
				_, s, err := runningContainer(e, ref)
				if err != nil {
					return err
				}
				if err := signalContainer(s, n); err != nil {
					return fmt.Errorf("kill %s: %w", ref, err)
				}
				fmt.Fprintln(e.stdout, ref)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send: a name (TERM, SIGTERM) or number")
	return cmd
}

func parseSignal(s string) (syscall.Signal, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := s
	if len(name) < 3 || name[:3] != "SIG" {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if n, ok := rtSignal(name); ok {
		return n, nil
	}
	return 0, fmt.Errorf("--signal %q: unknown signal", s)
}

// rtSignal reads SIGRTMIN+n and SIGRTMAX-n as Linux numbers them (RTMIN is 34 as glibc sees it).
func rtSignal(name string) (syscall.Signal, bool) {
	var n int
	switch {
	case name == "SIGRTMIN":
		return 34, true
	case name == "SIGRTMAX":
		return 64, true
	case strings.HasPrefix(name, "SIGRTMIN+"):
		if _, err := fmt.Sscanf(name, "SIGRTMIN+%d", &n); err == nil && 34+n <= 64 {
			return syscall.Signal(34 + n), true
		}
	case strings.HasPrefix(name, "SIGRTMAX-"):
		if _, err := fmt.Sscanf(name, "SIGRTMAX-%d", &n); err == nil && 64-n >= 34 {
			return syscall.Signal(64 - n), true
		}
	}
	return 0, false
}
