package cli

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// attachConsole connects the user's terminal to a container's console: raw mode, window size
// kept in step (SIGWINCH), stdin copied in when interactive, output copied out. The returned
// function waits for the output to drain and restores the terminal.
func attachConsole(console *os.File, in *os.File, out io.Writer, interactive bool) func() {
	var restore func()
	if term.IsTerminal(int(in.Fd())) {
		// Raw only when the keys go to the container (-i): without -i, ^C must still reach kiln.
		if interactive {
			if st, err := term.MakeRaw(int(in.Fd())); err == nil {
				restore = func() { term.Restore(int(in.Fd()), st) }
			}
		}
		resize(in, console)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			for range winch {
				resize(in, console)
			}
		}()
	}
	if interactive {
		go io.Copy(console, in)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(out, console) // ends with EIO once the container's side is closed
	}()
	return func() {
		wg.Wait()
		if restore != nil {
			restore()
		}
	}
}

func resize(from, to *os.File) {
	ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ)
	if err == nil {
		unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// catchSignals starts queueing every signal kiln gets, before the container exists, so none is
// lost between its start and forwardSignals.
func catchSignals() chan os.Signal {
	ch := make(chan os.Signal, 32)
	signal.Notify(ch)
	return ch
}

// catchSignalsAsync is catchSignals begun on another goroutine. Go enables signals one at a
// time, each a round trip with its signal thread (a millisecond for all of them on a slow
// virtual machine), which can overlap preparing the container. The function returned waits for
// it and gives the channel.
func catchSignalsAsync() func() chan os.Signal {
	ch := make(chan os.Signal, 32)
	done := make(chan struct{})
	go func() { signal.Notify(ch); close(done) }()
	return func() chan os.Signal { <-done; return ch }
}

// forwardSignals sends the caught signals (but those about kiln's own terminal and runtime) to
// send, until the returned function is called. From then on the container has exited and kiln
// is about to: a signal that asks kiln to end (SIGINT, SIGTERM, SIGHUP, SIGQUIT) calls late,
// which cuts short what kiln still waits for; others are dropped. The signals stay caught:
// turning them back off costs a round trip to Go's signal thread for each, as turning them on
// did, about 3 ms of a 20 ms container run on a slow virtual machine.
func forwardSignals(ch chan os.Signal, send func(syscall.Signal), late func()) func() {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				sig := s.(syscall.Signal)
				switch sig {
				case syscall.SIGCHLD, syscall.SIGWINCH, syscall.SIGURG, syscall.SIGPIPE:
					continue
				}
				send(sig)
			case <-done:
				for s := range ch {
					switch s {
					case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
						late()
					}
				}
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// consoleSize is the window size of the caller's terminal, or nil when in is not one.
func consoleSize(in *os.File) *specs.Box {
	ws, err := unix.IoctlGetWinsize(int(in.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return nil
	}
	return &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
}
