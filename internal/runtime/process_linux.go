package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/seccomp"
)

// startWorkload applies the process's limits, identity and filters in the order that keeps each
// step possible (the bounding set needs CAP_SETPCAP, the user change needs CAP_SETUID, seccomp
// comes last so kiln's own syscalls are not filtered), then execs it.
func startWorkload(g *gate, s *specs.Spec, filter []unix.SockFilter) error {
	p := s.Process
	c, err := capsOf(p.Capabilities)
	if err != nil {
		return errorf(125, "capabilities: %v", err)
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if err := chdirInRoot(p.Cwd); err != nil {
		return err
	}
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	// Nothing of the workload's may run before the parent has put us in the container's cgroups.
	if err := g.wait(); err != nil {
		return err
	}
	if err := closeInherited(); err != nil {
		return err
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have it.
	if !p.NoNewPrivileges {
		if err := loadSeccomp(filter); err != nil {
			return err
		}
	}
	// The reaper, and an exec's helper, live on beside the workload (see reap and initExec). The
	// reaper stays inside the container: every thread of it drops privileges. The helper stays
	// outside it, and the command inherits only the thread it is forked from: that one drops.
	reaper := s.Annotations[InitAnnotation] == "true"
	stays := reaper || g.mode == modeExec
	t := thisThread
	if reaper {
		t = allThreads
	}
	if err := dropPrivileges(p, c, t); err != nil {
		return err
	}
	// A change of credentials clears the parent-death signal; a container's process must still
	// die with its monitor. (Not for exec: like docker exec's, it outlives its caller.)
	if g.mode == modeRun {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return errorf(125, "pdeathsig: %v", err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return errorf(125, "no_new_privs: %v", err)
		}
		if err := loadSeccomp(filter); err != nil {
			return err
		}
	}
	unix.Umask(umask(p))
	if stays {
		return reap(g.sock, path, p, reaper)
	}
	g.sock.Write([]byte{readyByte}) // the socket closes on exec; an exec error follows it
	err = unix.Exec(path, p.Args, p.Env)
	return execError(p.Args[0], err)
}

func loadSeccomp(filter []unix.SockFilter) error {
	if filter == nil {
		return nil
	}
	if err := seccomp.Load(filter); err != nil {
		return errorf(125, "load seccomp filter: %v", err)
	}
	return nil
}

func umask(p *specs.Process) int {
	if p.User.Umask != nil {
		return int(*p.User.Umask)
	}
	return 0o022
}

func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		r, ok := rlimits[l.Type]
		if !ok {
			return errorf(125, "rlimit %s: unknown", l.Type)
		}
		if err := unix.Setrlimit(r, &unix.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			return errorf(125, "rlimit %s: %v", l.Type, err)
		}
	}
	return nil
}

var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// dropPrivileges switches to the process's user and capability sets, on the threads t (see
// threads). Keep-caps carries the permitted set across setuid; capset then trims it to what the
// spec grants.
func dropPrivileges(p *specs.Process, c caps, t threads) error {
	if err := dropBounding(c.bounding, t); err != nil {
		return errorf(125, "%v", err)
	}
	if err := t.prctl(unix.PR_SET_KEEPCAPS, 1, 0); err != nil {
		return errorf(125, "keepcaps: %v", err)
	}
	if err := setIDs(p.User, t); err != nil {
		return err
	}
	if err := t.prctl(unix.PR_SET_KEEPCAPS, 0, 0); err != nil {
		return errorf(125, "keepcaps: %v", err)
	}
	if err := applyCaps(c, t); err != nil {
		return errorf(125, "%v", err)
	}
	return nil
}

// setIDs sets the groups, GID and UID. Go's setgroups/setresgid/setresuid change every thread of
// the process, which stops each runtime thread with a signal, twice per call. An init that execs
// next needs only its own thread changed: execve takes the calling thread's credentials for the
// new program and ends the others. Until then the other threads keep root's IDs and all
// capabilities, so nothing but the Go runtime may run on them: the init starts no goroutine.
// An init that stays (the reaper) changes them all.
func setIDs(u specs.User, t threads) error {
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	setgroups, setresgid, setresuid := allThreadsSetgroups, unix.Setresgid, unix.Setresuid
	if t == thisThread {
		setgroups, setresgid, setresuid = threadSetgroups, threadSetresgid, threadSetresuid
	}
	if err := setgroups(groups); err != nil {
		return errorf(125, "setgroups %v: %v", groups, err)
	}
	if err := setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return errorf(125, "setgid %d: %v", u.GID, err)
	}
	if err := setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return errorf(125, "setuid %d: %v", u.UID, err)
	}
	return nil
}

func allThreadsSetgroups(gids []uint32) error {
	g := make([]int, len(gids))
	for i, id := range gids {
		g[i] = int(id)
	}
	return unix.Setgroups(g)
}

func threadSetgroups(gids []uint32) error {
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	_, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(gids)), uintptr(p), 0)
	return errnoErr(e)
}

func threadSetresgid(r, e, s int) error {
	_, _, errno := unix.RawSyscall(sysSetresgid, uintptr(r), uintptr(e), uintptr(s))
	return errnoErr(errno)
}

func threadSetresuid(r, e, s int) error {
	_, _, errno := unix.RawSyscall(sysSetresuid, uintptr(r), uintptr(e), uintptr(s))
	return errnoErr(errno)
}

func errnoErr(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// lookPath finds the command the way execvp does, in the container, with its PATH.
func lookPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		return name, checkExecutable(name, name)
	}
	for _, dir := range filepath.SplitList(envPath(p.Env)) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		if err := checkExecutable(name, cand); err == nil {
			return cand, nil
		}
	}
	return "", errorf(127, "exec: %q: executable file not found in $PATH", name)
}

func envPath(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

func checkExecutable(name, p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errorf(127, "exec: %q: no such file or directory", name)
	case err != nil:
		return errorf(126, "exec: %q: %v", name, err)
	case fi.IsDir():
		return errorf(126, "exec: %q: is a directory", name)
	case fi.Mode()&0o111 == 0:
		return errorf(126, "exec: %q: permission denied", name)
	}
	return nil
}

func execError(name string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		// The file exists (lookPath saw it): its interpreter or loader does not.
		return errorf(127, "exec %s: no such file or directory (a missing interpreter or dynamic loader?)", name)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EPERM):
		return errorf(126, "exec %s: %v", name, err)
	}
	return errorf(125, "exec %s: %v", name, fmt.Errorf("%w", err))
}

// closeInherited marks every descriptor above stdio close-on-exec: whatever kiln itself
// inherited from its caller must not reach the container (a leaked host fd is an escape:
// CVE-2024-21626).
func closeInherited() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return errorf(125, "close inherited descriptors: %v", err)
	}
	entries, err := os.ReadDir("/proc/self/fd") // kernels before 5.11
	if err != nil {
		return errorf(125, "close inherited descriptors: %v", err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// chdirInRoot enters the working directory as resolved inside the container's root, refusing
// magic links: a cwd planted as a symlink to /proc/self/fd/N must not reach a host directory
// through a descriptor the process still holds (CVE-2024-21626).
func chdirInRoot(dir string) error {
	if dir == "" {
		dir = "/"
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if err != nil {
		return errorf(125, "open root: %v", err)
	}
	defer unix.Close(fd)
	cwd, err := unix.Openat2(fd, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return errorf(125, "chdir to work directory %s: %v", dir, err)
	}
	defer unix.Close(cwd)
	if err := unix.Fchdir(cwd); err != nil {
		return errorf(125, "chdir to work directory %s: %v", dir, err)
	}
	return nil
}
