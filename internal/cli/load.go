package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/archive"
)

func newLoad(e *env) *cobra.Command {
	var in string
	var tags []string
	cmd := &cobra.Command{
		Use:   "load -i FILE|DIR [-t name:tag]",
		Short: "Load images from an OCI archive, a docker-archive or an OCI layout directory",
		Long: `Load every image in FILE (an OCI archive or a docker-archive, gzip-compressed or not) or in DIR
(an OCI image layout). The input is untrusted: every digest is verified and a layer that would write
outside its root is rejected; on any error the store is left unchanged. Prints each image's digest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd, e, in, tags)
		},
	}
	cmd.Flags().StringVarP(&in, "input", "i", "", "archive file or OCI layout directory (required)")
	cmd.Flags().StringArrayVarP(&tags, "tag", "t", nil, "tag the loaded image (only when the input holds one image)")
	cmd.MarkFlagRequired("input")
	return cmd
}

func runLoad(cmd *cobra.Command, e *env, in string, extra []string) error {
	imgs, cleanup, err := archive.Load(in)
	defer cleanup()
	if err != nil {
		return err
	}
	if len(extra) > 0 && len(imgs) != 1 {
		return fmt.Errorf("load %s: -t needs exactly one image, the input holds %d", in, len(imgs))
	}
	st, err := e.store()
	if err != nil {
		return err
	}
	tx, err := st.Begin(cmd.Context())
	if err != nil {
		return err
	}
	defer tx.Abort()
	var lines []string
	for _, l := range imgs {
		d, err := tx.WriteImage(l.Image)
		if err != nil {
			return fmt.Errorf("load %s: %w", in, err)
		}
		tags := slices.Concat(l.Tags, extra)
		for _, t := range tags {
			if err := tx.Tag(t, d); err != nil {
				return err
			}
		}
		if len(tags) == 0 {
			fmt.Fprintf(e.stderr, "warning: %s has no tag; tag it with kiln load -t or it is removed by kiln gc\n", d)
		}
		lines = append(lines, fmt.Sprintf("%s %v", d, tags))
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	return nil
}
