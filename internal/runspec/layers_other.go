//go:build !unix

package runspec

import (
	"io/fs"
	"os"
)

func openNoFollow(name string) (*os.File, error) { return os.Open(name) }

// isWhiteoutDevice: device nodes exist only on Unix.
func isWhiteoutDevice(fs.FileInfo) bool { return false }
