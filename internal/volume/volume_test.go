package volume

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func openVolumes(t *testing.T) (*Volumes, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "kiln")
	v, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return v, root
}

// entries lists ROOT/volumes.
func entries(t *testing.T, v *Volumes) []string {
	t.Helper()
	es, err := os.ReadDir(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCreateGetListRemove(t *testing.T) {
	v, root := openVolumes(t)
	if fi, err := os.Stat(filepath.Join(root, "volumes")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("volumes dir: %v, %v; want 0700", fi.Mode(), err)
	}

	data, err := v.Create("data", false, WithLabels(map[string]string{"app": "db"}))
	if err != nil {
		t.Fatal(err)
	}
	if data.Name != "data" || data.Anonymous || data.Labels["app"] != "db" || data.Created.IsZero() ||
		data.Dir != filepath.Join(root, "volumes", "data", "_data") {
		t.Errorf("Create = %+v", data)
	}
	if fi, err := os.Stat(data.Dir); err != nil || fi.Mode() != fs.ModeDir|0o755 {
		t.Errorf("_data: %v, %v; want a 0755 dir", fi.Mode(), err)
	}
	// Named volumes are made on first use: Create again returns the same one.
	again, err := v.Create("data", false)
	if err != nil || !again.Created.Equal(data.Created) || again.Labels["app"] != "db" {
		t.Errorf("second Create = %+v, %v; want %+v", again, err, data)
	}

	anon1, err := v.Create("", true)
	if err != nil {
		t.Fatal(err)
	}
	anon2, _ := v.Create("", true)
	for _, a := range []*Volume{anon1, anon2} {
		if len(a.Name) != 64 || strings.Trim(a.Name, "0123456789abcdef") != "" || !a.Anonymous {
			t.Errorf("anonymous volume %+v", a)
		}
	}
	if anon1.Name == anon2.Name {
		t.Error("two anonymous volumes got one name")
	}
	if _, err := v.Create("named", true); err == nil {
		t.Error("an anonymous volume took a name")
	}

	got, err := v.Get(anon1.Name)
	if err != nil || got.Name != anon1.Name || !got.Anonymous {
		t.Errorf("Get = %+v, %v", got, err)
	}
	if _, err := v.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v, want ErrNotFound", err)
	}

	list, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
	}
	want := []string{anon1.Name, anon2.Name, "data"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("List = %v, want %v", names, want)
	}

	os.WriteFile(filepath.Join(data.Dir, "f"), []byte("x"), 0o644)
	inUse := func(name string) bool { return name == "data" }
	if err := v.Remove("data", inUse); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "data") {
		t.Errorf("Remove of a volume in use = %v", err)
	}
	if _, err := os.Stat(filepath.Join(data.Dir, "f")); err != nil {
		t.Errorf("refused Remove lost data: %v", err)
	}
	if err := v.Remove("data", nil); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("data", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if _, err := v.Get("data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove = %v", err)
	}
	// A new volume of that name starts empty.
	fresh, err := v.Create("data", false)
	if err != nil {
		t.Fatal(err)
	}
	if empty, _ := isEmpty(fresh.Dir); !empty || fresh.Labels != nil {
		t.Errorf("re-created volume holds old data or labels: %+v", fresh)
	}
	for _, e := range entries(t, v) {
		if strings.HasPrefix(e, tmpPrefix) || strings.HasPrefix(e, rmPrefix) {
			t.Errorf("leftover %s", e)
		}
	}
}

func TestNames(t *testing.T) {
	v, root := openVolumes(t)
	for _, name := range []string{"ab", "A9", "my-vol_1.x", "x..y", strings.Repeat("x", 255)} {
		if _, err := v.Create(name, false); err != nil {
			t.Errorf("Create(%q): %v", name, err)
		}
	}
	bad := []string{"", "a", "0", "../x", "a/b", "/abs", "..", ".", ".hidden", "-x", "_x", "x y", "x\x00y",
		"a/../../escape", "..\\x", strings.Repeat("x", 256), ".lock", ".tmp-x"}
	for _, name := range bad {
		if _, err := v.Create(name, false); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := v.Get(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Get(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := v.Remove(name, nil); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Remove(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	// Nothing was made outside ROOT/volumes.
	if es, _ := os.ReadDir(root); len(es) != 1 {
		t.Errorf("%s holds %v", root, es)
	}
	if es, _ := os.ReadDir(filepath.Dir(root)); len(es) != 1 {
		t.Errorf("%s holds %v", filepath.Dir(root), es)
	}
}

func TestVolumeJSON(t *testing.T) {
	v, _ := openVolumes(t)
	vol, err := v.Create("", true, WithLabels(map[string]string{"k": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := readRecord(filepath.Dir(vol.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Name != vol.Name || !rec.Anonymous || rec.Labels["k"] != "v" || rec.Populated || !rec.Created.Equal(vol.Created) {
		t.Errorf("volume.json = %+v", rec)
	}
	// A volume.json naming another volume is refused, not trusted.
	os.WriteFile(filepath.Join(filepath.Dir(vol.Dir), recordFile), []byte(`{"name":"other"}`), 0o644)
	if _, err := v.Get(vol.Name); err == nil {
		t.Error("Get accepted a volume.json naming another volume")
	}
}

// Leftovers of killed processes: a half-made volume and a half-removed one.
func TestStaleLeftovers(t *testing.T) {
	v, _ := openVolumes(t)
	for _, d := range []string{tmpPrefix + "killed/_data", rmPrefix + "killed/_data/f"} {
		if err := os.MkdirAll(filepath.Join(v.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := v.List(); err != nil || len(list) != 0 {
		t.Errorf("List = %v, %v; leftovers are no volumes", list, err)
	}
	if _, err := v.Create("x1", false); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, v); !slices.Equal(got, []string{".lock", "x1"}) {
		t.Errorf("volumes/ holds %v", got)
	}
}

// Many goroutines create one named volume: one volume, made once.
func TestConcurrentCreate(t *testing.T) {
	v, _ := openVolumes(t)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		vols []*Volume
	)
	for range 16 {
		wg.Go(func() {
			vol, err := v.Create("shared", false)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			vols = append(vols, vol)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, vol := range vols {
		if !vol.Created.Equal(vols[0].Created) {
			t.Errorf("Create made the volume twice: %v and %v", vol.Created, vols[0].Created)
		}
	}
	if got := entries(t, v); !slices.Equal(got, []string{".lock", "shared"}) {
		t.Errorf("volumes/ holds %v", got)
	}
}
