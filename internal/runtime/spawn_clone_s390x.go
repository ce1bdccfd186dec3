//go:build linux && s390x

package runtime

import "syscall"

// clone(2)'s first two arguments for a plain fork: on s390x the new stack comes first.
const cloneArg0, cloneArg1 = 0, uintptr(syscall.SIGCHLD)
