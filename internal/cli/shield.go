package cli

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/kiln-project/kiln/internal/runtime"
)

// A container keeps the stdio it is given for as long as anything it started runs, and can
// reopen it through /proc/self/fd/N. A pipe or a socket gives it nothing more. A host file
// (kiln run ... > file) would give it the file itself: the container could chmod it setuid or
// rewrite it. A terminal would give it the caller's terminal after kiln returns: a process left
// behind by `kiln exec` could read the keys typed next at the shell, or turn echo off. So all but
// a pipe, a socket or /dev/null is put behind a pipe, and kiln copies, as Docker and Podman do
// without -t. (With -t the container gets a terminal of its own: see attachConsole.)

// drainTimeout bounds how long output is still copied once the container's process has exited:
// a process it left running (after kiln exec) may hold the pipe open for good. Docker waits as
// long for an exec's streams.
const drainTimeout = 2 * time.Second

// shield is the stdio to hand a container, with the copying it needs.
type shield struct {
	stdio   runtime.Stdio
	ends    []*os.File // the container's ends of our pipes: close once it has them
	outputs []*os.File // kiln's ends of the output pipes, which it copies from
	in      *inputPump // nil when stdin is passed through
	wg      sync.WaitGroup
	hurry   atomic.Bool // cut was called
}

func newShield(s runtime.Stdio) (*shield, error) {
	sh := &shield{}
	var err error
	if sh.stdio.Stdin, err = sh.input(s.Stdin); err != nil {
		return nil, err
	}
	if sh.stdio.Stdout, err = sh.output(s.Stdout); err != nil {
		return nil, err
	}
	if s.Stderr == s.Stdout || sameFile(s.Stderr, s.Stdout) {
		sh.stdio.Stderr = sh.stdio.Stdout // one pipe keeps the two streams in order
	} else if sh.stdio.Stderr, err = sh.output(s.Stderr); err != nil {
		return nil, err
	}
	return sh, nil
}

// passThrough reports whether the container may have f itself. /dev/null may: there is nothing
// in it to read or to change, and copying would only slow the container down.
func passThrough(f *os.File) bool {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK:
		return true
	case unix.S_IFCHR:
		return isDevNull(&st) && !term.IsTerminal(int(f.Fd()))
	}
	return false
}

// isDevNull reports whether st is Linux's null device, 1:3, whatever its path.
func isDevNull(st *unix.Stat_t) bool {
	rdev := uint64(st.Rdev)
	return unix.Major(rdev) == 1 && unix.Minor(rdev) == 3
}

// sameFile reports whether a and b are the same file (a terminal on both stdout and stderr).
func sameFile(a, b *os.File) bool {
	if a == nil || b == nil {
		return false
	}
	ai, err1 := a.Stat()
	bi, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

func (sh *shield) input(f *os.File) (*os.File, error) {
	if f == nil || passThrough(f) {
		return f, nil
	}
	p, err := newInputPump(f)
	if err != nil {
		return nil, err
	}
	sh.in = p
	sh.ends = append(sh.ends, p.r)
	return p.r, nil
}

func (sh *shield) output(f *os.File) (*os.File, error) {
	if f == nil || passThrough(f) {
		return f, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	sh.wg.Add(1)
	go func() { defer sh.wg.Done(); io.Copy(f, r); r.Close() }()
	sh.ends = append(sh.ends, w)
	sh.outputs = append(sh.outputs, r)
	return w, nil
}

// started closes kiln's copies of the container's ends, so output ends when the container's does,
// and starts copying stdin: only now, so that with -t (when the container never gets the pipe)
// nothing typed ahead is read into it.
func (sh *shield) started() {
	for _, f := range sh.ends {
		f.Close()
	}
	sh.ends = nil
	if sh.in != nil {
		go sh.in.run()
	}
}

// wait stops reading stdin and waits for the output to be copied, for drainTimeout at most; call
// after the container's process exited.
func (sh *shield) wait() {
	if sh.in != nil {
		sh.in.stop()
	}
	deadline := time.Now().Add(drainTimeout)
	for _, r := range sh.outputs {
		r.SetReadDeadline(deadline)
	}
	if sh.hurry.Load() {
		sh.cut() // it came before the deadline above
	}
	sh.wg.Wait()
}

// cut ends the wait for output now, as if drainTimeout had passed: kiln was asked to end.
func (sh *shield) cut() {
	sh.hurry.Store(true)
	for _, r := range sh.outputs {
		r.SetReadDeadline(time.Now())
	}
}

// inputPump copies the caller's stdin (a terminal, a file) into the pipe the container reads. It
// reads only once poll says there is something to read, something still reads the pipe, and
// stop was not called: no read is left pending on a terminal once the container has exited, for
// the next line typed there belongs to the shell kiln returns to. The terminal is left as it is:
// no raw mode, and no O_NONBLOCK on its open file description, which the shell shares.
type inputPump struct {
	in           int      // kiln's own duplicate of the caller's descriptor
	r, w         *os.File // the pipe: the container reads r
	stopR, stopW *os.File // closing stopW ends the pump
	wfd, stopFd  int      // w's and stopR's descriptors, for poll
}

func newInputPump(f *os.File) (*inputPump, error) {
	in, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: f.Name(), Err: err}
	}
	p := &inputPump{in: in}
	if p.r, p.w, err = os.Pipe(); err != nil {
		unix.Close(in)
		return nil, err
	}
	if p.stopR, p.stopW, err = os.Pipe(); err != nil {
		unix.Close(in)
		p.r.Close()
		p.w.Close()
		return nil, err
	}
	p.wfd, p.stopFd = int(p.w.Fd()), int(p.stopR.Fd()) // blocking from here: a plain write(2)
	return p, nil
}

func (p *inputPump) stop() { p.stopW.Close() }

func (p *inputPump) run() {
	defer p.close()
	buf := make([]byte, 32<<10)
	for p.ready() {
		n, err := unix.Read(p.in, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if n <= 0 {
			return // end of file, or EIO once the terminal hung up: the container gets EOF
		}
		if _, err := p.w.Write(buf[:n]); err != nil {
			return // nothing reads the pipe any more
		}
	}
}

func (p *inputPump) close() {
	unix.Close(p.in)
	p.w.Close()
	p.stopR.Close()
}

// ready waits until the input can be read, and reports false instead once stop was called or
// nothing reads the pipe (the container exited or closed its stdin; with -t it never had it).
func (p *inputPump) ready() bool {
	for {
		fds := []unix.PollFd{
			{Fd: int32(p.stopFd), Events: unix.POLLIN},
			{Fd: int32(p.wfd)}, // POLLERR once the pipe has no reader
			{Fd: int32(p.in), Events: unix.POLLIN},
		}
		timeout := -1
		if !mayRead(p.in) {
			fds, timeout = fds[:2], 100 // look again in a while
		}
		if _, err := unix.Poll(fds, timeout); err != nil && err != unix.EINTR {
			return false
		}
		if fds[0].Revents != 0 || fds[1].Revents != 0 {
			return false
		}
		if len(fds) == 3 && fds[2].Revents != 0 {
			return true
		}
	}
}

// mayRead reports whether kiln may read fd without being sent SIGTTIN: fd is not its
// controlling terminal, or kiln is in that terminal's foreground process group. (kiln catches
// SIGTTIN and forwards it to the container; the read would be retried, and the signal sent, in
// a loop while kiln runs in the background.)
func mayRead(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err != nil || pgrp == unix.Getpgrp()
}
