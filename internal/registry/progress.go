package registry

import (
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// State is where one layer is in a pull or a push.
type State int

const (
	Waiting  State = iota // known, not started (all layers are announced first, in manifest order)
	Moving                // Done bytes have moved
	Finished              // moved and verified
	Skipped               // already there: in the store (pull) or in the repository (push)
	Mounted               // push: mounted from another repository of the same registry
	Retrying              // a transient failure (Err); starting the layer over
	Failed                // Err
)

func (s State) String() string {
	return [...]string{"waiting", "moving", "done", "exists", "mounted", "retrying", "failed"}[s]
}

// Event is one step of one layer.
type Event struct {
	Layer v1.Hash // the digest the manifest gives it
	Size  int64   // compressed size
	Done  int64   // bytes moved so far (Moving, Finished)
	State State
	Err   error // Retrying, Failed
}

func (o *Options) report(e Event) {
	if o.Progress != nil {
		o.Progress(e)
	}
}

// counter reports the bytes read through it and remembers the first read error, which is the
// real cause when the store then finds the content short.
type counter struct {
	rc   io.ReadCloser
	o    *Options
	desc v1.Descriptor
	n    int64
	err  error
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.o.report(Event{Layer: c.desc.Digest, Size: c.desc.Size, Done: c.n, State: Moving})
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

func (c *counter) Close() error { return c.rc.Close() }
