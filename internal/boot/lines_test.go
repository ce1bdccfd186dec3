package boot

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records each Write it gets, as a pipe shared by two streams would see them.
type writes struct {
	mu  sync.Mutex
	got [][]byte
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, bytes.Clone(p))
	return len(p), nil
}

func (w *writes) all() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.got...)
}

// TestLineWriterWholeLines: two streams fed a few bytes at a time, as the UARTs deliver them,
// reach one writer in whole lines.
func TestLineWriterWholeLines(t *testing.T) {
	shared := &writes{}
	out, errw := newLineWriter(shared), newLineWriter(shared)
	out.wait, errw.wait = time.Hour, time.Hour // only lines and Close flush here
	var a, b strings.Builder
	for i := range 50 {
		a.WriteString(strings.Repeat("o", i) + "-out\n")
		b.WriteString(strings.Repeat("e", i) + "-err\n")
	}
	as, bs := a.String(), b.String()
	for i := 0; i < max(len(as), len(bs)); i += 3 {
		if i < len(as) {
			out.Write([]byte(as[i:min(i+3, len(as))]))
		}
		if i < len(bs) {
			errw.Write([]byte(bs[i:min(i+3, len(bs))]))
		}
	}
	out.Close()
	errw.Close()
	var outGot, errGot strings.Builder
	for _, w := range shared.all() {
		if !bytes.HasSuffix(w, []byte("\n")) {
			t.Fatalf("a write that is not whole lines: %q", w)
		}
		for _, l := range strings.SplitAfter(string(w), "\n") {
			switch {
			case strings.HasSuffix(l, "-out\n"):
				outGot.WriteString(l)
			case strings.HasSuffix(l, "-err\n"):
				errGot.WriteString(l)
			case l != "":
				t.Fatalf("torn line %q", l)
			}
		}
	}
	if outGot.String() != as || errGot.String() != bs {
		t.Errorf("the streams' lines changed on the way")
	}
}

// TestLineWriterPartialLine: a line without its end goes out after the wait, and on Close.
func TestLineWriterPartialLine(t *testing.T) {
	w := &writes{}
	l := newLineWriter(w)
	l.wait = 10 * time.Millisecond
	l.Write([]byte("prompt> "))
	if got := w.all(); len(got) != 0 {
		t.Fatalf("a partial line went out at once: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(w.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := w.all(); len(got) != 1 || string(got[0]) != "prompt> " {
		t.Fatalf("after the wait: %q, want the partial line", got)
	}
	l.wait = time.Hour
	l.Write([]byte("tail"))
	l.Close()
	if got := w.all(); len(got) != 2 || string(got[1]) != "tail" {
		t.Errorf("Close wrote %q, want the partial line", got)
	}
}

// TestLineWriterLongLine: a line longer than lineMax goes out in pieces of lineMax; no write is
// longer, so each reaches a pipe whole.
func TestLineWriterLongLine(t *testing.T) {
	w := &writes{}
	l := newLineWriter(w)
	l.wait = time.Hour
	long := strings.Repeat("x", 2*lineMax+10) + "\n" + strings.Repeat("short\n", 2000)
	l.Write([]byte(long))
	l.Close()
	var got []byte
	for _, b := range w.all() {
		if len(b) > lineMax {
			t.Errorf("a write of %d bytes, more than %d", len(b), lineMax)
		}
		got = append(got, b...)
	}
	if string(got) != long {
		t.Error("the bytes changed on the way")
	}
	if n := len(w.all()[0]); n != lineMax {
		t.Errorf("the long line's first piece is %d bytes, want %d", n, lineMax)
	}
}

// TestLineWriterBinary: any bytes, in any pieces, arrive unchanged.
func TestLineWriterBinary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(r.UintN(256))
	}
	var buf bytes.Buffer
	l := newLineWriter(&buf)
	l.wait = time.Microsecond // partial lines go out from the timer too
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(100))
		if _, err := l.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	l.Close()
	if !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("%d bytes out for %d in, not the same", buf.Len(), len(data))
	}
}
