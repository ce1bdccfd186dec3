package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobsOf lists an image's manifest, config and layer digests.
func blobsOf(t *testing.T, s *Store, h v1.Hash) []v1.Hash {
	t.Helper()
	img, err := s.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{h, m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func blobSize(t *testing.T, s *Store, h v1.Hash) int64 {
	fi, err := os.Stat(filepath.Join(s.blobsDir(), h.Hex))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestGC(t *testing.T) {
	s := newStore(t)
	base, _ := random.Image(256, 1)
	l, _ := random.Layer(256, types.DockerLayer)
	derived, _ := mutate.AppendLayers(base, l)
	keep := commitImage(t, s, base, "keep")
	drop := commitImage(t, s, derived, "drop")
	if _, err := s.Untag("drop"); err != nil {
		t.Fatal(err)
	}
	// A blob committed without a tag is garbage too.
	tx, _ := s.Begin(context.Background())
	loose, _, _ := tx.WriteBlob(strings.NewReader("loose"))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Leftovers of killed processes.
	os.MkdirAll(filepath.Join(s.tmpDir(), "tx-killed"), 0o700)
	os.WriteFile(filepath.Join(s.tmpDir(), ".index.json.tmp-123456"), []byte("{"), 0o644)
	os.WriteFile(filepath.Join(s.blobsDir(), "not-a-digest"), nil, 0o644)

	var want []v1.Hash
	var freed int64
	for _, h := range append(blobsOf(t, s, drop), loose) {
		if !slices.Contains(blobsOf(t, s, keep), h) {
			want = append(want, h)
			freed += blobSize(t, s, h)
		}
	}
	slices.SortFunc(want, func(a, b v1.Hash) int { return strings.Compare(a.Hex, b.Hex) })

	rep, err := s.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Removed, want) || rep.Freed != freed {
		t.Errorf("GC removed %v (%d bytes), want %v (%d bytes)", rep.Removed, rep.Freed, want, freed)
	}
	for _, h := range blobsOf(t, s, keep) {
		if !s.HasBlob(h) {
			t.Errorf("GC removed %s of a tagged image", h)
		}
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp/ holds %v after gc", left)
	}
	if !slices.Contains(blobNames(t, s), "not-a-digest") {
		t.Error("GC removed a file it does not own")
	}
	if rep, err := s.GC(context.Background()); err != nil || len(rep.Removed) != 0 {
		t.Errorf("second GC = %+v, %v", rep, err)
	}
}

func TestGCKeepsIndexChildren(t *testing.T) {
	s := newStore(t)
	tx, _ := s.Begin(context.Background())
	h, err := tx.WriteImage(randomImage(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.readSmall(h)
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":` +
		strconv.Itoa(len(raw)) + `,"digest":"` + h.String() + `","platform":{"architecture":"amd64","os":"linux"}}]}`
	ih, _, err := tx.WriteBlob(strings.NewReader(index))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Tag("multi", ih); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rep, err := s.GC(context.Background())
	if err != nil || len(rep.Removed) != 0 {
		t.Errorf("GC = %+v, %v; want nothing removed", rep, err)
	}
	if p, err := s.Check(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("Check() = %v, %v", p, err)
	}
}

// GC waits for an open transaction, and then keeps what it committed, even
// blobs that were garbage when the transaction began.
func TestGCWaitsForTx(t *testing.T) {
	s := newStore(t)
	img := randomImage(t)
	tx1, _ := s.Begin(context.Background())
	if _, err := tx1.WriteImage(img); err != nil { // committed untagged: garbage
		t.Fatal(err)
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}

	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h, err := tx.WriteImage(img) // everything deduplicated against blobs/
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(tx.dir); len(entries) != 0 {
		t.Errorf("stored blobs were staged again: %d files", len(entries))
	}
	tx.Tag("late", h)

	done := make(chan GCReport)
	go func() {
		rep, err := s.GC(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	select {
	case <-done:
		t.Fatal("GC ran while a transaction was open")
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if rep := <-done; len(rep.Removed) != 0 {
		t.Errorf("GC removed %v", rep.Removed)
	}
	if p, err := s.Check(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("Check() = %v, %v", p, err)
	}
	if _, err := s.Image(h); err != nil {
		t.Error(err)
	}
}

func TestGCHonoursContext(t *testing.T) {
	s := newStore(t)
	tx, _ := s.Begin(context.Background())
	defer tx.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.GC(ctx); err == nil {
		t.Error("GC did not give up waiting for the transaction")
	}
}

func TestCheck(t *testing.T) {
	s := newStore(t)
	h := commitImage(t, s, randomImage(t), "curl")
	if p, err := s.Check(context.Background()); err != nil || len(p) != 0 {
		t.Fatalf("Check() on a sound store = %v, %v", p, err)
	}
	blobs := blobsOf(t, s, h)
	config, layer1 := blobs[1], blobs[3]

	// Corrupt the config, remove a layer.
	cp := filepath.Join(s.blobsDir(), config.Hex)
	os.Chmod(cp, 0o644)
	if err := os.WriteFile(cp, []byte(`{"tampered":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(s.blobsDir(), layer1.Hex)); err != nil {
		t.Fatal(err)
	}
	problems, err := s.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{
		config.String() + ": content hashes to " + sha([]byte(`{"tampered":true}`)).String(),
		"curl:latest: config " + config.String() + ": size 17, descriptor says " + strconv.Itoa(int(sizeOfDesc(t, s, h, config))),
		"curl:latest: layer " + layer1.String() + " missing",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Check() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A tag whose manifest is gone.
	other := commitImage(t, s, randomImage(t), "gone")
	os.Remove(filepath.Join(s.blobsDir(), other.Hex))
	problems, _ = s.Check(context.Background())
	if last := problems[len(problems)-1].String(); last != "gone:latest: manifest "+other.String()+" missing" {
		t.Errorf("last problem %q", last)
	}
}

func sizeOfDesc(t *testing.T, s *Store, h, blob v1.Hash) int64 {
	raw, err := s.readBlob(h, maxMetaSize)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := v1.ParseManifest(strings.NewReader(string(raw)))
	if m.Config.Digest == blob {
		return m.Config.Size
	}
	for _, l := range m.Layers {
		if l.Digest == blob {
			return l.Size
		}
	}
	t.Fatalf("%s not in %s", blob, h)
	return 0
}
