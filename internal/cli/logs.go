package cli

import (
	"fmt"
	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/container"
)

func newLogs(e *env) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] CONTAINER",
		Short: "Print a detached container's output",
		Long:  "Print what a detached container wrote to stdout and stderr; with -f, keep printing until it exits.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rec, err := getContainer(e, args[0])
			if err != nil {
				return err
			}
			done := func() bool {
				s, err := rec.State()
				return err != nil || s.Status != container.StatusRunning
			}
			return container.Follow(cmd.Context(), rec.LogPath(), e.stdout, follow, done)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the container exits")
	return cmd
}

func getContainer(e *env, ref string) (*container.Container, error) {
	cs, err := container.Open(e.root)
	if err != nil {
		return nil, err
	}
	return cs.Get(ref)
}

// runningContainer is getContainer for a verb that needs the container running: its record and
// its refreshed state, or an error naming ref.
func runningContainer(e *env, ref string) (*container.Container, *container.State, error) {
	rec, err := getContainer(e, ref)
	if err != nil {
		return nil, nil, err
	}
	s, err := rec.State()
	if err != nil {
		return nil, nil, err
	}
	if s.Status != container.StatusRunning {
		return nil, nil, fmt.Errorf("container %s is not running", ref)
	}
	return rec, s, nil
}
