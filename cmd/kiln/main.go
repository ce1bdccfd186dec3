// Command kiln builds minimal, reproducible OCI images. See docs/ and `kiln --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kiln-project/kiln/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
