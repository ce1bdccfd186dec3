// Command kiln builds minimal, reproducible OCI images. See docs/ and `kiln --help`.

// The Go runtime's cgroup-aware GOMAXPROCS would keep two cgroup files open in every kiln
// process: a container's init and its --init reaper among them, which would hold host cgroupfs
// files for the container's life. kiln sizes nothing by GOMAXPROCS.
//go:debug containermaxprocs=0

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kiln-project/kiln/internal/cli"
	_ "github.com/kiln-project/kiln/internal/runtime" // a container's init runs from its initialiser
)

func main() {
	// A detached container's monitor is kiln re-executed under another name; it runs and exits
	// here. (So does a container's init, earlier, from internal/runtime's initialiser.)
	cli.Monitor()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx; restoring default handling then lets a second one kill kiln.
	context.AfterFunc(ctx, stop)
	code := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
