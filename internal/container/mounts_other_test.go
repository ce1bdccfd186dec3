//go:build !linux

package container

import "errors"

func bindMount(src, dst string) error { return errors.ErrUnsupported }
