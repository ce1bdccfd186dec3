// Package runspec turns an image config and the flags of `kiln run` into the
// OCI runtime-spec (specs.Spec) that internal/runtime executes, with Docker's
// rules (entrypoint/cmd/args, env, -w, -u, --hostname) and Docker's default
// security (14 capabilities, no_new_privs, seccomp, masked and read-only
// paths, device cgroup allow-list, read-only /sys).
//
// It is pure: it reads only the image's /etc/passwd and /etc/group from the
// unpacked layer directories it is given (with overlayfs semantics), plus the
// files the user names (--env-file, --security-opt seccomp=FILE). It never
// creates, mounts or stats anything else on the host: bind sources arrive
// already resolved, and the runtime makes what the spec asks for.
//
// Typical use:
//
//	spec, err := runspec.Build(runspec.Options{
//		ID:        id,
//		Image:     cfg, // *v1.ConfigFile
//		Args:      args,
//		LayerDirs: dirs, // top layer first
//		RootPath:  "/var/lib/kiln/containers/" + id + "/rootfs",
//		HostEnv:   os.LookupEnv,
//	})
//
// Where kiln differs from Docker, it is on purpose and said at the place in
// the code: no_new_privs is on by default; rlimits are inherited from kiln
// (there is no daemon to take them from); --privileged does not copy the
// host's device nodes into /dev (the device cgroup allows all, so the
// workload may mknod what it needs).
package runspec
