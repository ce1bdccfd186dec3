package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCheck(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Verify every blob's digest and every reference in the store",
		Long:  "Re-hash every blob and check that every tag's manifest, config and layers exist. Exits 1 and lists the problems if any.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.store()
			if err != nil {
				return err
			}
			problems, err := st.Check(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(e.stdout, p.String())
			}
			if len(problems) > 0 {
				fmt.Fprintf(e.stderr, "kiln: check found %d problems\n", len(problems))
				return exitError{1}
			}
			fmt.Fprintln(e.stderr, "store is consistent")
			return nil
		},
	}
}
