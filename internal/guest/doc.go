// Package guest is kiln-init, PID 1 of a baked kiln image booted as a microVM. It owns the
// guest's side of the bootconfig contract, as a short sequence of named steps:
//
//  1. mount the pseudo filesystems (/proc, /sys, /dev, /dev/pts, /dev/shm, /tmp, /run)
//  2. open the serial ports for the app's stdout and stderr (bootconfig.PortStdout, PortStderr);
//     the status port, both ways, is opened once the app has started
//  3. read the baked config (bootconfig.Path) and apply the kernel command line's kiln.* parameters
//  4. load the kernel modules the command line asks for (virtio_mmio, virtio_net, 9p, ...)
//  5. bring up loopback, and the first NIC when the config has a network
//  6. set the hostname, write /etc/resolv.conf, mount the 9P shares
//  7. run the app (args, env, workdir, uid:gid) writing to pipes it relays to the ports, forward
//     signals to it (the guest's, and the host's "kiln-signal N" lines on the status port), reap
//     orphans
//  8. when the app exits: kill what is left, let the relays finish, drain the ports, write any
//     "kiln-warning" lines and "kiln-exit N" on the status port, drain it, sync, power off; each
//     wait ends early only when nothing has moved for a while
//
// A failing step is reported on the stderr port (or the console) and ends the boot with status
// 125; a command that cannot be found is 127, one that cannot be run 126. PID 1 must never exit
// (the kernel would panic), so every path ends in a power-off.
//
// It imports only the standard library, golang.org/x/sys and internal/bootconfig: kiln-init is
// copied into every baked image and must stay small and static. It never touches the host.
package guest
