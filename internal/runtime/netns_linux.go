package runtime

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A container may join an existing network namespace (Path set: another container's, for
// `--network container:NAME`). The init does it, first thing, with setns(2) on its locked
// thread: that thread goes on to configure loopback and sysctls and to exec the workload, so
// the workload lives in the joined namespace, and the parent never has a thread in another
// container's namespace (forking from such a thread would tie the container's parent-death
// signal to a thread that must then exit). Only the network namespace can be joined so far.

// checkJoin refuses a namespace Path the init cannot join.
func checkJoin(ns specs.LinuxNamespace) error {
	if ns.Type != specs.NetworkNamespace {
		return fmt.Errorf("joining the %s namespace at %s is not supported", ns.Type, ns.Path)
	}
	if _, err := os.Stat(ns.Path); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	return nil
}

// joinNamespaces enters the namespaces the spec gives a Path for.
func joinNamespaces(nss []specs.LinuxNamespace) error {
	for _, ns := range nss {
		if ns.Path == "" || ns.Type != specs.NetworkNamespace {
			continue
		}
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open network namespace", Path: ns.Path, Err: err}
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "setns", Path: ns.Path, Err: err}
		}
	}
	return nil
}
