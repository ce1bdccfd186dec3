package runspec

import "golang.org/x/sys/unix"

// hostHostname is the host's node name, from uname(2): no file is read.
func hostHostname() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Nodename[:])
}
