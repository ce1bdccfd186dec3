// Package boot runs a bake (internal/bake) as a qemu microVM: the app's stdout and stderr on
// the caller's, line by line, the caller's signals passed to the app, its exit status
// returned. It checks everything it can before qemu starts, and qemu never outlives it
// (parent-death signal, killed on cancel, timeout or a second SIGINT or SIGTERM).
//
//	code, err := boot.Run(ctx, boot.Options{Dir: "curl.vm", Stdout: os.Stdout, Stderr: os.Stderr})
package boot

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-project/kiln/internal/bake"
	"github.com/kiln-project/kiln/internal/bootconfig"
)

// ExitFailed is the status when kiln, qemu or the guest fails before the app reports one.
const ExitFailed = 125

// QEMU is the emulator kiln runs (Debian package qemu-system-x86).
const QEMU = "qemu-system-x86_64"

// Options say how to boot.
type Options struct {
	Dir     string   // a bake, format initramfs
	Accel   string   // auto, kvm or tcg
	Memory  string   // qemu -m: "256M"
	CPUs    int      // vCPUs
	Env     []string // NAME=VALUE, over the baked env
	Args    []string // nil: the baked entrypoint and cmd; else they replace cmd, as with docker run
	Ports   []Port
	Volumes []Volume
	Network string        // "none" or "user"; "" is user with Ports, else none
	Timeout time.Duration // 0: none
	Verbose bool          // kernel console to Stderr
	Stdout  io.Writer
	Stderr  io.Writer
	Notice  func(string) // one-line notices (the TCG fallback, the guest's warnings); nil: none
	// Signals are what the caller catches (signal.Notify) to pass to the app, as docker run
	// does: each is sent to the app once kiln-init can take it, but for a second SIGINT or
	// SIGTERM, which kills the VM. nil: none.
	Signals <-chan os.Signal
}

// Run boots the bake and returns the app's exit status. An error comes with the status to
// exit with (ExitFailed).
func Run(ctx context.Context, o Options) (int, error) {
	if o.Notice == nil {
		o.Notice = func(string) {}
	}
	m, err := plan(o)
	if err != nil {
		return ExitFailed, err
	}
	if ctx.Err() != nil {
		return ExitFailed, ctx.Err()
	}
	return m.run(ctx, o)
}

// plan checks the bake and the options and decides qemu's command line; nothing starts.
func plan(o Options) (*machine, error) {
	m := &machine{
		kernel: filepath.Join(o.Dir, bake.KernelFile), initramfs: filepath.Join(o.Dir, bake.InitramfsFile),
		memory: o.Memory, cpus: o.CPUs, ports: o.Ports, volumes: o.Volumes,
	}
	if m.memory == "" {
		m.memory = "256M"
	}
	if m.cpus < 1 {
		return nil, fmt.Errorf("--cpus %d: want at least 1", m.cpus)
	}
	if !validMemory(m.memory) {
		return nil, fmt.Errorf("--memory %q: want a size in MiB or with a suffix: 256M, 1G", m.memory)
	}
	cfg, baked, err := readBake(o.Dir)
	if err != nil {
		return nil, err
	}
	if len(cfg.Args) == 0 && len(o.Args) == 0 {
		return nil, errors.New("the image has no entrypoint and no cmd: nothing to run (give a command after --)")
	}
	k, err := bake.ReadKernel(m.kernel) // its config is read only if checkDrivers needs it
	if err != nil {
		return nil, err
	}
	switch o.Network {
	case "user":
		m.network = true
	case "":
		m.network = len(o.Ports) > 0
	case "none":
		if len(o.Ports) > 0 {
			return nil, errors.New("-p needs a network: drop --network none")
		}
	default:
		return nil, fmt.Errorf("--network %q: want user or none", o.Network)
	}
	if err := checkDrivers(k, cfg, m.network, len(o.Volumes) > 0); err != nil {
		return nil, err
	}
	if m.qemu, err = exec.LookPath(QEMU); err != nil {
		return nil, fmt.Errorf("%s not found: install qemu-system-x86 (Debian: apt-get install qemu-system-x86)", QEMU)
	}
	if m.accel, err = chooseAccel(o.Accel, o.Notice); err != nil {
		return nil, err
	}
	if m.cmdline, err = cmdline(baked, cfg, o, m.network, m.accel); err != nil {
		return nil, err
	}
	if len(m.cmdline) > k.CmdlineMax {
		return nil, fmt.Errorf("the kernel command line would be %d bytes; kernel %s takes at most %d: "+
			"shorten the -e values and the arguments, or bake them into the image", len(m.cmdline), k.Path, k.CmdlineMax)
	}
	return m, nil
}

