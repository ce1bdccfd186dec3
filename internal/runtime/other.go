//go:build !linux

package runtime

import (
	"context"
	"errors"
	"os"
	"syscall"
)

var errNotLinux = errors.New("containers need Linux")

// Container is a running container (Linux only).
type Container struct{}

func Start(context.Context, Config) (*Container, error) { return nil, errNotLinux }
func (c *Container) Pid() int                           { return 0 }
func (c *Container) Console() *os.File                  { return nil }
func (c *Container) Wait() (Exit, error)                { return Exit{}, errNotLinux }
func (c *Container) Signal(syscall.Signal) error        { return errNotLinux }
func Init()                                             {}
