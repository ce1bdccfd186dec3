package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests re-run the test binary as a helper process, which loads
// a filter (on all its threads, for good) and reports what its syscalls return.
const helperEnv = "KILN_SECCOMP_HELPER"

func TestMain(m *testing.M) {
	if scenario := os.Getenv(helperEnv); scenario != "" {
		os.Exit(helper(scenario))
	}
	os.Exit(m.Run())
}

// probe makes one syscall and returns its errno (0: success).
type probe func() unix.Errno

func raw(nr uintptr, args ...uintptr) probe {
	return func() unix.Errno {
		var a [6]uintptr
		copy(a[:], args)
		r, _, errno := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		if errno == 0 && isFD(nr) {
			unix.Close(int(r))
		}
		return errno
	}
}

func isFD(nr uintptr) bool { return nr == unix.SYS_SOCKET || nr == unix.SYS_OPENAT }

// cstr is a NUL-terminated copy of s, kept alive for the test binary's life.
func cstr(s string) uintptr {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	return uintptr(unsafe.Pointer(p))
}

const missing = "/nonexistent-kiln-seccomp-test"

var atFDCWD = uintptr(int64(unix.AT_FDCWD) & 0xffffffff) // an int argument: the kernel reads the low word

// probes are run in this order; the ones that could change the helper
// (personality, unshare) come last.
var probes = []struct {
	name string
	call probe
}{
	{"getpid", raw(unix.SYS_GETPID)},
	{"write", func() unix.Errno {
		_, err := unix.Write(2, nil)
		return errnoOf(err)
	}},
	{"openat", raw(unix.SYS_OPENAT, atFDCWD, cstr("/dev/null"), unix.O_RDONLY)},
	{"threads", threads},
	{"exec", func() unix.Errno { return errnoOf(exec.Command("/bin/true").Run()) }},
	{"personality-query", raw(unix.SYS_PERSONALITY, 0xffffffff)},
	{"socket-inet", raw(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)},
	{"socket-unix", raw(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)},
	{"ptrace", raw(unix.SYS_PTRACE, unix.PTRACE_PEEKUSR, 0x7ffffff0)},
	{"process_vm_readv", raw(unix.SYS_PROCESS_VM_READV, 0x7ffffff0, 0, 0, 0, 0, 1)},
	{"chroot", raw(unix.SYS_CHROOT, cstr(missing))},
	{"syscall-1000", raw(1000)},

	{"keyctl", raw(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, ^uintptr(98), 0)},
	{"add_key", raw(unix.SYS_ADD_KEY, cstr("user"), 0, 0, 0, ^uintptr(1))},
	{"request_key", raw(unix.SYS_REQUEST_KEY, cstr("user"), 0, 0, 0)},
	{"mount", raw(unix.SYS_MOUNT, cstr("none"), cstr(missing), cstr("tmpfs"), 0, 0)},
	{"umount2", raw(unix.SYS_UMOUNT2, cstr(missing), 0)},
	{"reboot", raw(unix.SYS_REBOOT, 0, 0, 0, 0)}, // bad magic: refused by any kernel
	{"init_module", raw(unix.SYS_INIT_MODULE, 0, 0, cstr(""))},
	{"finit_module", raw(unix.SYS_FINIT_MODULE, ^uintptr(0), cstr(""), 0)},
	{"kexec_load", raw(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xdead0000)}, // bad flags
	{"kcmp", raw(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(os.Getpid()), 99, 0, 0)},
	{"setns", raw(unix.SYS_SETNS, ^uintptr(0), 0)},
	{"bpf", raw(unix.SYS_BPF, 999, 0, 0)},
	{"perf_event_open", raw(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0)},
	{"open_by_handle_at", raw(unix.SYS_OPEN_BY_HANDLE_AT, ^uintptr(0), 0, 0)},
	{"swapon", raw(unix.SYS_SWAPON, cstr(missing), 0)},
	{"pivot_root", raw(unix.SYS_PIVOT_ROOT, cstr(missing), cstr(missing))},
	{"socket-vsock", raw(unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM, 0)},
	{"socket-alg", raw(unix.SYS_SOCKET, unix.AF_ALG, unix.SOCK_SEQPACKET, 0)},
	// CLONE_NEWNS with CLONE_FS is refused by any kernel before anything is made.
	{"clone-newns", raw(unix.SYS_CLONE, unix.CLONE_NEWNS|unix.CLONE_FS)},
	{"clone3", raw(unix.SYS_CLONE3, 0, 0)},
	{"personality-noaslr", raw(unix.SYS_PERSONALITY, 0x0040000)}, // ADDR_NO_RANDOMIZE
	// A multi-threaded process cannot join a new user namespace: EINVAL.
	{"unshare-user", raw(unix.SYS_UNSHARE, unix.CLONE_NEWUSER)},
}