// readBake reads a bake's config.json and cmdline, and checks its initramfs is there.
func readBake(dir string) (*bootconfig.Config, string, error) {
	if fi, err := os.Stat(filepath.Join(dir, bake.InitramfsFile)); err != nil || !fi.Mode().IsRegular() {
		if _, err := os.Stat(filepath.Join(dir, bake.RootfsDir)); err == nil {
			return nil, "", fmt.Errorf("%s is a --format dir bake: boot needs --format initramfs", dir)
		}
		return nil, "", fmt.Errorf("%s is not a bake: no %s file (make one with kiln bake IMAGE -o %s)", dir, bake.InitramfsFile, dir)
	}
	data, err := os.ReadFile(filepath.Join(dir, bake.ConfigFile))
	if err != nil {
		return nil, "", fmt.Errorf("bake %s: %w", dir, err)
	}
	var cfg bootconfig.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, "", fmt.Errorf("bake %s: %s: %w", dir, bake.ConfigFile, err)
	}
	line, err := os.ReadFile(filepath.Join(dir, bake.CmdlineFile))
	if err != nil {
		return nil, "", fmt.Errorf("bake %s: %w", dir, err)
	}
	return &cfg, strings.TrimSpace(string(line)), nil
}

// checkDrivers refuses a NIC or 9P shares the guest kernel cannot drive: baked modules, or
// built in as far as the kernel's config says (an unknown config is given the benefit).
func checkDrivers(k *bake.Kernel, cfg *bootconfig.Config, network, volumes bool) error {
	if !network && !volumes {
		return nil
	}
	k.LoadConfig()
	builtIn := func(opts ...string) bool {
		for _, o := range opts {
			if k.Config != nil && k.Config[o] != "y" {
				return false
			}
		}
		return true
	}
	if network && len(cfg.NetModules) == 0 && !builtIn("CONFIG_VIRTIO_NET") {
		return fmt.Errorf("kernel %s has no virtio-net driver (CONFIG_VIRTIO_NET in %s): -p and --network user need one", k.Release, k.ConfigPath)
	}
	if volumes && len(cfg.MountModules) == 0 && !builtIn("CONFIG_NET_9P", "CONFIG_NET_9P_VIRTIO", "CONFIG_9P_FS") {
		return fmt.Errorf("kernel %s has no 9P (CONFIG_NET_9P, CONFIG_9P_FS in %s): -v needs it; Debian's linux-image-amd64 has it, the cloud kernel does not: bake with --kernel /boot/vmlinuz-VERSION-amd64",
			k.Release, k.ConfigPath)
	}
	return nil
}

// cmdline is the baked kernel command line plus this boot's kiln.* parameters.
func cmdline(baked string, cfg *bootconfig.Config, o Options, network bool, accel string) (string, error) {
	var mounts []bootconfig.Mount
	for i, v := range o.Volumes {
		mounts = append(mounts, bootconfig.Mount{Tag: volumeTag(i), Target: v.Target, ReadOnly: v.ReadOnly})
	}
	var args []string
	if o.Args != nil {
		args = append(slices.Clone(cfg.Entrypoint), o.Args...)
	}
	params, err := bootconfig.Params(o.Env, args, mounts)
	if err != nil {
		return "", err
	}
	line := []string{baked}
	if accel == AccelTCG {
		line = append(line, bootconfig.TCGParams()...)
	}
	if o.Verbose {
		line = append(line, "loglevel=7")
	}
	if network {
		line = append(line, "kiln.net=user")
		line = appendModules(line, cfg.NetModules)
	}
	if len(mounts) > 0 {
		line = appendModules(line, cfg.MountModules)
	}
	return strings.Join(append(line, params...), " "), nil
}

