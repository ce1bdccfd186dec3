//go:build !linux

package boot

import (
	"errors"
	"syscall"
)

func openKVM() error { return errors.New("KVM is Linux's") }

func dieWithParent() *syscall.SysProcAttr { return nil }
