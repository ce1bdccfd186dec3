package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Default returns the profile Docker applies when given no other: moby's
// profiles/seccomp/default.json as of moby/profiles seccomp/v0.2.3 (2026:
// syscalls up to kernel 6.13; AF_ALG and AF_VSOCK sockets refused), an allow
// list with defaultAction SCMP_ACT_ERRNO (EPERM), resolved for a container
// whose bounding set is caps ("CAP_SYS_ADMIN", ...) on this host.
//
// Capabilities unlock what they would let a process do anyway:
// CAP_SYS_ADMIN mount, namespaces (unshare, setns, clone with CLONE_NEW*),
// bpf, perf_event_open, ...; CAP_SYS_PTRACE kcmp, pidfd_getfd,
// process_madvise; CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_TIME, CAP_SYS_NICE,
// CAP_SYSLOG, CAP_SYS_PACCT, CAP_SYS_RAWIO, CAP_SYS_CHROOT, CAP_SYS_TTY_CONFIG,
// CAP_DAC_READ_SEARCH, CAP_BPF and CAP_PERFMON their own calls. As in Docker,
// ptrace and process_vm_{readv,writev} are allowed on kernels from 4.8, where
// ptrace can no longer be used to get around seccomp.
func Default(caps []string) *specs.LinuxSeccomp {
	p, err := dockerDefault().resolve(thisHost(caps))
	if err != nil {
		panic("seccomp: default profile: " + err.Error()) // a bug in dockerDefault, caught by tests
	}
	return p
}

// DockerDefaultCaps returns the bounding set Docker gives a container by default.
func DockerDefaultCaps() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// Flags of clone that create namespaces: CLONE_NEWNS, CLONE_NEWCGROUP,
// CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
const cloneNamespaceFlags = 0x7e020000

// Socket families refused to everyone: AF_ALG (38: kernel crypto, a long
// history of bugs) and AF_VSOCK (40: host/guest sockets).
const (
	afALG   = 38
	afVSOCK = 40
)

