package build

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"

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
	log      *slog.Logger
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
				CreatedBy: fmt.Sprintf("kiln build: step %d: %s", i+1, strings.Join(st.Run, " "))},
		})
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, l)
	}
	return img, layers, nil
}

// step returns the layer of step i on img: from the build cache, or by running it.
func (s *stepper) step(ctx context.Context, img v1.Image, i int, st spec.Step) (*builtLayer, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := stepConfig(cf, s.baseUser)
	l := &builtLayer{st: s.st, tx: s.tx}
	if s.opts.CacheDir != "" {
		if l.key, err = s.cacheKey(cf, cfg, st); err != nil {
			return nil, err
		}
		if w, ok := loadCache(s.opts.CacheDir, l.key); ok && !s.opts.NoCache && s.st.HasBlob(w.Digest) {
			l.w, l.cached = w, true
			s.log.Info(fmt.Sprintf("step %d: from cache", i+1), "digest", w.Digest.String())
			return l, nil
		}
	}
	s.log.Info(fmt.Sprintf("step %d: %s", i+1, oneLine(st.Run)))
	w, err := s.run(ctx, img, cfg, i, st)
	if err != nil {
		return nil, err
	}
	l.w = w
	s.log.Info(fmt.Sprintf("step %d: layer", i+1), "digest", w.Digest.String(), "size", w.Size)
	return l, nil
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
func (s *stepper) run(ctx context.Context, img v1.Image, cfg *v1.ConfigFile, i int, st spec.Step) (layer.Written, error) {
	dirs, err := s.st.Unpack(ctx, img)
	if err != nil {
		return layer.Written{}, err
	}
	if err := os.MkdirAll(s.opts.WorkDir, 0o700); err != nil {
		return layer.Written{}, err
	}
	work, err := os.MkdirTemp(s.opts.WorkDir, "step-")
	if err != nil {
		return layer.Written{}, err
	}
	defer os.RemoveAll(work)
	c, err := s.container(work, dirs, cfg, st)
	if err != nil {
		return layer.Written{}, s.sp.At(st.Pos, err)
	}
	if err := s.exec(ctx, c, i, st); err != nil {
		return layer.Written{}, err
	}
	exclude := []string{spec.BuildDir}
	for _, m := range c.Spec.Mounts {
		exclude = append(exclude, m.Destination)
	}
	upper := filepath.Join(work, "upper")
	return writeLayer(ctx, s.tx, func(w io.Writer) (layer.Written, error) {
		return layer.Diff(w, upper, s.opts.Epoch, exclude)
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
func (s *stepper) exec(ctx context.Context, c runtime.Config, i int, st spec.Step) error {
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
	go func() { out <- s.follow(r, i) }()
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

// follow logs each line of a step's output and returns the last tailLines of them.
func (s *stepper) follow(r io.Reader, i int) []string {
	var tail []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			s.log.Info(fmt.Sprintf("step %d | %s", i+1, line))
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
