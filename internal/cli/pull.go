package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-project/kiln/internal/registry"
)

func newPull(e *env) *cobra.Command {
	var platform string
	var tlsVerify, quiet bool
	cmd := &cobra.Command{
		Use:   "pull [--platform os/arch[/variant]] REF",
		Short: "Fetch an image from a registry into the store",
		Long: `Fetch REF (host[:port]/repo:tag, host/repo@sha256:..., or a Docker Hub name such as alpine:3)
into the store, tagged with its name: a Docker Hub image by its short name ("alpine:3"), any other
in full ("127.0.0.1:5000/app:1"), and one pulled by digest as repo:sha256-HEX, so that
"kiln run host/repo@sha256:..." finds it. From a multi-platform index, the linux/amd64 image
(or --platform). Layers the store has are not fetched; the others are fetched in parallel and
verified before they are kept. An interrupted pull keeps the layers it completed; run it again to
finish. Credentials come from kiln login (or docker/podman login); certificates of a registry
from /etc/kiln/certs.d/HOST:PORT/*.crt ($KILN_CERTS_D). Prints the stored digest.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd, e, args[0], platform, tlsVerify, quiet)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "linux/amd64", "image to pick from a multi-platform index: os/arch[/variant]")
	cmd.Flags().BoolVar(&tlsVerify, "tls-verify", true, "verify the registry's certificate and require HTTPS (but for localhost)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return cmd
}

func runPull(cmd *cobra.Command, e *env, ref, platform string, tlsVerify, quiet bool) error {
	pl, err := v1.ParsePlatform(platform)
	if err != nil || pl.OS == "" || pl.Architecture == "" {
		return fmt.Errorf("--platform %q: want os/arch[/variant]", platform)
	}
	st, err := e.store()
	if err != nil {
		return err
	}
	view := e.transferView("pull", quiet)
	p := registry.Puller{Options: e.registryOptions(tlsVerify, view), Platform: *pl}
	start := time.Now()
	res, err := p.Pull(cmd.Context(), st, ref)
	view.close()
	if err != nil {
		return err
	}
	from := ""
	if res.Platform != "" {
		from = " (" + res.Platform + ")"
	}
	fmt.Fprintf(e.stderr, "pulled %s%s as %s in %s: %d layers, %d fetched (%s)\n", res.Ref, from, res.Tag,
		time.Since(start).Round(time.Millisecond), res.Layers, res.Fetched, size(res.Bytes))
	fmt.Fprintln(e.stdout, res.Digest)
	return nil
}

// registryOptions are the settings every registry command shares; view may be nil.
func (e *env) registryOptions(tlsVerify bool, view *transferView) registry.Options {
	o := registry.Options{
		InsecureTLS: !tlsVerify,
		CertsDir:    os.Getenv("KILN_CERTS_D"),
		Logger:      e.logger(),
	}
	if view != nil {
		o.Progress = view.event
	}
	return o
}

// transferView shows the layers of a pull or push on stderr: on a terminal one bar per layer
// (bytes and rate), redrawn in place; otherwise a plain line when a layer starts and one when
// it is settled. It is shared by pull and push.
type transferView struct {
	verb  string
	w     io.Writer
	tty   bool
	quiet bool

	mu     sync.Mutex
	order  []v1.Hash
	layers map[v1.Hash]*layerView
	drawn  int // lines the last redraw wrote
	done   chan struct{}
	wg     sync.WaitGroup
}

type layerView struct {
	size  int64
	state registry.State
	bar   *progressbar.ProgressBar
	start time.Time
	took  time.Duration // from the first byte to Finished
	err   error
}

func (e *env) transferView(verb string, quiet bool) *transferView {
	v := &transferView{verb: verb, w: e.stderr, quiet: quiet, layers: map[v1.Hash]*layerView{}, done: make(chan struct{})}
	if f, ok := e.stderr.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		v.tty = true
		v.wg.Add(1)
		go v.redrawLoop()
	}
	return v
}

func (v *transferView) event(ev registry.Event) {
	if v.quiet {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	l, ok := v.layers[ev.Layer]
	if !ok {
		l = &layerView{size: ev.Size}
		v.layers[ev.Layer] = l
		v.order = append(v.order, ev.Layer)
	}
	prev := l.state
	l.state, l.err = ev.State, ev.Err
	switch ev.State {
	case registry.Moving:
		if prev != registry.Moving {
			l.start = time.Now()
			if v.tty {
				l.bar = newLayerBar(ev.Layer, ev.Size)
			} else {
				fmt.Fprintf(v.w, "%s %sing %s\n", short(ev.Layer), v.verb, size(ev.Size))
			}
		}
		if l.bar != nil {
			l.bar.Set64(ev.Done)
		}
	case registry.Waiting:
	default:
		if ev.State == registry.Finished && !l.start.IsZero() && l.took == 0 {
			l.took = time.Since(l.start)
		}
		if !v.tty && prev != ev.State {
			fmt.Fprintln(v.w, v.settled(ev.Layer, l))
		}
	}
}

func newLayerBar(h v1.Hash, n int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max(n, 1),
		progressbar.OptionSetWriter(io.Discard), // drawn by transferView, several at once
		progressbar.OptionSetDescription(short(h)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// settled is the line of a layer that is done, skipped, failed or retrying.
func (v *transferView) settled(h v1.Hash, l *layerView) string {
	s := fmt.Sprintf("%s %-8s %s", short(h), l.state, size(l.size))
	switch l.state {
	case registry.Finished:
		if d := l.took; d > 0 {
			s += fmt.Sprintf(" in %s (%s/s)", d.Round(time.Millisecond), size(int64(float64(l.size)/d.Seconds())))
		}
	case registry.Retrying, registry.Failed:
		s += ": " + oneLine(l.err)
	}
	return s
}

func (v *transferView) redrawLoop() {
	defer v.wg.Done()
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			v.redraw()
		case <-v.done:
			v.redraw()
			return
		}
	}
}

// redraw moves the cursor back over what it drew last time and draws every layer again.
func (v *transferView) redraw() {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, h := range v.order {
		l := v.layers[h]
		line := fmt.Sprintf("%s %-8s %s", short(h), l.state, size(l.size))
		if l.state == registry.Moving && l.bar != nil {
			line = strings.TrimLeft(l.bar.String(), "\r")
		} else if l.state != registry.Waiting {
			line = v.settled(h, l)
		}
		b.WriteString("\r" + line + "\x1b[K\n")
	}
	v.drawn = len(v.order)
	io.WriteString(v.w, b.String())
}

// close stops redrawing after a last frame.
func (v *transferView) close() {
	if v.tty {
		close(v.done)
		v.wg.Wait()
	}
}

func short(h v1.Hash) string {
	if len(h.Hex) < 12 {
		return h.String()
	}
	return h.Algorithm + ":" + h.Hex[:12]
}

func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
