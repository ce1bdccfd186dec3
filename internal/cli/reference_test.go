package cli

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

var update = flag.Bool("update", false, "rewrite docs/cli from the command tree")

// TestCLIReference keeps docs/cli/ equal to what the cobra tree generates (make docs rewrites it).
func TestCLIReference(t *testing.T) {
	want := filepath.Join("..", "..", "docs", "cli")
	got := t.TempDir()
	root := NewRoot(nil, io.Discard, io.Discard)
	root.DisableAutoGenTag = true
	// The default store path depends on who runs the generator; show the documented default.
	root.PersistentFlags().Lookup("root").DefValue = "/var/lib/kiln"
	walk(root, func(c *cobra.Command) { c.DisableAutoGenTag = true })
	if err := doc.GenMarkdownTree(root, got); err != nil {
		t.Fatal(err)
	}
	if *update {
		os.RemoveAll(want)
		if err := os.CopyFS(want, os.DirFS(got)); err != nil {
			t.Fatal(err)
		}
		return
	}
	entries, _ := os.ReadDir(got)
	for _, e := range entries {
		g, _ := os.ReadFile(filepath.Join(got, e.Name()))
		w, err := os.ReadFile(filepath.Join(want, e.Name()))
		if err != nil || !bytes.Equal(g, w) {
			t.Errorf("docs/cli/%s is out of date: run make docs", e.Name())
		}
	}
	have, _ := os.ReadDir(want)
	if len(have) != len(entries) {
		t.Errorf("docs/cli has %d files, the command tree %d: run make docs", len(have), len(entries))
	}
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}
