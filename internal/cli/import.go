package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/archive"
)

func newImport(e *env) *cobra.Command {
	var tags []string
	cmd := &cobra.Command{
		Use:   "import ROOTFS.tar [-t name:tag]",
		Short: "Make a one-layer image of a root filesystem tarball",
		Long: `Make a one-layer image of a plain root filesystem tarball (uncompressed, gzip or zstd), such as
debootstrap --make-tarball or "tar -C rootfs -c ." make, for use as a base. The tar is untrusted
input: an entry that would write outside the root is refused and the store is left unchanged.
The default tag is the file's name without its extensions. Prints the image's digest.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(tags) == 0 {
				tags = []string{importName(args[0])}
			}
			epoch, err := sourceDateEpoch()
			if err != nil {
				return err
			}
			img, err := archive.ImportRootfs(args[0], epoch)
			if err != nil {
				return err
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
			d, err := tx.WriteImage(img)
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			for _, t := range tags {
				if err := tx.Tag(t, d); err != nil {
					return err
				}
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "imported %s as %v\n", args[0], tags)
			fmt.Fprintln(e.stdout, d)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&tags, "tag", "t", nil, "name:tag for the image, repeatable")
	return cmd
}

// importName is "debian" for ".../debian.tar.gz".
func importName(path string) string {
	base := strings.ToLower(filepath.Base(path))
	for _, ext := range []string{".gz", ".tgz", ".zst", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}
