package cli

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/runtime"
	"github.com/kiln-project/kiln/internal/volume"
)

func newRm(e *env) *cobra.Command {
	var force, vols bool
	cmd := &cobra.Command{
		Use:   "rm [-f] [-v] CONTAINER...",
		Short: "Remove containers and their writes",
		Long:  "Remove stopped containers: their record, log and upper directory. -f kills a running one first; -v also removes its anonymous volumes.",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			defer sweepNetworks()
			for _, ref := range args {
				if err := rmOne(e, ref, force, vols); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, ref)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it runs")
	cmd.Flags().BoolVarP(&vols, "volumes", "v", false, "remove the container's anonymous volumes")
	return cmd
}

func rmOne(e *env, ref string, force, vols bool) error {
	rec, err := getContainer(e, ref)
	if err != nil {
		return err
	}
	s, err := rec.State()
	if err != nil {
		return err
	}
	if s.Status == container.StatusRunning {
		if !force {
			return fmt.Errorf("container %s is running: stop it first, or use rm -f", ref)
		}
		signalContainer(s, syscall.SIGKILL)
		for i := 0; i < 500 && container.Alive(s.Pid, s.PidStart); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if vols && len(s.AnonVolumes) > 0 {
		vs, err := volume.Open(e.root)
		if err != nil {
			return err
		}
		for _, v := range s.AnonVolumes {
			if err := vs.Remove(v, func(string) bool { return false }); err != nil {
				return err
			}
		}
	}
	if err := rec.Remove(); err != nil {
		return err
	}
	// A monitor killed with -9 could not release the network or remove the cgroup itself.
	return errors.Join(releaseNetwork(s.ID), runtime.Cleanup(s.ID))
}

func newWait(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER...",
		Short: "Wait for containers to exit and print their exit statuses",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, ref := range args {
				rec, err := getContainer(e, ref)
				if err != nil {
					return err
				}
				for !waitExit(cmd.Context(), rec, time.Hour) {
				}
				if err := cmd.Context().Err(); err != nil {
					return err
				}
				s, err := rec.State()
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, s.ExitCode)
			}
			return nil
		},
	}
}