// threads makes the runtime start new OS threads (clone with CLONE_THREAD).
func threads() unix.Errno {
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			runtime.LockOSThread() // each on a thread of its own, so some are new
			<-ready
		})
	}
	close(ready)
	wg.Wait()
	return 0
}

func errnoOf(err error) unix.Errno {
	var errno unix.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	}
	return unix.EIO
}

// customProfile exercises arguments, 64-bit values and errnoRet.
func customProfile() *specs.LinuxSeccomp {
	enomsg, edom, enotty, etime := uint(unix.ENOMSG), uint(unix.EDOM), uint(unix.ENOTTY), uint(unix.ETIME)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: &enomsg,
				Args: []specs.LinuxSeccompArg{{Index: 2, Op: specs.OpEqualTo, Value: unix.SEEK_END}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: &edom,
				Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpGreaterThan, Value: 1 << 32}}},
			{Names: []string{"getpgid"}, Action: specs.ActErrno, ErrnoRet: &enotty,
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xff00, ValueTwo: 0x1200}}},
			{Names: []string{"getcpu"}, Action: specs.ActErrno, ErrnoRet: &etime},
		},
	}
}

func lseek(off int64, whence int) probe {
	return func() unix.Errno {
		f, err := os.Open("/dev/null")
		if err != nil {
			return unix.EIO
		}
		defer f.Close()
		return raw(unix.SYS_LSEEK, f.Fd(), uintptr(off), uintptr(whence))()
	}
}

var customProbes = []struct {
	name string
	call probe
}{
	{"lseek-end", lseek(0, unix.SEEK_END)},
	{"lseek-set", lseek(0, unix.SEEK_SET)},
	{"lseek-above-4G", lseek(1<<32+1, unix.SEEK_SET)},
	{"lseek-4G", lseek(1<<32, unix.SEEK_SET)},
	{"lseek-low-word-big", lseek(0xffffffff, unix.SEEK_SET)},
	{"getpgid-0x1234", raw(unix.SYS_GETPGID, 0x1234)},
	{"getpgid-0x1334", raw(unix.SYS_GETPGID, 0x1334)},
	{"getpgid-self", raw(unix.SYS_GETPGID, 0)},
	{"getcpu", raw(unix.SYS_GETCPU, 0, 0, 0)},
}

// helper runs in the re-executed test binary: it loads the scenario's
// filter and prints {"probe": "errno name"} on stdout.
func helper(scenario string) int {
	runtime.LockOSThread()
	var profile *specs.LinuxSeccomp
	todo := probes
	switch scenario {
	case "control":
	case "default", "x32":
		profile = Default(DockerDefaultCaps())
	case "sys-admin":
		profile = Default(append(DockerDefaultCaps(), "CAP_SYS_ADMIN"))
	case "custom-control":
		todo = customProbes
	case "custom":
		profile, todo = customProfile(), customProbes
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		return 2
	}
	if profile != nil {
		prog, err := Compile(profile)
		if err == nil {
			err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		}
		if err == nil {
			err = Load(prog)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if scenario == "x32" {
		unix.RawSyscall(0x40000000|unix.SYS_GETPID, 0, 0, 0) // should not return
		fmt.Println("survived an x32 syscall")
		return 0
	}
	out := map[string]string{}
	for _, p := range todo {
		out[p.name] = errnoName(p.call())
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

func errnoName(e unix.Errno) string {
	if e == 0 {
		return "OK"
	}
	return unix.ErrnoName(e)
}

// runHelper runs a scenario and returns the probes' results.
func runHelper(t *testing.T, scenario string) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+scenario)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper %s: %v\n%s%s", scenario, err, stdout.Bytes(), stderr.Bytes())
	}
	var out map[string]string
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("helper %s: %v: %q", scenario, err, stdout.Bytes())
	}
	return out
}

