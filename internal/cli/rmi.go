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

func newTag(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name:tag",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.store()
			if err != nil {
				return err
			}
			return st.Tag(args[0], args[1])
		},
	}
}

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