// dockerDefault is moby's default.json as Go values.
func dockerDefault() *dockerProfile {
	errnoEPERM, errnoENOSYS := uint(1), uint(38)
	allow := specs.ActAllow
	ifCaps := func(caps ...string) *dockerFilter { return &dockerFilter{Caps: caps} }
	ifArches := func(arches ...string) *dockerFilter { return &dockerFilter{Arches: arches} }
	arg := func(index uint, op specs.LinuxSeccompOperator, value uint64) []specs.LinuxSeccompArg {
		return []specs.LinuxSeccompArg{{Index: index, Value: value, Op: op}}
	}
	personality := func(persona uint64) dockerSyscall {
		return dockerSyscall{Names: []string{"personality"}, Action: allow, Args: arg(0, specs.OpEqualTo, persona)}
	}
	return &dockerProfile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &errnoEPERM,
		ArchMap: []dockerArchMap{
			{specs.ArchX86_64, []specs.Arch{specs.ArchX86, specs.ArchX32}},
			{specs.ArchAARCH64, []specs.Arch{specs.ArchARM}},
			{specs.ArchMIPS64, []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64N32}},
			{specs.ArchMIPS64N32, []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64}},
			{specs.ArchMIPSEL64, []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64N32}},
			{specs.ArchMIPSEL64N32, []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64}},
			{specs.ArchS390X, []specs.Arch{specs.ArchS390}},
			{specs.ArchRISCV64, nil},
			{specs.ArchLOONGARCH64, nil},
		},
		Syscalls: []dockerSyscall{
			{Names: defaultAllowed, Action: allow},
			{Names: []string{"process_vm_readv", "process_vm_writev", "ptrace"}, Action: allow,
				Includes: &dockerFilter{MinKernel: "4.8"}},
			{Names: []string{"socket"}, Action: allow, Args: arg(0, specs.OpLessThan, afALG)},
			{Names: []string{"socket"}, Action: allow, Args: arg(0, specs.OpEqualTo, afALG+1)},
			{Names: []string{"socket"}, Action: allow, Args: arg(0, specs.OpGreaterThan, afVSOCK)},
			// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff to query.
			personality(0x0), personality(0x8), personality(0x20000), personality(0x20008), personality(0xffffffff),
			{Names: []string{"sync_file_range2", "swapcontext"}, Action: allow, Includes: ifArches("ppc64le")},
			{Names: []string{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
				Action: allow, Includes: ifArches("arm", "arm64")},
			{Names: []string{"arch_prctl"}, Action: allow, Includes: ifArches("amd64", "x32")},
			{Names: []string{"modify_ldt"}, Action: allow, Includes: ifArches("amd64", "x32", "x86")},
			{Names: []string{"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"},
				Action: allow, Includes: ifArches("s390", "s390x")},
			{Names: []string{"riscv_flush_icache"}, Action: allow, Includes: ifArches("riscv64")},
			{Names: []string{"open_by_handle_at"}, Action: allow, Includes: ifCaps("CAP_DAC_READ_SEARCH")},
			{Names: []string{
				"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
				"lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
				"mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
				"setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
			}, Action: allow, Includes: ifCaps("CAP_SYS_ADMIN")},
			// Without CAP_SYS_ADMIN: clone only without namespace flags (the
			// flags are the second argument on s390), and clone3, whose flags
			// are out of reach in memory, fails with ENOSYS so libc falls back to clone.
			{Names: []string{"clone"}, Action: allow, Args: arg(0, specs.OpMaskedEqual, cloneNamespaceFlags),
				Excludes: &dockerFilter{Caps: []string{"CAP_SYS_ADMIN"}, Arches: []string{"s390", "s390x"}}},
			{Names: []string{"clone"}, Action: allow, Args: arg(1, specs.OpMaskedEqual, cloneNamespaceFlags),
				Comment:  "s390 parameter ordering for clone is different",
				Includes: ifArches("s390", "s390x"), Excludes: ifCaps("CAP_SYS_ADMIN")},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &errnoENOSYS, Excludes: ifCaps("CAP_SYS_ADMIN")},
			{Names: []string{"reboot"}, Action: allow, Includes: ifCaps("CAP_SYS_BOOT")},
			{Names: []string{"chroot"}, Action: allow, Includes: ifCaps("CAP_SYS_CHROOT")},
			{Names: []string{"delete_module", "init_module", "finit_module"}, Action: allow, Includes: ifCaps("CAP_SYS_MODULE")},
			{Names: []string{"acct"}, Action: allow, Includes: ifCaps("CAP_SYS_PACCT")},
			{Names: []string{"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
				Action: allow, Includes: ifCaps("CAP_SYS_PTRACE")},
			{Names: []string{"iopl", "ioperm"}, Action: allow, Includes: ifCaps("CAP_SYS_RAWIO")},
			{Names: []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}, Action: allow, Includes: ifCaps("CAP_SYS_TIME")},
			{Names: []string{"vhangup"}, Action: allow, Includes: ifCaps("CAP_SYS_TTY_CONFIG")},
			{Names: []string{"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}, Action: allow, Includes: ifCaps("CAP_SYS_NICE")},
			{Names: []string{"syslog"}, Action: allow, Includes: ifCaps("CAP_SYSLOG")},
			{Names: []string{"bpf"}, Action: allow, Includes: ifCaps("CAP_BPF")},
			{Names: []string{"perf_event_open"}, Action: allow, Includes: ifCaps("CAP_PERFMON")},
		},
	}
}

// defaultAllowed are the syscalls every container may make.
var defaultAllowed = []string{
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
	"capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
	"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
	"clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
	"dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
	"exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
	"fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
	"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
	"ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
	"futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
	"geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
	"getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
	"getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
	"getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
	"getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
	"inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
	"io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
	"ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
	"lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr",
	"listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64",
	"madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
	"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
	"mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
	"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
	"newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
	"pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
	"ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
	"process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
	"readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
	"recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename",
	"renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction",
	"rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
	"rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
	"sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
	"sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
	"sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
	"seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
	"sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
	"setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
	"setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
	"setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
	"set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "setxattrat", "shmat",
	"shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
	"sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64",
	"statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo",
	"tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
	"timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
	"truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
	"utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid",
	"write", "writev",
}
