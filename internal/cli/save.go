package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/archive"
)

func newSave(e *env) *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "save IMAGE -o FILE [--format oci|docker]",
		Short: "Write an image to an OCI archive or a docker-archive",
		Long: `Write IMAGE to FILE as an OCI archive (default; skopeo's oci-archive:, podman load) or a
docker-archive (docker load, podman load, skopeo's docker-archive:). "-o -" writes to stdout.
The same image always gives the same bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := archive.ParseFormat(format)
			if err != nil {
				return err
			}
			return runSave(e, args[0], out, f)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (required; - for stdout)")
	cmd.Flags().StringVar(&format, "format", "oci", "archive format: oci or docker")
	cmd.MarkFlagRequired("output")
	return cmd
}

func runSave(e *env, ref, out string, format archive.Format) error {
	st, err := e.store()
	if err != nil {
		return err
	}
	d, err := st.Resolve(ref)
	if err != nil {
		return err
	}
	img, err := st.Image(d)
	if err != nil {
		return err
	}
	tagged, err := st.List()
	if err != nil {
		return err
	}
	name := archiveName(ref, tagsOf(tagged, d))
	if out == "-" {
		return archive.Save(e.stdout, img, name, format)
	}
	// Write beside the target and rename, so a failed save leaves no half archive.
	tmp, err := os.CreateTemp(filepath.Dir(out), ".kiln-save-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := archive.Save(tmp, img, name, format); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", ref, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// archiveName is the name:tag recorded in the archive: the one asked for when it is a tag, else the
// image's first tag, else none.
func archiveName(ref string, tags []string) string {
	for _, t := range tags {
		if t == ref || t == ref+":latest" {
			return t
		}
	}
	if len(tags) > 0 {
		return tags[0]
	}
	return ""
}
