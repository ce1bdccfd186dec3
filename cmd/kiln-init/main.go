// Command kiln-init is PID 1 of an image baked by `kiln bake` and booted by `kiln boot`: it
// sets up the guest, runs the image's entrypoint, and powers off with its exit status. See
// docs/kiln-init.md. It is built static (CGO_ENABLED=0) and links only the standard library,
// golang.org/x/sys and kiln's internal/guest and internal/bootconfig.
package main

import (
	"fmt"
	"os"

	"github.com/kiln-project/kiln/internal/guest"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "kiln-init: not PID 1: it is the init of a VM baked by kiln bake, not a command to run")
		os.Exit(2)
	}
	guest.Main()
}
