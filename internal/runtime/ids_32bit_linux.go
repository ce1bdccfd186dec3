//go:build linux && (386 || arm)

package runtime

import "golang.org/x/sys/unix"

// On 386 and arm the plain syscalls take 16-bit IDs; the *32 ones take what the others do.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
