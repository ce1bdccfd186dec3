// Package volume keeps named and anonymous volumes, Docker's model, under
// ROOT/volumes. It owns their directories and metadata and the copy of an
// image's content into a new volume. It never mounts anything the host can
// see (the runtime binds Volume.Dir) and never knows which containers exist
// (callers say, see Remove).
//
//	volumes/.lock               flock: exclusive around Create and Remove
//	volumes/NAME/               flocked while it is populated or removed
//	volumes/NAME/_data/         what containers see: the bind mount source
//	volumes/NAME/volume.json    created, anonymous, labels, populated; replaced atomically
//	volumes/NAME/_populate.*/   a copy-up under way (see Populate)
//	volumes/.tmp-RANDOM/        a volume being created (or left by a kill)
//	volumes/.rm-RANDOM/         a volume being removed (or left by a kill)
//
// A volume appears whole, by renaming its finished .tmp- dir to NAME, and
// disappears whole, by renaming NAME to .rm- before deleting it, so a kill
// never leaves a half-made volume under a valid name. Names cannot start with
// a dot, so they never collide with the files above.
//
// Usage, for `kiln run -v NAME:/data IMAGE`:
//
//	vols, err := volume.Open(root)
//	// record that the container uses NAME first (see Remove), then:
//	v, err := vols.Create("NAME", false)       // made on first use, else the existing one
//	err = v.PopulateFromLayers(dirs, "/data") // Docker's copy-up, once, into an empty volume
//	// bind v.Dir on /data
//
// where dirs are the image's layers from store.Unpack. Populate and
// PopulateIn copy from a plain directory tree instead.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/flock"
)

// Sentinel errors, checked with errors.Is; the errors wrapping them name the
// volume.
var (
	ErrNotFound    = errors.New("no such volume")
	ErrInUse       = errors.New("volume is in use")
	ErrInvalidName = errors.New("invalid volume name: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ allowed")
)

// Volume is one volume. Values come from Create, Get and List.
type Volume struct {
	Name      string
	Dir       string // ROOT/volumes/NAME/_data: the directory to bind
	Created   time.Time
	Anonymous bool // made for a container (an image's VOLUME), removed with it by `kiln rm -v`
	Labels    map[string]string
}

