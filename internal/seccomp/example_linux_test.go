package seccomp_test

import (
	"log"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/seccomp"
)

// The end of a container's init: compile early, then no_new_privs, Load and execve on one thread.
func ExampleLoad() {
	prog, err := seccomp.Compile(seccomp.Default(seccomp.DockerDefaultCaps()))
	if err != nil {
		log.Fatal(err)
	}
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		log.Fatal(err)
	}
	if err := seccomp.Load(prog); err != nil {
		log.Fatal(err)
	}
	log.Fatal(unix.Exec("/bin/sh", []string{"sh"}, nil))
}
