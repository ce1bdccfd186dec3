package devcgroup

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Attach compiles rules and attaches the program to the cgroup2 directory
// dir as a BPF_CGROUP_DEVICE program, so that it judges every device access
// of the processes in dir and below from then on.
//
// The program is attached with BPF_F_ALLOW_MULTI: a cgroup below dir (a
// nested runtime's) may attach programs of its own, and an access must pass
// all of them, so nothing below dir can widen the list. Attaching twice to
// the same cgroup likewise leaves the intersection of both lists in force;
// Attach is meant for a fresh cgroup. The attachment lives as long as the
// cgroup: no file descriptor is kept, and removing the cgroup frees it.
func Attach(dir string, rules []specs.LinuxDeviceCgroup) error {
	prog, err := Compile(rules)
	if err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	cg, err := openCgroup2(dir)
	if err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	defer unix.Close(cg)
	fd, err := load(prog)
	if err != nil {
		return fmt.Errorf("attach device filter to %s: load program: %w", dir, err)
	}
	defer unix.Close(fd)
	attr := progAttachAttr{
		targetFD:    uint32(cg),
		attachBPFFD: uint32(fd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return fmt.Errorf("attach device filter to %s: attach program: %w", dir, err)
	}
	return nil
}

// Unified returns where this host mounts its cgroup2 hierarchy:
// "/sys/fs/cgroup" on a cgroup2-only host, "/sys/fs/cgroup/unified" on a
// hybrid one (v1 controllers beside an empty cgroup2 tree), or "" when
// neither is a cgroup2 mount.
func Unified() string {
	for _, dir := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return dir
		}
	}
	return ""
}

func openCgroup2(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("open cgroup: %w", err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		unix.Close(fd)
		return -1, errors.New("open cgroup: not a cgroup2 directory")
	}
	return fd, nil
}

const (
	// license is what the program is released under. The kernel reads it
	// only to decide whether GPL-only helpers may be called, and this
	// program calls no helper at all.
	license = "Apache-2.0"
	// progName is what bpftool and /proc/PID/fdinfo show for the program.
	progName = "kiln_devices"
)

// load runs BPF_PROG_LOAD and returns the program's fd. The verifier's log
// is asked for only when loading fails: logging makes loading slower, and a
// program Compile made is expected to pass.
func load(prog []byte) (int, error) {
	fd, err := loadLog(prog, nil)
	if err == nil || errors.Is(err, unix.EPERM) {
		return fd, err
	}
	log := make([]byte, 256<<10)
	fd, err2 := loadLog(prog, log)
	if err2 == nil {
		return fd, nil
	}
	if text := strings.TrimRight(unix.ByteSliceToString(log), "\n"); text != "" {
		return -1, fmt.Errorf("%w; verifier log:\n%s", err, text)
	}
	return -1, err
}

func loadLog(prog, log []byte) (int, error) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return -1, fmt.Errorf("load program: %w on 32-bit machines", errors.ErrUnsupported)
	}
	if len(prog) == 0 || len(prog)%insnSize != 0 {
		return -1, fmt.Errorf("program of %d bytes: not a whole number of instructions", len(prog))
	}
	lic := []byte(license + "\x00")
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog) / insnSize),
		insns:    unsafe.Pointer(&prog[0]),
		license:  unsafe.Pointer(&lic[0]),
	}
	copy(attr.progName[:], progName)
	if len(log) > 0 {
		attr.logLevel = 1
		attr.logSize = uint32(len(log))
		attr.logBuf = unsafe.Pointer(&log[0])
	}
	// The verifier gives up with EAGAIN when a signal arrives, and the Go
	// runtime sends signals (preemption) all the time.
	var err error
	for range 10 {
		var fd int
		fd, err = bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EPERM) {
		err = fmt.Errorf("%w (needs CAP_SYS_ADMIN or CAP_BPF)", err)
	}
	return -1, err
}

// progLoadAttr is the start of union bpf_attr for BPF_PROG_LOAD; the
// kernel takes the fields it is not given as zero. The addresses
// (__aligned_u64) stay unsafe.Pointer so that the garbage collector, which
// may move a goroutine's stack, sees and updates them; that makes the
// layout right on 64-bit machines only.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       unsafe.Pointer
	license     unsafe.Pointer
	logLevel    uint32
	logSize     uint32
	logBuf      unsafe.Pointer
	kernVersion uint32
	progFlags   uint32
	progName    [unix.BPF_OBJ_NAME_LEN]byte
}

// progAttachAttr is union bpf_attr for BPF_PROG_ATTACH, without
// replace_bpf_fd and what follows.
type progAttachAttr struct {
	targetFD    uint32
	attachBPFFD uint32
	attachType  uint32
	attachFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		name := "BPF_PROG_LOAD"
		if cmd == unix.BPF_PROG_ATTACH {
			name = "BPF_PROG_ATTACH"
		}
		return -1, &os.SyscallError{Syscall: "bpf(" + name + ")", Err: errno}
	}
	return int(r), nil
}
