// Command kiln builds minimal, reproducible OCI images. See docs/ and `kiln --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kiln-project/kiln/internal/cli"
	"github.com/kiln-project/kiln/internal/runtime"
)

func main() {
	// A container's init and a detached container's monitor are kiln re-executed under another
	// name; each runs and exits here.
	runtime.Init()
	cli.Monitor()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx; restoring default handling then lets a second one kill kiln.
	context.AfterFunc(ctx, stop)
	code := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
