package build

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-project/kiln/internal/flock"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/runspec"
	"github.com/kiln-project/kiln/internal/runtime"
	"github.com/kiln-project/kiln/internal/spec"
	"github.com/kiln-project/kiln/internal/store"
)

// A step runs in a container whose root is an overlay of the image built so far under a fresh
// upper dir; once it exits 0, layer.Diff turns the upper dir into the step's layer. Step layers are
// staged in the build's transaction, so a failed step leaves the store as it was.

// tailLines is how much of a failed step's output its error shows.
const tailLines = 20

// stepHostname is every step's: the container ID is random, and a step that records its host
// name (a log, a config file) must still give the same layer.
const stepHostname = "kiln-build"

// stepper runs the steps of one build.
type stepper struct {
	st       *store.Store
	tx       *store.Tx
	sp       *spec.Spec
	opts     Options
	start    time.Time
	baseUser string // steps run as the base image's user unless they set one
	dirKey   string // the build directory for the cache key; computed on first use
}

// runSteps runs sp's steps in order on img and returns img with one layer per step.
func (s *stepper) runSteps(ctx context.Context, img v1.Image) (v1.Image, []*builtLayer, error) {
	if len(s.sp.Steps) == 0 {
		return img, nil, nil
	}
	if s.opts.WorkDir == "" {
		return nil, nil, errors.New("build: steps need Options.WorkDir")
	}
	// The runtime wants absolute paths for the root and the overlay's dirs.
	wd, err := filepath.Abs(s.opts.WorkDir)
	if err != nil {
		return nil, nil, err
	}
	s.opts.WorkDir = wd
	s.removeStale()
	var layers []*builtLayer
	for i, st := range s.sp.Steps {
		l, err := s.step(ctx, img, i, st)
		if err != nil {
			return nil, nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: s.opts.Epoch.UTC()},
				CreatedBy: s.createdBy(i, st)},
		})
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, l)
	}
	return img, layers, nil
}

// removeStale removes the step directories of killed builds. It only logs what goes wrong: a
// leftover costs disk space until the next build or kiln gc, not this build.
func (s *stepper) removeStale() {
	rep, err := RemoveStaleSteps(s.opts.WorkDir)
	for _, d := range rep.Dirs {
		s.opts.Log.Info("removed the directory of a killed build step", "dir", d)
	}
	if err != nil {
		s.opts.Log.Warn("could not remove the directories of killed build steps", "err", err)
	}
}

// step returns the layer of step i on img: from the build cache, or by running it.
func (s *stepper) step(ctx context.Context, img v1.Image, i int, st spec.Step) (*builtLayer, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := stepConfig(cf, s.baseUser)
	ev := Event{Stage: s.sp.Stage, Step: i + 1, Steps: len(s.sp.Steps), Command: oneLine(st.Run)}
	l := &builtLayer{st: s.st, tx: s.tx}
	if s.opts.CacheDir != "" {
		if l.key, err = s.cacheKey(cf, cfg, st); err != nil {
			return nil, err
		}
		if w, ok := loadCache(s.opts.CacheDir, l.key); ok && !s.opts.NoCache && s.st.HasBlob(w.Digest) {
			l.w, l.cached = w, true
			s.progress(ev, StepDone, func(e *Event) { e.Cached, e.Digest, e.Bytes = true, w.Digest, w.Size })
			return l, nil
		}
	}
	s.progress(ev, StepStart, nil)
	w, err := s.run(ctx, img, cfg, ev, st)
	if err != nil {
		return nil, err
	}
	l.w = w
	s.progress(ev, StepDone, func(e *Event) { e.Digest, e.Bytes = w.Digest, w.Size })
	return l, nil
}

// progress reports ev as kind, changed by set.
func (s *stepper) progress(ev Event, kind EventKind, set func(*Event)) {
	ev.Kind = kind
	if set != nil {
		set(&ev)
	}
	s.opts.Progress(ev)
}

// createdBy is the history entry of step i: "kiln build: step 2: make", with the stage if any.
func (s *stepper) createdBy(i int, st spec.Step) string {
	if s.sp.Stage != "" {
		return fmt.Sprintf("kiln build: stage %s: step %d: %s", s.sp.Stage, i+1, strings.Join(st.Run, " "))
	}
	return fmt.Sprintf("kiln build: step %d: %s", i+1, strings.Join(st.Run, " "))
}

// oneLine shows a command on one line: a multi-line script by its first line.
func oneLine(argv []string) string {
	s := strings.Join(argv, " ")
	if first, _, multi := strings.Cut(s, "\n"); multi {
		return first + " ..."
	}
	return s
}

// stepConfig is the config a step runs with: the image's (its env included), as the base
// image's user; config.user names who runs the finished image, not who builds it.
func stepConfig(cf *v1.ConfigFile, baseUser string) *v1.ConfigFile {
	c := cf.DeepCopy()
	c.Config.User = baseUser
	c.Config.Entrypoint, c.Config.Cmd = nil, nil
	return c
}

