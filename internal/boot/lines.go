package boot

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// How lineWriter holds a partial line: at most lineMax bytes (PIPE_BUF: a write that size or
// smaller reaches a pipe whole, whoever else writes to it), until lineWait passes without a new
// byte, and never longer than lineHold. Under emulation a line pauses in the middle: up to 12 ms
// measured on an idle 2-core host, over 20 ms under load, which tore lines with a 20 ms wait. The
// app has no stdin to prompt on: output without a newline (progress) can wait that long.
const (
	lineMax  = 4096
	lineWait = 50 * time.Millisecond
	lineHold = 250 * time.Millisecond
)

// lineWriter passes what is written to it on to w in whole lines, so that the app's stdout and
// stderr, sent to one terminal or pipe (2>&1), mix line by line and not in the few bytes at a
// time a UART delivers. A partial line goes on once lineMax bytes are held, lineWait after its
// last byte came (lineHold after its first), or on Close. The bytes pass unchanged.
type lineWriter struct {
	w           io.Writer
	wait, hold  time.Duration
	mu          sync.Mutex
	buf         []byte
	first, last time.Time   // when the partial line held began, and when it last grew
	timer       *time.Timer // flushes the partial line held; nil when none is
	gen         int         // which timer is timer: one stopped too late finds another
	err         error       // w's first error, returned from then on
}

func newLineWriter(w io.Writer) *lineWriter {
	return &lineWriter{w: w, wait: lineWait, hold: lineHold}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	held := len(l.buf)
	l.buf = append(l.buf, p...)
	if l.writeLines() > held { // the partial line held is gone: what is left is a new one
		l.stopTimer()
	}
	l.last = time.Now()
	if len(l.buf) > 0 && l.timer == nil {
		l.first = l.last
		l.arm(l.wait)
	}
	if l.err != nil {
		return 0, l.err
	}
	return len(p), nil
}

// writeLines writes the whole lines held, at most lineMax bytes a write, each write ending at
// a line's end unless a line is longer; it returns how many bytes it wrote.
func (l *lineWriter) writeLines() (written int) {
	for l.err == nil && len(l.buf) > 0 {
		n := bytes.LastIndexByte(l.buf[:min(len(l.buf), lineMax)], '\n') + 1
		if n == 0 {
			if len(l.buf) < lineMax {
				break
			}
			n = lineMax
		}
		l.emit(n)
		written += n
	}
	return written
}

// arm has the partial line held looked at again after d.
func (l *lineWriter) arm(d time.Duration) {
	gen := l.gen
	l.timer = time.AfterFunc(d, func() { l.flushPartial(gen) })
}

func (l *lineWriter) stopTimer() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
		l.gen++
	}
}

// emit writes the first n bytes held.
func (l *lineWriter) emit(n int) {
	_, l.err = l.w.Write(l.buf[:n])
	l.buf = l.buf[:copy(l.buf, l.buf[n:])]
}

// flushPartial writes the partial line held once it has waited long enough, unless timer gen
// was stopped meanwhile.
func (l *lineWriter) flushPartial(gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen != l.gen {
		return
	}
	now := time.Now()
	if idle := now.Sub(l.last); idle < l.wait && now.Sub(l.first) < l.hold {
		l.arm(l.wait - idle) // the line is still coming
		return
	}
	l.timer = nil
	l.gen++
	if l.err == nil && len(l.buf) > 0 {
		l.emit(len(l.buf))
	}
}

// Close writes what is held.
func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopTimer()
	if l.err == nil && len(l.buf) > 0 {
		l.emit(len(l.buf))
	}
	return l.err
}
