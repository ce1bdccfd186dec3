package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newGC(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs no tagged image references",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.store()
			if err != nil {
				return err
			}
			rep, err := st.GC(cmd.Context())
			if err != nil {
				return err
			}
			for _, d := range rep.Removed {
				fmt.Fprintf(e.stdout, "removed %s\n", d)
			}
			fmt.Fprintf(e.stderr, "freed %s in %d blobs\n", size(rep.Freed), len(rep.Removed))
			return nil
		},
	}
}
