package build

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/layer"
)

// The layer cache maps a key of everything that can change a layer's bytes to the layer's
// descriptor. Host files are keyed by what stat says (device, inode, size, mode, mtime, ctime), the
// way make and git's index decide a file is unchanged: ctime cannot be set by a user, so any write
// to a file changes its key without reading its content.
//
// Except within one timestamp tick: a file rewritten with the same size right after a build can
// keep its stat. Git calls such an entry "racily clean"; as git does, a file whose mtime or ctime is
// no earlier than racyWindow before the build started has its content hashed into the key too.

// racyWindow covers filesystems with coarse timestamps (FAT keeps 2 s) and clocks a little apart.
const racyWindow = 2 * time.Second

// cacheVersion changes whenever the layer writer's output for the same entries could change: a new
// layout of the key, another Go (archive/tar) or another compressor.
var cacheVersion = sync.OnceValue(func() string {
	bi, _ := debug.ReadBuildInfo()
	return writerVersion(runtime.Version(), bi)
})

// compressModule writes the layers' gzip stream.
const compressModule = "github.com/klauspost/compress"

func writerVersion(goVersion string, bi *debug.BuildInfo) string {
	v := "kiln-layer-v2 " + goVersion
	if bi == nil {
		return v
	}
	for _, d := range bi.Deps {
		if d.Path == compressModule {
			if d.Replace != nil {
				d = d.Replace
			}
			v += " " + d.Path + "@" + d.Version + " " + d.Sum
		}
	}
	return v
}

// cacheKey hashes the planned entries; start is when the build began (for the racy rule). stable,
// if not nil, keys a source that stat cannot: a file of a stage's immutable root.
func cacheKey(planned []layer.Entry, epoch int64, start time.Time, stable func(string) (string, bool)) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", cacheVersion(), epoch)
	racy := start.Add(-racyWindow)
	for _, e := range planned {
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d\x00%d\x00%s\x00", e.Path, e.Kind, uint32(e.Mode), e.UID, e.GID, e.Target)
		if e.Source == "" {
			sum := sha256.Sum256(e.Data)
			h.Write(sum[:])
			continue
		}
		if stable != nil {
			if k, ok := stable(e.Source); ok {
				fmt.Fprintf(h, "stage\x00%s\x00", k)
				continue
			}
		}
		if err := statKey(h, e.Source, racy); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// statKey writes what stat says about p to h, and p's content when it changed at or after racy.
func statKey(h hash.Hash, p string, racy time.Time) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return fileKey(h, p, &st, racy)
}

func fileKey(h hash.Hash, p string, st *unix.Stat_t, racy time.Time) error {
	fmt.Fprintf(h, "%s\x00", p)
	for _, v := range []uint64{uint64(st.Dev), uint64(st.Ino), uint64(st.Size), uint64(st.Mode),
		uint64(st.Mtim.Nano()), uint64(st.Ctim.Nano())} {
		binary.Write(h, binary.LittleEndian, v)
	}
	mtime, ctime := time.Unix(0, st.Mtim.Nano()), time.Unix(0, st.Ctim.Nano())
	if mtime.Before(racy) && ctime.Before(racy) {
		return nil
	}
	return contentKey(h, p)
}

// contentKey hashes p's content into h.
func contentKey(h hash.Hash, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	h.Write([]byte("content\x00"))
	h.Write(sum.Sum(nil))
	return nil
}

func loadCache(dir, key string) (layer.Written, bool) {
	var w layer.Written
	if dir == "" {
		return w, false
	}
	b, err := os.ReadFile(filepath.Join(dir, key))
	if err != nil || json.Unmarshal(b, &w) != nil {
		return w, false
	}
	return w, true
}

// saveCache records a layer. Failing to is not an error: the next build just does the work again.
func saveCache(dir, key string, w layer.Written) {
	if dir == "" || key == "" {
		return
	}
	b, _ := json.Marshal(w)
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	atomicfile.Write(filepath.Join(dir, key), b, 0o600, atomicfile.NoSync, "")
}
