// Package cli is kiln's command line: one file per verb. It parses flags, calls the packages that
// do the work, and is the only place that writes to the terminal.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/store"
)

// env is what every command gets: where to write and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	root           string
	verbose        bool
}

// exitError carries an exit status without a message of its own (the command printed it).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Execute runs kiln with args and returns its exit status.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := NewRoot(stdin, stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "kiln: %v\n", err)
	return 1
}

// NewRoot builds the command tree.
func NewRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Build minimal, reproducible OCI images from host binaries",
		Long: `kiln builds minimal OCI images from a declarative kiln.yaml: host binaries with their
shared-library closure, files, trees and accounts, written as deterministic layers into a
content-addressed store. Images move in and out as OCI archives and docker archives.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&e.root, "root", defaultRoot(),
		"directory holding kiln's store (env KILN_ROOT)")
	root.PersistentFlags().BoolVar(&e.verbose, "verbose", false, "log more detail to stderr")
	root.AddCommand(
		newBuild(e), newImages(e), newInspect(e), newRmi(e), newTag(e),
		newGC(e), newCheck(e), newSave(e), newLoad(e), newVersion(e),
		newRun(e), newImport(e), newPs(e), newLogs(e), newStop(e), newKill(e), newRm(e), newWait(e), newExec(e), newVolume(e),
		newPush(e), newPull(e), newLogin(e), newLogout(e),
		newNetwork(e), newPort(e), newStats(e), newBake(e), newBoot(e),
	)
	return root
}

// defaultRoot is $KILN_ROOT, else /var/lib/kiln for root, else $XDG_DATA_HOME/kiln.
func defaultRoot() string {
	if r := os.Getenv("KILN_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/kiln"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "kiln")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "kiln")
}

func (e *env) store() (*store.Store, error) { return store.Open(e.root) }

// logger writes progress lines to stderr: "msg key=value ...".
func (e *env) logger() *slog.Logger {
	level := slog.LevelInfo
	if e.verbose {
		level = slog.LevelDebug
	}
	return slog.New(&lineHandler{w: e.stderr, level: level})
}
