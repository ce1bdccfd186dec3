package build

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/layer"
)

// The layer cache maps a key of everything that can change a layer's bytes to the layer's
// descriptor. Host files are keyed by what stat says (device, inode, size, mtime, ctime), the way
// make and git's index decide a file is unchanged: ctime cannot be set by a user, so any write to a
// file changes its key without reading its content.

// cacheVersion changes whenever the layer writer's output for the same entries could change.
const cacheVersion = "kiln-layer-v1"

func cacheKey(planned []layer.Entry, epoch int64) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", cacheVersion, epoch)
	for _, e := range planned {
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d\x00%d\x00%s\x00", e.Path, e.Kind, uint32(e.Mode), e.UID, e.GID, e.Target)
		if e.Source == "" {
			sum := sha256.Sum256(e.Data)
			h.Write(sum[:])
			continue
		}
		if err := statKey(h, e.Source); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func statKey(h hash.Hash, p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	fmt.Fprintf(h, "%s\x00", p)
	for _, v := range []uint64{st.Dev, st.Ino, uint64(st.Size), uint64(st.Mode),
		uint64(st.Mtim.Nano()), uint64(st.Ctim.Nano())} {
		binary.Write(h, binary.LittleEndian, v)
	}
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
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil && cerr == nil {
		if os.Rename(f.Name(), filepath.Join(dir, key)) == nil {
			return
		}
	}
	os.Remove(f.Name())
}
