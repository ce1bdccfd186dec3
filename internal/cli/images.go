package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/store"
)

// imageRow is one tag in `kiln images`. Created, Size and Layers are null for an image that
// cannot be read (a blob missing or corrupt); Error then says why.
type imageRow struct {
	Name    string     `json:"name"`
	Tag     string     `json:"tag"`
	Digest  string     `json:"digest"`
	Created *time.Time `json:"created"`
	Size    *int64     `json:"size"` // manifest, config and compressed layers
	Layers  *int       `json:"layers"`
	Error   string     `json:"error,omitempty"`
}

func newImages(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "images [--format table|json]",
		Short: "List the images in the store",
		Long:  "List every tagged image: name, tag, manifest digest, creation time and stored size (compressed).",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.store()
			if err != nil {
				return err
			}
			rows, err := imageRows(st)
			if err != nil {
				return err
			}
			switch format {
			case "json":
				err = writeJSON(e, rows)
			case "table", "":
				err = imagesTable(e, rows)
			default:
				return fmt.Errorf("--format %q: want table or json", format)
			}
			if err != nil {
				return err
			}
			return brokenImages(e, rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// imageRows lists every tag; an image that cannot be described still has its row, with the error.
func imageRows(st *store.Store) ([]imageRow, error) {
	tagged, err := st.List()
	if err != nil {
		return nil, err
	}
	rows := make([]imageRow, 0, len(tagged))
	for _, t := range tagged {
		name, tag := splitRef(t.Ref)
		row := imageRow{Name: name, Tag: tag, Digest: t.Digest.String()}
		if d, err := describe(st, t.Digest); err != nil {
			row.Error = err.Error()
		} else {
			n := len(d.Layers)
			row.Created, row.Size, row.Layers = &d.Created, &d.Size, &n
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// brokenImages prints the error of each row that has one, after the listing, as ls does for an
// entry it cannot read, and then fails: a script must not take a partial listing for a healthy store.
func brokenImages(e *env, rows []imageRow) error {
	broken := 0
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(e.stderr, "kiln: %s:%s: %s\n", r.Name, r.Tag, r.Error)
			broken++
		}
	}
	if broken > 0 {
		return exitError{1}
	}
	return nil
}

// splitRef splits "name:tag" at the last colon after the last slash (so a registry's host:port
// stays in the name), the rule the store applies when it normalises a reference.
func splitRef(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

func imagesTable(e *env, rows []imageRow) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTAG\tDIGEST\tCREATED\tSIZE")
	for _, r := range rows {
		created, sz := "?", "?"
		if r.Error == "" {
			created, sz = r.Created.UTC().Format(time.RFC3339), size(*r.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Tag, shortDigest(r.Digest), created, sz)
	}
	return tw.Flush()
}

func shortDigest(d string) string {
	_, hex, _ := strings.Cut(d, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
