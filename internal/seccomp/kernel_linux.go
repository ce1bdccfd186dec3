package seccomp

import "golang.org/x/sys/unix"

// runningKernel is the version of the running kernel, 0.0 if unknown (so
// that no minKernel holds).
func runningKernel() kernelVersion {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return kernelVersion{}
	}
	return parseRelease(unix.ByteSliceToString(u.Release[:]))
}