// appendModules asks for each module once: the NIC's and 9P's share the virtio-mmio transport.
func appendModules(line, modules []string) []string {
	for _, m := range modules {
		if p := "kiln.module=" + m; !slices.Contains(line, p) {
			line = append(line, p)
		}
	}
	return line
}

// run starts qemu, copies the app's output, passes signals in, and waits for it to power off.
func (m *machine) run(ctx context.Context, o Options) (int, error) {
	tail := &lineTail{max: 30}
	var console io.Writer = tail
	if o.Verbose {
		console = newLineWriter(o.Stderr) // whole lines between the app's stderr lines
		o.Notice("qemu command: " + shellQuote(append([]string{m.qemu}, m.args()...)))
	}
	status := newStatusReader()
	var qemuOut strings.Builder
	cmd, ends, err := m.start(&qemuOut)
	if err != nil {
		return ExitFailed, err
	}
	var wg sync.WaitGroup
	for i, w := range []io.Writer{newLineWriter(o.Stdout), newLineWriter(o.Stderr), status, console} {
		wg.Go(func() { copyOut(w, ends[i]) })
	}
	stop := supervise(ctx, cmd.Process, o, ends[2], status.ready)
	werr := cmd.Wait()
	wg.Wait()
	killed := stop()
	for _, w := range status.warnings {
		o.Notice("the guest: " + w)
	}
	switch {
	case status.ok: // even if a kill came after it: the app had finished
		return status.code, nil
	case killed != nil:
		return ExitFailed, killed
	case werr != nil:
		return ExitFailed, fmt.Errorf("%s: %v: %s", QEMU, werr, strings.TrimSpace(qemuOut.String()))
	}
	msg := "the VM powered off without an exit status from kiln-init"
	if t := tail.String(); t != "" {
		msg += "; its console said:\n" + t
	} else if !o.Verbose {
		msg += " (--verbose shows the kernel's messages)"
	}
	return ExitFailed, errors.New(msg)
}

// copyOut copies r to w until qemu closes r's other end. When w fails (a closed stdout), the
// rest is read and dropped: it must not stall the guest.
func copyOut(w io.Writer, r *os.File) {
	io.Copy(w, r)
	io.Copy(io.Discard, r)
	r.Close()
	if c, ok := w.(io.Closer); ok {
		c.Close() // a lineWriter's last partial line
	}
}

// start starts qemu with the write ends of three pipes (stdout, stderr, console) and one end of
// a socket pair (status) as fds 3-6, and returns the other ends: stdout, stderr, status,
// console. qemu's own messages go to out; it gets SIGKILL if kiln dies.
func (m *machine) start(out io.Writer) (*exec.Cmd, []*os.File, error) {
	readers, writers, err := pipes(3)
	if err != nil {
		return nil, nil, err
	}
	status, qemuStatus, err := socketPair()
	if err != nil {
		closeAll(readers)
		closeAll(writers)
		return nil, nil, err
	}
	ends := []*os.File{readers[0], readers[1], status, readers[2]}
	given := []*os.File{writers[0], writers[1], qemuStatus, writers[2]}
	cmd := exec.Command(m.qemu, m.args()...)
	cmd.ExtraFiles = given
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = qemuAttr()
	err = cmd.Start()
	closeAll(given)
	if err != nil {
		closeAll(ends)
		return nil, nil, fmt.Errorf("start %s: %w", m.qemu, err)
	}
	return cmd, ends, nil
}