// run runs step i in a container on img and stages what it changed as a layer.
func (s *stepper) run(ctx context.Context, img v1.Image, cfg *v1.ConfigFile, ev Event, st spec.Step) (layer.Written, error) {
	dirs, err := s.st.Unpack(ctx, img)
	if err != nil {
		return layer.Written{}, err
	}
	if err := os.MkdirAll(s.opts.WorkDir, 0o700); err != nil {
		return layer.Written{}, err
	}
	work, lock, err := makeStepDir(s.opts.WorkDir)
	if err != nil {
		return layer.Written{}, err
	}
	defer func() {
		os.RemoveAll(work)
		flock.Unlock(lock) // after: an unlocked step dir is anyone's to remove
	}()
	c, err := s.container(work, dirs, cfg, st)
	if err != nil {
		return layer.Written{}, s.sp.At(st.Pos, err)
	}
	if err := s.exec(ctx, c, ev, st); err != nil {
		return layer.Written{}, err
	}
	exclude := []string{spec.BuildDir}
	for _, m := range c.Spec.Mounts {
		exclude = append(exclude, m.Destination)
	}
	upper := filepath.Join(work, "upper")
	return writeLayer(ctx, s.tx, func(w io.Writer) (layer.Written, error) {
		cw := &countingWriter{w: w, report: func(n int64) { s.progress(ev, StepWriting, func(e *Event) { e.Bytes = n }) }}
		return layer.Diff(cw, upper, s.opts.Epoch, exclude)
	})
}

// container makes the step's directories under work and its runtime config.
func (s *stepper) container(work string, dirs []string, cfg *v1.ConfigFile, st spec.Step) (runtime.Config, error) {
	for _, d := range []string{"upper", "work", "rootfs", "state"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			return runtime.Config{}, err
		}
	}
	src := s.sp.Dir
	if st.Copy {
		src = filepath.Join(work, "build")
		if err := os.CopyFS(src, os.DirFS(s.sp.Dir)); err != nil {
			return runtime.Config{}, fmt.Errorf("copy the build directory: %w", err)
		}
	}
	id := randomID()
	wd := st.Workdir
	if wd == "" {
		wd = spec.BuildDir
	}
	noEntrypoint := ""
	rs, err := runspec.Build(runspec.Options{
		ID: id, Image: cfg, Args: st.Run, Entrypoint: &noEntrypoint, Env: st.Env,
		Workdir: wd, User: st.User, Hostname: stepHostname, Network: st.Network,
		Binds:     []runspec.Bind{{Source: src, Destination: spec.BuildDir, ReadOnly: !st.Copy}},
		LayerDirs: dirs, RootPath: filepath.Join(work, "rootfs"),
	})
	if err != nil {
		return runtime.Config{}, err
	}
	// Without redirect_dir and metacopy, every change is in upper itself, as layer.Diff needs.
	rootfs := &specs.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(dirs, ":"),
		"upperdir=" + filepath.Join(work, "upper"),
		"workdir=" + filepath.Join(work, "work"),
		"redirect_dir=off", "metacopy=off",
	}}
	return runtime.Config{ID: id, Spec: rs, RootFS: rootfs, StateDir: filepath.Join(work, "state")}, nil
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// exec runs the step's container to its end, logging its output; a status other than 0 is an
// error at the step's line with the last lines of output.
func (s *stepper) exec(ctx context.Context, c runtime.Config, ev Event, st spec.Step) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	c.Stdio = runtime.Stdio{Stdout: w, Stderr: w}
	ctr, err := runtime.Start(ctx, c)
	w.Close()
	if err != nil {
		return s.sp.At(st.Pos, err)
	}
	stop := context.AfterFunc(ctx, func() { ctr.Signal(syscall.SIGKILL) })
	defer stop()
	out := make(chan []string, 1)
	go func() { out <- s.follow(r, ev) }()
	exit, err := ctr.Wait()
	tail := <-out
	if err != nil {
		return s.sp.At(st.Pos, err)
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if exit.Code == 0 {
		return nil
	}
	msg := fmt.Sprintf("exited with status %d", exit.Code)
	if exit.Signal != 0 {
		msg = fmt.Sprintf("killed by signal %d (%v)", exit.Signal, exit.Signal)
	}
	if len(tail) > 0 {
		msg += "; last lines of output:\n    " + strings.Join(tail, "\n    ")
	}
	return s.sp.At(st.Pos, errors.New(msg))
}

// follow reports each line of a step's output and returns the last tailLines of them.
func (s *stepper) follow(r io.Reader, ev Event) []string {
	var tail []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			s.progress(ev, StepOutput, func(e *Event) { e.Line = line })
			if len(line) > 512 {
				line = line[:512] + "..."
			}
			if tail = append(tail, line); len(tail) > tailLines {
				tail = tail[1:]
			}
		}
		if err != nil {
			return tail
		}
	}
}
