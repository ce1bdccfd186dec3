package build

import (
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// EventKind says what happened to a step.
type EventKind int

const (
	StepStart   EventKind = iota // the step runs (not from the cache)
	StepOutput                   // it printed Line
	StepWriting                  // its layer has Bytes written so far
	StepDone                     // its layer is made (Cached: taken from the build cache instead)
)

// Event is what a step is doing, for a live display. The squash of an image is reported as a step
// numbered 0 whose Command is "squash".
type Event struct {
	Kind    EventKind
	Stage   string // "" for the image kiln.yaml names
	Step    int    // 1-based
	Steps   int    // steps of that image or stage
	Command string // the step's command, on one line
	Line    string // StepOutput: a line the step printed
	Bytes   int64  // StepWriting: bytes of the compressed layer written so far; StepDone: its size
	Digest  v1.Hash
	Cached  bool
}

// countingWriter reports how many bytes went through it.
type countingWriter struct {
	w      io.Writer
	n      int64
	report func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.report(c.n)
	return n, err
}
