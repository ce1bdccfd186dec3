package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/spec"
)

// A step's cache key covers what it can see: the layers below it (their diff_ids), the config it
// runs with, the step as written, the epoch, and the build directory (as the contents layer's key
// covers host files: by stat, and by content when racily clean). kiln.yaml is left out of the build
// directory's part: the step's own fields stand for it, so editing a step keeps the steps before it.

// cacheKey is the key of step st on an image with config cf; cfg is the config st runs with.
func (s *stepper) cacheKey(cf, cfg *v1.ConfigFile, st spec.Step) (string, error) {
	if s.dirKey == "" {
		k, err := buildDirKey(s.sp, s.start)
		if err != nil {
			return "", err
		}
		s.dirKey = k
	}
	step, err := json.Marshal(struct {
		Run                 []string
		Env                 []string
		Workdir, User       string
		Network             string
		Copy                bool
		ImageEnv            []string
		ImageUser, Hostname string
		DiffIDs             []v1.Hash
	}{st.Run, st.Env, st.Workdir, st.User, st.Network, st.Copy,
		cfg.Config.Env, cfg.Config.User, stepHostname, cf.RootFS.DiffIDs})
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00step\x00%d\x00%s\x00", cacheVersion(), s.opts.Epoch.Unix(), s.dirKey)
	h.Write(step)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// buildDirKey hashes every path under the build directory, kiln.yaml aside.
func buildDirKey(sp *spec.Spec, start time.Time) (string, error) {
	h := sha256.New()
	racy := start.Add(-racyWindow)
	self, _ := filepath.Abs(sp.File)
	err := filepath.WalkDir(sp.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == self {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			return fileKey(h, p, &st, racy)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00link\x00%s\x00", p, target)
		default:
			fmt.Fprintf(h, "%s\x00%o\x00%d\x00%d\x00", p, st.Mode, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("build directory: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