// supervise passes o.Signals to the app over control, and kills qemu when ctx ends, the
// timeout passes or a second SIGINT or SIGTERM comes. stop ends it and says why it killed qemu,
// if it did.
func supervise(ctx context.Context, p *os.Process, o Options, control io.Writer, ready <-chan struct{}) (stop func() error) {
	var expired <-chan time.Time
	if o.Timeout > 0 {
		expired = time.After(o.Timeout)
	}
	done, killed := make(chan struct{}), make(chan error, 1)
	go func() {
		err := forward(ctx, o, expired, control, ready, done)
		if err != nil {
			p.Kill()
		}
		killed <- err
	}()
	return func() error { close(done); return <-killed }
}

// forward sends the signals to the app, holding them until the guest is ready, until done is
// closed or qemu must be killed: it returns why.
func forward(ctx context.Context, o Options, expired <-chan time.Time, control io.Writer, ready, done <-chan struct{}) error {
	var held []syscall.Signal
	isReady, interrupted := false, false
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return errors.New("interrupted: VM killed")
		case <-expired:
			return fmt.Errorf("the VM did not power off within --timeout %s: killed", o.Timeout)
		case <-ready:
			isReady, ready = true, nil
		case s := <-o.Signals:
			sig, ok := s.(syscall.Signal)
			if !ok || !forwardable(sig) {
				continue
			}
			if sig == syscall.SIGINT || sig == syscall.SIGTERM {
				if interrupted {
					return fmt.Errorf("a second SIGINT or SIGTERM (%v): VM killed", sig)
				}
				interrupted = true
			}
			held = append(held, sig)
		}
		if isReady {
			for _, sig := range held {
				fmt.Fprintf(control, "%s%d\n", bootconfig.SignalPrefix, int(sig))
			}
			held = nil
		}
	}
}

func pipes(n int) (readers, writers []*os.File, err error) {
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(readers)
			closeAll(writers)
			return nil, nil, err
		}
		readers, writers = append(readers, r), append(writers, w)
	}
	return readers, writers, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// statusReader reads the lines kiln-init writes on the status port: ReadyLine closes ready,
// warnings are kept, "kiln-exit N" is the status.
type statusReader struct {
	buf      []byte
	ok       bool
	code     int
	ready    chan struct{}
	isReady  bool
	warnings []string
}

func newStatusReader() *statusReader {
	return &statusReader{ready: make(chan struct{})}
}

func (s *statusReader) line(line string) {
	if w, ok := strings.CutPrefix(line, bootconfig.WarningPrefix); ok {
		s.warnings = append(s.warnings, w)
	} else if v, ok := strings.CutPrefix(line, bootconfig.StatusPrefix); ok {
		if n, err := strconv.Atoi(v); err == nil && !s.ok {
			s.ok, s.code = true, n
		}
	} else if line == bootconfig.ReadyLine && !s.isReady {
		s.isReady = true
		close(s.ready)
	}
}

func (s *statusReader) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		line, rest, found := strings.Cut(string(s.buf), "\n")
		if !found {
			break
		}
		s.buf = []byte(rest)
		s.line(strings.TrimSpace(line))
	}
	return len(p), nil
}

// lineTail keeps the last max lines written to it.
type lineTail struct {
	max   int
	lines []string
	part  string
}

func (t *lineTail) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(t.part + string(p)))
	t.part = ""
	complete := strings.HasSuffix(string(p), "\n")
	var got []string
	for sc.Scan() {
		got = append(got, strings.TrimRight(sc.Text(), "\r"))
	}
	if !complete && len(got) > 0 {
		t.part, got = got[len(got)-1], got[:len(got)-1]
	}
	t.lines = append(t.lines, got...)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	return len(p), nil
}

func (t *lineTail) String() string {
	return strings.TrimSpace(strings.Join(append(t.lines, t.part), "\n"))
}

// shellQuote writes args as a POSIX shell would read them back.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=,./:") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// validMemory accepts what qemu's -m takes: a number of MiB, or one with a K, M, G or T suffix.
func validMemory(s string) bool {
	digits := strings.TrimRight(s, "KMGTkmgt")
	if len(s)-len(digits) > 1 || digits == "" {
		return false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return err == nil && n > 0
}