// record is volume.json.
type record struct {
	Name      string            `json:"name"`
	Created   time.Time         `json:"created"`
	Anonymous bool              `json:"anonymous,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Populated bool              `json:"populated,omitempty"` // Populate copied content in: never again
}

const (
	dataDir    = "_data"
	recordFile = "volume.json"
	lockName   = ".lock"
	tmpPrefix  = ".tmp-"
	rmPrefix   = ".rm-"
	maxNameLen = 255 // one path component
)

// Volumes is the set of volumes under ROOT/volumes. It is safe for use by
// goroutines and by processes at once.
type Volumes struct {
	dir string
}

// Open opens ROOT/volumes, creating it (0700: volumes may hold setuid files
// copied from images) on first use.
func Open(root string) (*Volumes, error) {
	v := &Volumes{dir: filepath.Join(root, "volumes")}
	for _, d := range []string{root, v.dir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("open volumes: %w", err)
		}
	}
	if fi, err := os.Stat(v.dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("open volumes: %s is not a directory (%v)", v.dir, err)
	}
	return v, nil
}

// ValidName reports whether name is a valid volume name, the way Docker
// defines one: [a-zA-Z0-9][a-zA-Z0-9_.-]+. No such name contains a slash or
// is "." or "..", so it always stays one component under ROOT/volumes.
func ValidName(name string) error {
	ok := len(name) >= 2 && len(name) <= maxNameLen && alnum(name[0])
	for i := 1; ok && i < len(name); i++ {
		c := name[i]
		ok = alnum(c) || c == '_' || c == '.' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	return nil
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// CreateOption sets a property of a volume Create makes.
type CreateOption func(*record)

// WithLabels sets the labels of a new volume (`kiln volume create --label`).
func WithLabels(labels map[string]string) CreateOption {
	return func(r *record) {
		r.Labels = make(map[string]string, len(labels))
		for k, val := range labels {
			r.Labels[k] = val
		}
	}
}

// Create makes a volume, as `-v NAME:/path` does on first use. A named
// volume that exists already is returned as it is (options ignored), so
// Create is idempotent. An anonymous volume takes no name: it gets 64 random
// hex digits.
func (v *Volumes) Create(name string, anonymous bool, opts ...CreateOption) (*Volume, error) {
	if anonymous && name != "" {
		return nil, fmt.Errorf("create volume %s: an anonymous volume takes no name", name)
	}
	if !anonymous {
		if err := ValidName(name); err != nil {
			return nil, fmt.Errorf("create volume: %w", err)
		}
	}
	lk, err := flock.Open(context.Background(), filepath.Join(v.dir, lockName), flock.Exclusive, true)
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer lk.Close()
	v.removeStale()

	for anonymous && name == "" {
		name = randomHex(32)
		if _, err := os.Lstat(filepath.Join(v.dir, name)); err == nil {
			name = "" // 2^-256, but never hand out someone else's volume
		}
	}
	vol, err := v.Get(name)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return vol, err
	}
	rec := record{Name: name, Created: time.Now().UTC(), Anonymous: anonymous}
	for _, o := range opts {
		o(&rec)
	}
	if err := v.create(rec); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v.Get(name)
}

// create builds the volume in a .tmp- dir and renames it into place.
func (v *Volumes) create(rec record) error {
	tmp, err := os.MkdirTemp(v.dir, tmpPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	data := filepath.Join(tmp, dataDir)
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(data, 0o755); err != nil { // the umask must not narrow it
		return err
	}
	if err := writeRecord(tmp, rec); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, rec.Name)); err != nil {
		return err
	}
	return atomicfile.SyncDir(v.dir)
}

// Get returns the volume called name, or an error wrapping ErrNotFound.
func (v *Volumes) Get(name string) (*Volume, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(v.dir, name)
	rec, err := readRecord(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("volume %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	if rec.Name != name {
		return nil, fmt.Errorf("volume %s: %s names volume %q", name, filepath.Join(dir, recordFile), rec.Name)
	}
	return &Volume{
		Name:      name,
		Dir:       filepath.Join(dir, dataDir),
		Created:   rec.Created,
		Anonymous: rec.Anonymous,
		Labels:    rec.Labels,
	}, nil
}

// List returns every volume, sorted by name.
func (v *Volumes) List() ([]*Volume, error) {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var vols []*Volume
	for _, e := range entries {
		if ValidName(e.Name()) != nil {
			continue // .lock, .tmp-*, .rm-*
		}
		vol, err := v.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		vols = append(vols, vol)
	}
	return vols, nil
}

// Remove deletes the volume called name and its data. It refuses, with an
// error wrapping ErrInUse, when inUse(name) is true: inUse says whether a
// container (running or stopped) uses the volume.
//
// inUse runs under the volumes lock, which Create also takes: a container
// that records its volumes BEFORE calling Create is either seen by inUse, or
// has its Create wait for this Remove and make the volume afresh. inUse must
// not call Create or Remove. A Populate in progress is waited for.
func (v *Volumes) Remove(name string, inUse func(name string) bool) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("remove volume: %w", err)
	}
	trash, dl, err := v.detach(name, inUse)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	// Deleting the data may take long: the volumes lock is released by now,
	// the flock on the renamed dir tells removeStale to keep off.
	defer dl.Close()
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove volume %s: its data stays in %s: %w", name, trash, err)
	}
	return nil
}

// detach renames volume name to a .rm- dir, under the volumes lock and
// with the volume's own flock, which it returns held.
func (v *Volumes) detach(name string, inUse func(string) bool) (string, *os.File, error) {
	lk, err := flock.Open(context.Background(), filepath.Join(v.dir, lockName), flock.Exclusive, true)
	if err != nil {
		return "", nil, err
	}
	defer lk.Close()
	v.removeStale()
	dir := filepath.Join(v.dir, name)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", nil, ErrNotFound
	}
	if inUse != nil && inUse(name) {
		return "", nil, ErrInUse
	}
	dl, err := flock.Open(context.Background(), dir, flock.Exclusive, false) // waits for a Populate
	if err != nil {
		return "", nil, err
	}
	trash := filepath.Join(v.dir, rmPrefix+randomHex(8))
	err = os.Rename(dir, trash)
	if err == nil {
		err = atomicfile.SyncDir(v.dir)
	}
	if err != nil {
		dl.Close()
		return "", nil, err
	}
	return trash, dl, nil
}

// removeStale removes the .tmp- and .rm- dirs of killed processes: those
// whose flock nobody holds. Callers hold the volumes lock, under which every
// .tmp- dir is made and renamed; a .rm- dir is flocked while it is deleted.
func (v *Volumes) removeStale() {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tmpPrefix) && !strings.HasPrefix(e.Name(), rmPrefix) {
			continue
		}
		p := filepath.Join(v.dir, e.Name())
		if f, _ := flock.TryOpen(p, flock.Exclusive, false); f != nil {
			os.RemoveAll(p)
			f.Close()
		}
	}
}

func readRecord(dir string) (record, error) {
	var rec record
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", filepath.Join(dir, recordFile), err)
	}
	return rec, nil
}

// writeRecord replaces dir/volume.json atomically and durably.
func writeRecord(dir string, rec record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, recordFile), append(b, '\n'), 0o644, atomicfile.SyncAll, "")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
