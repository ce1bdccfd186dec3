package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/volume"
)

func newVolume(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage named and anonymous volumes"}
	cmd.AddCommand(
		&cobra.Command{Use: "ls", Short: "List volumes", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return volumeLs(e) }},
		&cobra.Command{Use: "inspect VOLUME...", Short: "Show volumes as JSON", Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return volumeInspect(e, args) }},
		&cobra.Command{Use: "rm VOLUME...", Short: "Remove volumes no container uses", Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return volumeRm(e, args) }},
	)
	return cmd
}

func volumeLs(e *env) error {
	vs, err := volume.Open(e.root)
	if err != nil {
		return err
	}
	list, err := vs.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "VOLUME NAME\tANONYMOUS\tMOUNTPOINT")
	for _, v := range list {
		fmt.Fprintf(tw, "%s\t%v\t%s\n", v.Name, v.Anonymous, v.Dir)
	}
	return tw.Flush()
}

func volumeInspect(e *env, names []string) error {
	vs, err := volume.Open(e.root)
	if err != nil {
		return err
	}
	var out []*volume.Volume
	for _, n := range names {
		v, err := vs.Get(n)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(e, out)
}

func volumeRm(e *env, names []string) error {
	vs, err := volume.Open(e.root)
	if err != nil {
		return err
	}
	users, err := volumeUsers(e)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := vs.Remove(n, func(name string) bool { return len(users[name]) > 0 }); err != nil {
			if u := users[n]; len(u) > 0 {
				return fmt.Errorf("volume %s is in use by container %v: %w", n, u, err)
			}
			return err
		}
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

// volumeUsers maps each volume to the containers (running or not) that use it.
func volumeUsers(e *env) (map[string][]string, error) {
	cs, err := container.Open(e.root)
	if err != nil {
		return nil, err
	}
	states, err := cs.List()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, s := range states {
		for _, v := range append(append([]string{}, s.Volumes...), s.AnonVolumes...) {
			users[v] = append(users[v], s.Name)
		}
	}
	return users, nil
}
