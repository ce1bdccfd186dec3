package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/kiln-project/kiln/internal/build"
)

// stepView shows the steps of a build on stderr. On a terminal the running step has a status
// line, redrawn in place (its name, time so far and layer bytes written), with the step's output
// scrolling above it; otherwise every event is a plain line. Either way a step taken from the
// build cache says CACHED.
type stepView struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	cur     *build.Event // the running step
	started time.Time
	status  bool // a status line is on screen
	done    chan struct{}
	wg      sync.WaitGroup
}

func (e *env) stepView() *stepView {
	v := &stepView{w: e.stderr, done: make(chan struct{})}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.tty = true
		v.wg.Add(1)
		go v.tick()
	}
	return v
}

// logger is the build's logger, writing through the view so that on a terminal a log line
// never lands after the status line on screen.
func (v *stepView) logger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(&lineHandler{w: v, level: level})
}

// Write prints whole lines (the logger's) where the status line was, as line does.
func (v *stepView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
	return v.w.Write(p)
}

// stop ends the live display.
func (v *stepView) stop() {
	if v.tty {
		close(v.done)
		v.wg.Wait()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
}

func (v *stepView) event(ev build.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch ev.Kind {
	case build.StepStart:
		v.cur, v.started = &ev, time.Now()
		if ev.Step == 0 {
			v.line("%s", stepName(ev))
		} else {
			v.line("%s: %s", stepName(ev), ev.Command)
		}
	case build.StepOutput:
		v.line("%s | %s", stepName(ev), ev.Line)
	case build.StepWriting:
		if v.cur != nil {
			v.cur.Bytes = ev.Bytes
		}
	case build.StepDone:
		if ev.Cached {
			v.line("%s: CACHED %s", stepName(ev), short(ev.Digest))
			return
		}
		v.cur = nil
		v.line("%s: done in %s, layer %s %s", stepName(ev), time.Since(v.started).Round(time.Millisecond),
			size(ev.Bytes), short(ev.Digest))
	}
}

// stepName is "step 2/3", "stage builder: step 1/2", or "squash".
func stepName(ev build.Event) string {
	s := fmt.Sprintf("step %d/%d", ev.Step, ev.Steps)
	if ev.Step == 0 {
		s = ev.Command
	}
	if ev.Stage != "" {
		s = "stage " + ev.Stage + ": " + s
	}
	return s
}

// line prints one line where the status line was; the ticker draws it again under the output.
// Redrawing it after every line would cost a step that prints much several times its own time.
func (v *stepView) line(format string, args ...any) {
	v.clear()
	fmt.Fprintf(v.w, format+"\n", args...)
}

func (v *stepView) clear() {
	if v.status {
		fmt.Fprint(v.w, "\r\x1b[2K")
		v.status = false
	}
}

// draw writes the status line of the running step, cut to the terminal's width.
func (v *stepView) draw() {
	if !v.tty || v.cur == nil {
		return
	}
	s := fmt.Sprintf("%s %s", time.Since(v.started).Round(100*time.Millisecond), stepName(*v.cur))
	if v.cur.Bytes > 0 {
		s += ", layer " + size(v.cur.Bytes)
	}
	if v.cur.Step > 0 {
		s += ": " + v.cur.Command
	}
	if f, ok := v.w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 1 && len(s) >= width {
			s = s[:width-1]
		}
	}
	fmt.Fprint(v.w, strings.ReplaceAll(s, "\n", " "))
	v.status = true
}

func (v *stepView) tick() {
	defer v.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			v.mu.Lock()
			v.clear()
			v.draw()
			v.mu.Unlock()
		case <-v.done:
			return
		}
	}
}
