//go:build !linux

package runtime

import (
	"context"
	"errors"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var errNotLinux = errors.New("containers need Linux")

// Container is a running container (Linux only).
type Container struct{}

// ExecConfig describes a process to run in a running container (Linux only).
type ExecConfig struct {
	Pid     int
	Process *specs.Process
	Seccomp *specs.LinuxSeccomp
	Stdio   Stdio
}

// Early is a container's init started early (Linux only).
type Early struct{}

func StartEarly(string, []specs.LinuxNamespace, Stdio, bool) (*Early, error) { return nil, errNotLinux }
func (e *Early) Abort()                                                      {}

func Start(context.Context, Config) (*Container, error)    { return nil, errNotLinux }
func Exec(context.Context, ExecConfig) (*Container, error) { return nil, errNotLinux }
func (c *Container) Pid() int                              { return 0 }
func (c *Container) Console() *os.File                     { return nil }
func (c *Container) Wait() (Exit, error)                   { return Exit{}, errNotLinux }
func (c *Container) Signal(syscall.Signal) error           { return errNotLinux }
func Init()                                                {}
func Cleanup(string) error                                 { return nil }
func SweepCgroups() int                                    { return 0 }
