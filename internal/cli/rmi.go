package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRmi(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove image tags",
		Long: `Remove the tag name[:tag], or every tag of sha256:DIGEST (or a unique prefix).
Blobs no other image uses are freed by "kiln gc".`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.store()
			if err != nil {
				return err
			}
			for _, ref := range args {
				removed, err := st.Untag(ref)
				if err != nil {
					return err
				}
				for _, r := range removed {
					fmt.Fprintf(e.stdout, "untagged %s\n", r)
				}
			}
			return nil
		},
	}
}
