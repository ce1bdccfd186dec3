//go:build linux && !s390x

package runtime

import "syscall"

// clone(2)'s first two arguments for a plain fork: no sharing, SIGCHLD at exit, no new stack.
const cloneArg0, cloneArg1 = uintptr(syscall.SIGCHLD), 0
