//go:build !unix

package flock

import (
	"context"
	"os"
)

func Open(context.Context, string, Mode, bool) (*os.File, error) { return nil, errUnsupported }
func TryOpen(string, Mode, bool) (*os.File, error)               { return nil, errUnsupported }
func Lock(context.Context, *os.File, Mode) error                 { return errUnsupported }
func TryLock(*os.File, Mode) (bool, error)                       { return false, errUnsupported }