func needSeccomp(t *testing.T) {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil || !bytes.Contains(status, []byte("\nSeccomp:")) {
		t.Skip("kernel without seccomp (no Seccomp: in /proc/self/status)")
	}
	if _, ok := nativeTarget(); !ok {
		t.Skipf("no syscall table for %s", runtime.GOARCH)
	}
}

// TestDefaultInKernel loads Default in a helper and compares each probe with
// what the same call returns unfiltered: an allowed call must return the
// same, a blocked one EPERM (clone3: ENOSYS). A blocked call the kernel
// itself answers with EPERM here (no privilege) proves nothing and is skipped.
func TestDefaultInKernel(t *testing.T) {
	needSeccomp(t)
	control := runHelper(t, "control")
	filtered := runHelper(t, "default")
	admin := runHelper(t, "sys-admin")
	blocked := map[string]string{"clone3": "ENOSYS"}
	for _, p := range probes[slicesIndex("keyctl"):] {
		if blocked[p.name] == "" {
			blocked[p.name] = "EPERM"
		}
	}
	// With CAP_SYS_ADMIN, these are the kernel's to refuse.
	adminAllows := map[string]bool{"mount": true, "umount2": true, "setns": true, "clone-newns": true,
		"clone3": true, "unshare-user": true, "bpf": true, "perf_event_open": true}

	for _, p := range probes {
		c, f := control[p.name], filtered[p.name]
		want, isBlocked := blocked[p.name]
		switch {
		case !isBlocked && f != c:
			t.Errorf("%s: %s filtered, %s unfiltered; want the same", p.name, f, c)
		case isBlocked && c == want:
			t.Logf("%s: the kernel returns %s anyway; not checked", p.name, c)
		case isBlocked && f != want:
			t.Errorf("%s: %s filtered (%s unfiltered); want %s", p.name, f, c, want)
		}
		if adminAllows[p.name] && admin[p.name] != c {
			t.Errorf("%s with CAP_SYS_ADMIN: %s; want %s as unfiltered", p.name, admin[p.name], c)
		}
		t.Logf("%-20s unfiltered %-14s default %-8s +CAP_SYS_ADMIN %s", p.name, c, f, admin[p.name])
	}
	if admin["kcmp"] != filtered["kcmp"] {
		t.Errorf("kcmp with CAP_SYS_ADMIN: %s, want %s", admin["kcmp"], filtered["kcmp"])
	}
}

func slicesIndex(name string) int {
	for i, p := range probes {
		if p.name == name {
			return i
		}
	}
	panic(name)
}

func TestCustomProfileInKernel(t *testing.T) {
	needSeccomp(t)
	control := runHelper(t, "custom-control")
	got := runHelper(t, "custom")
	want := map[string]string{
		"lseek-end":          "ENOMSG",
		"lseek-set":          control["lseek-set"],
		"lseek-above-4G":     "EDOM",
		"lseek-4G":           control["lseek-4G"],
		"lseek-low-word-big": control["lseek-low-word-big"],
		"getpgid-0x1234":     "ENOTTY",
		"getpgid-0x1334":     control["getpgid-0x1334"],
		"getpgid-self":       control["getpgid-self"],
		"getcpu":             "ETIME",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %s, want %s (unfiltered: %s)", name, got[name], w, control[name])
		}
	}
}

// TestX32Killed checks that a syscall through the x32 ABI, which the filter
// does not know, kills the process.
func TestX32Killed(t *testing.T) {
	needSeccomp(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 is an amd64 ABI")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=x32")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if ws := exit.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("helper ended with %v, want killed by SIGSYS\n%s", exit, out)
	}
}

func TestLoadErrors(t *testing.T) {
	if err := Load(nil); err == nil || !strings.Contains(err.Error(), "0 instructions") {
		t.Errorf("Load(nil): %v", err)
	}
	if _, err := FilterFlags(&specs.LinuxSeccomp{Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}}); err == nil {
		t.Error("FilterFlags accepted a bogus flag")
	}
	f, err := FilterFlags(&specs.LinuxSeccomp{Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}})
	if err != nil || f != unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW {
		t.Errorf("FilterFlags: %#x, %v", f, err)
	}
}
