//go:build !unix

package runspec

import "errors"

var errNoSpecialFiles = errors.New("no device nodes, FIFOs or overlay xattrs here")

func setOpaqueXattr(string) error { return errNoSpecialFiles }
func mknodWhiteout(string) error  { return errNoSpecialFiles }
func mkfifo(string) error         { return errNoSpecialFiles }
