package cli

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/runtime"
)

// A container can reopen its stdio through /proc/self/fd/N. For a pipe, a socket or a terminal
// that gives it nothing new; for a host file (kiln run ... > file) it would give the file itself:
// the container could chmod it setuid or rewrite it. So a regular file (or anything else) is
// put behind a pipe, and kiln copies.

// shield is the stdio to hand a container, with the copying it needs.
type shield struct {
	stdio runtime.Stdio
	ends  []*os.File // the container's ends of our pipes: close once it has them
	wg    sync.WaitGroup
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
	if s.Stderr == s.Stdout {
		sh.stdio.Stderr = sh.stdio.Stdout // one pipe keeps the two streams in order
	} else if sh.stdio.Stderr, err = sh.output(s.Stderr); err != nil {
		return nil, err
	}
	return sh, nil
}

// passThrough reports whether the container may have f itself.
func passThrough(f *os.File) bool {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR:
		return true
	}
	return false
}

func (sh *shield) input(f *os.File) (*os.File, error) {
	if f == nil || passThrough(f) {
		return f, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func() { io.Copy(w, f); w.Close() }()
	sh.ends = append(sh.ends, r)
	return r, nil
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
	return w, nil
}

// started closes kiln's copies of the container's ends, so output ends when the container's does.
func (sh *shield) started() {
	for _, f := range sh.ends {
		f.Close()
	}
	sh.ends = nil
}

// wait waits for the output to be copied; call after the container exited.
func (sh *shield) wait() { sh.wg.Wait() }
