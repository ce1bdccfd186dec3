package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/container"
)

func newPs(e *env) *cobra.Command {
	var all, quiet, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [-a] [-q] [--no-trunc] [--format table|json]",
		Short: "List containers",
		Long:  "List running containers (all with -a). The state is read from disk and checked against the live processes, so a container whose monitor was killed shows as exited.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := container.Open(e.root)
			if err != nil {
				return err
			}
			defer sweepNetworks() // after List has refreshed the states of the dead
			states, err := cs.List()
			if err != nil {
				return err
			}
			states = reapAutoRemove(e, cs, states)
			var shown []*container.State
			for _, s := range states {
				if all || s.Status == container.StatusRunning {
					shown = append(shown, s)
				}
			}
			switch {
			case quiet:
				for _, s := range shown {
					fmt.Fprintln(e.stdout, shortID(s.ID, noTrunc))
				}
				return nil
			case format == "json":
				if shown == nil {
					shown = []*container.State{}
				}
				return writeJSON(e, shown)
			case format == "table" || format == "":
				return psTable(e, shown, noTrunc)
			}
			return fmt.Errorf("--format %q: want table or json", format)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers, not only running ones")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the container IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "print whole IDs, not their first 12 characters")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// reapAutoRemove removes the --rm containers that exited with nobody left to remove them (their
// kiln or monitor was killed), as Docker's daemon would have, and returns the other states.
func reapAutoRemove(e *env, cs *container.Containers, states []*container.State) []*container.State {
	var kept []*container.State
	for _, s := range states {
		if s.AutoRemove && s.Status == container.StatusExited && !container.Alive(s.MonitorPid, s.MonitorStart) {
			if rec, err := cs.Get(s.ID); err == nil {
				discardContainer(e.root, rec)
				continue
			}
		}
		kept = append(kept, s)
	}
	return kept
}

// shortID is id's first 12 characters, as Docker shows it, or all of it with whole.
func shortID(id string, whole bool) string {
	if whole || len(id) < 12 {
		return id
	}
	return id[:12]
}

func psTable(e *env, states []*container.State, noTrunc bool) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, s := range states {
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%s\t%s\n", shortID(s.ID, noTrunc), s.Image, since(s.Created), statusLine(s), portsLine(s), s.Name)
	}
	return tw.Flush()
}

// portsLine reads like Docker's: "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp", for a
// running container.
func portsLine(s *container.State) string {
	if s.Status != container.StatusRunning {
		return ""
	}
	parts := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		parts[i] = fmt.Sprintf("%s->%d/%s", hostAddr(p), p.ContainerPort, p.Protocol)
	}
	return strings.Join(parts, ", ")
}

// statusLine reads like Docker's: "Up 3 minutes", "Exited (0) 2 seconds ago".
func statusLine(s *container.State) string {
	switch s.Status {
	case container.StatusRunning:
		return "Up " + since(s.Started)
	case container.StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, since(s.Finished))
	}
	return strings.Title(string(s.Status))
}

func since(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return plural(int(d.Seconds()), "second")
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute")
	case d < 48*time.Hour:
		return plural(int(d.Hours()), "hour")
	}
	return plural(int(d.Hours()/24), "day")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
