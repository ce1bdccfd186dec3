// Package devcgroup enforces a container's device allow-list on cgroup2: it
// compiles runtime-spec device rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program and attaches it to the container's cgroup2 directory, which is what
// keeps a container holding CAP_MKNOD from opening a host disk.
//
// It owns the rule semantics (Compile), loading and attaching the program
// (Attach) and finding the cgroup2 mount (Unified). It never creates, joins
// or removes cgroups, and never touches the v1 devices controller.
//
// Starting a container on a host with a cgroup2 hierarchy:
//
//	dir := filepath.Join(devcgroup.Unified(), "kiln", id) // made by the runtime
//	if err := devcgroup.Attach(dir, spec.Linux.Resources.Devices); err != nil { ... }
//	// then start the init with CLONE_INTO_CGROUP on dir
//
// The kernel runs the program on every mknod and open of a device node by a
// process in dir or below, on cgroup2-only and hybrid hosts alike (the
// program hangs off the process's cgroup2 cgroup whether or not any
// controller is enabled there). It is written by hand from the handful of
// eBPF instructions in compile_linux.go; kiln uses no eBPF library.
package devcgroup
