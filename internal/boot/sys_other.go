//go:build !linux

package boot

import (
	"errors"
	"os"
	"syscall"
)

func openKVM() error { return errors.New("KVM is Linux's") }

func qemuAttr() *syscall.SysProcAttr { return nil }

func socketPair() (*os.File, *os.File, error) { return nil, nil, errors.New("kiln boot runs on Linux") }

func forwardable(syscall.Signal) bool { return false }
