//go:build ignore

// hello is the demo's static program.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from a kiln image")
	os.Exit(0)
}
