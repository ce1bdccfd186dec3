package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/registry"
	"github.com/kiln-project/kiln/internal/store"
)

// fakeRegistry is go-containerregistry's in-memory registry behind a hook that can answer a
// request itself (to inject failures) before the registry sees it.
type fakeRegistry struct {
	*httptest.Server
	host string

	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func newRegistry(t *testing.T) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{}
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		hook := f.hook
		f.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	f.host = strings.TrimPrefix(f.URL, "http://")
	return f
}

func (f *fakeRegistry) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// fast retries, so that the tests that inject failures stay quick.
var fast = registry.Options{Backoff: remote.Backoff{Duration: 5 * time.Millisecond, Factor: 2, Steps: 4}}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ociImage is a random OCI image of n gzipped layers of size bytes each.
func ociImage(t *testing.T, n int, size int64) v1.Image {
	t.Helper()
	img := empty.Image
	for range n {
		l, err := random.Layer(size, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// put writes img into the registry directly, as another tool would.
func put(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func commit(t *testing.T, st *store.Store, img v1.Image, tag string) v1.Hash {
	t.Helper()
	tx, err := st.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	d, err := tx.WriteImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Tag(tag, d); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return d
}

func checkStore(t *testing.T, st *store.Store) {
	t.Helper()
	problems, err := st.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("kiln check: %s", p)
	}
}

func TestPushThenPull(t *testing.T) {
	reg := newRegistry(t)
	src := newStore(t)
	d := commit(t, src, ociImage(t, 3, 4096), "app:1")
	ref := reg.host + "/team/app:1"

	pushed, err := (&registry.Pusher{Options: fast}).Push(context.Background(), src, "app:1", ref)
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != d || pushed.Uploaded != 3 {
		t.Errorf("pushed %+v, want digest %s and 3 layers uploaded", pushed, d)
	}
	again, err := (&registry.Pusher{Options: fast}).Push(context.Background(), src, "app:1", ref)
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || again.Existing != 3 {
		t.Errorf("second push %+v, want nothing uploaded", again)
	}

	dst := newStore(t)
	var events atomic.Int64
	p := registry.Puller{Options: fast}
	p.Progress = func(registry.Event) { events.Add(1) }
	pulled, err := p.Pull(context.Background(), dst, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest != d || pulled.RegistryDigest != d || pulled.Fetched != 3 || pulled.Tag != ref {
		t.Errorf("pulled %+v, want %s stored as %s, 3 layers fetched", pulled, d, ref)
	}
	if events.Load() == 0 {
		t.Error("no progress events")
	}
	if got, err := dst.Resolve(ref); err != nil || got != d {
		t.Errorf("store resolves %s to %s, %v", ref, got, err)
	}
	checkStore(t, dst)

	// The layers are in the store: a second pull fetches none.
	pulled, err = p.Pull(context.Background(), dst, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Fetched != 0 {
		t.Errorf("second pull fetched %d layers", pulled.Fetched)
	}
}

// A Docker-media-type image is stored as OCI under another digest; pulling it by its registry
// digest tags it so that Ensure finds it by that digest again.
func TestPullDockerImageByDigest(t *testing.T) {
	reg := newRegistry(t)
	img, err := random.Image(2048, 2) // Docker schema 2 media types
	if err != nil {
		t.Fatal(err)
	}
	regDigest := put(t, reg.host+"/lib/x:v1", img)
	st := newStore(t)
	ref := reg.host + "/lib/x@" + regDigest.String()
	p := registry.Puller{Options: fast}
	pulled, err := p.Pull(context.Background(), st, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest == regDigest {
		t.Errorf("stored digest equals the Docker manifest's: was it not converted?")
	}
	wantTag := reg.host + "/lib/x:sha256-" + regDigest.Hex
	if pulled.Tag != wantTag || pulled.RegistryDigest != regDigest {
		t.Errorf("pulled %+v, want tag %s", pulled, wantTag)
	}
	got, err := p.Ensure(context.Background(), st, ref, registry.PullNever)
	if err != nil || got != pulled.Digest {
		t.Errorf("Ensure(%s, never) = %s, %v; want %s", ref, got, err, pulled.Digest)
	}
	checkStore(t, st)
}

func TestEnsurePolicies(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.host + "/app:1"
	d := put(t, ref, ociImage(t, 1, 1024))
	st := newStore(t)
	p := registry.Puller{Options: fast}
	ctx := context.Background()

	if _, err := p.Ensure(ctx, st, ref, registry.PullNever); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Ensure(never) of a missing image: %v, want ErrNotFound", err)
	}
	var gets atomic.Int64
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			gets.Add(1)
		}
		return false
	})
	for _, pol := range []registry.Policy{registry.PullMissing, registry.PullMissing, registry.PullNever} {
		got, err := p.Ensure(ctx, st, ref, pol)
		if err != nil || got != d {
			t.Fatalf("Ensure(%s) = %s, %v; want %s", pol, got, err, d)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("missing, missing, never asked the registry %d times, want 1", n)
	}
	if _, err := p.Ensure(ctx, st, ref, registry.PullAlways); err != nil {
		t.Fatal(err)
	}
	if n := gets.Load(); n != 2 {
		t.Errorf("always did not ask the registry")
	}
	if got, err := p.Ensure(ctx, st, d.String(), registry.PullAlways); err != nil || got != d {
		t.Errorf("Ensure(digest, always) = %s, %v", got, err)
	}
	if _, err := registry.ParsePolicy("sometimes"); err == nil {
		t.Error("ParsePolicy accepted sometimes")
	}
}

func TestPullPicksPlatform(t *testing.T) {
	reg := newRegistry(t)
	amd, arm := ociImage(t, 1, 512), ociImage(t, 1, 512)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	r, _ := name.ParseReference(reg.host + "/multi:1")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	amdDigest, _ := amd.Digest()
	armDigest, _ := arm.Digest()
	for _, c := range []struct {
		platform v1.Platform
		want     v1.Hash
	}{
		{v1.Platform{}, amdDigest},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, armDigest},
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, armDigest},
	} {
		p := registry.Puller{Options: fast, Platform: c.platform}
		pulled, err := p.Pull(context.Background(), newStore(t), r.String())
		if err != nil {
			t.Fatal(err)
		}
		if pulled.Digest != c.want {
			t.Errorf("platform %q: got %s (%s), want %s", c.platform.String(), pulled.Digest, pulled.Platform, c.want)
		}
	}
	p := registry.Puller{Options: fast, Platform: v1.Platform{OS: "linux", Architecture: "s390x"}}
	_, err := p.Pull(context.Background(), newStore(t), r.String())
	if !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Errorf("pull of a missing platform: %v", err)
	}
}

// Transient failures are retried: 500s, a 429 with Retry-After, and a connection cut in the
// middle of a layer.
func TestPullRetriesTransientFailures(t *testing.T) {
	reg := newRegistry(t)
	img := ociImage(t, 2, 64<<10)
	ref := reg.host + "/flaky:1"
	d := put(t, ref, img)
	layers, _ := img.Layers()
	cutDigest, _ := layers[0].Digest()
	errDigest, _ := layers[1].Digest()

	var manifest429, blob500, cut atomic.Int64
	var retryAfterWait time.Duration
	var first429 time.Time
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/") && manifest429.Add(1) == 1:
			first429 = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		case strings.Contains(r.URL.Path, "/manifests/") && retryAfterWait == 0:
			retryAfterWait = time.Since(first429)
		case strings.HasSuffix(r.URL.Path, errDigest.String()) && blob500.Add(1) <= 2:
			w.WriteHeader(http.StatusInternalServerError)
			return true
		case strings.HasSuffix(r.URL.Path, cutDigest.String()) && r.Method == http.MethodGet && cut.Add(1) == 1:
			// Half the layer, then the connection drops.
			rc, _ := layers[0].Compressed()
			data, _ := io.ReadAll(rc)
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		}
		return false
	})
	st := newStore(t)
	pulled, err := (&registry.Puller{Options: fast}).Pull(context.Background(), st, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest != d {
		t.Errorf("pulled %s, want %s", pulled.Digest, d)
	}
	if retryAfterWait < 900*time.Millisecond {
		t.Errorf("retried the 429 after %s, Retry-After said 1s", retryAfterWait)
	}
	if blob500.Load() < 3 || cut.Load() < 2 {
		t.Errorf("blob requests: %d to the 500 layer, %d to the cut one", blob500.Load(), cut.Load())
	}
	checkStore(t, st)
}

// A registry that serves a layer whose content is not its digest: an error, and nothing
// stored.
func TestPullWrongDigest(t *testing.T) {
	reg := newRegistry(t)
	img := ociImage(t, 1, 8192)
	ref := reg.host + "/liar:1"
	put(t, ref, img)
	layers, _ := img.Layers()
	bad, _ := layers[0].Digest()
	rc, _ := layers[0].Compressed()
	data, _ := io.ReadAll(rc)
	data[len(data)/2] ^= 0xff
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+bad.String()) && r.Method == http.MethodGet {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data)
			return true
		}
		return false
	})
	st := newStore(t)
	_, err := (&registry.Puller{Options: fast}).Pull(context.Background(), st, ref)
	if err == nil || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("pull of a corrupt layer: %v, want an error naming %s", err, bad)
	}
	t.Log(err)
	if st.HasBlob(bad) {
		t.Error("the corrupt layer was stored")
	}
	if tags, _ := st.List(); len(tags) != 0 {
		t.Errorf("tags after a failed pull: %v", tags)
	}
	checkStore(t, st)
}

// A pull cancelled while one layer is half fetched keeps the layers it finished, tags nothing,
// and the next pull fetches only the rest.
func TestInterruptedPullResumes(t *testing.T) {
	reg := newRegistry(t)
	img := ociImage(t, 3, 32<<10)
	ref := reg.host + "/big:1"
	d := put(t, ref, img)
	layers, _ := img.Layers()
	slow, _ := layers[1].Digest()
	stall := make(chan struct{})
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+slow.String()) || r.Method != http.MethodGet {
			return false
		}
		rc, _ := layers[1].Compressed()
		data, _ := io.ReadAll(rc)
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:len(data)/3])
		w.(http.Flusher).Flush()
		close(stall)
		<-r.Context().Done()
		return true
	})
	st := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	var finished atomic.Int64
	p := registry.Puller{Options: fast}
	p.Progress = func(e registry.Event) {
		if e.State == registry.Finished && finished.Add(1) == 2 {
			go func() { <-stall; cancel() }()
		}
	}
	if _, err := p.Pull(ctx, st, ref); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	if tags, _ := st.List(); len(tags) != 0 {
		t.Errorf("tags after a cancelled pull: %v", tags)
	}
	for i, l := range layers {
		h, _ := l.Digest()
		if want := i != 1; st.HasBlob(h) != want {
			t.Errorf("layer %d stored: %v, want %v", i, st.HasBlob(h), want)
		}
	}
	checkStore(t, st)

	reg.setHook(nil)
	pulled, err := (&registry.Puller{Options: fast}).Pull(context.Background(), st, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest != d || pulled.Fetched != 1 {
		t.Errorf("resumed pull %+v, want %s with 1 layer fetched", pulled, d)
	}
	checkStore(t, st)
}

// Bad input gives one line naming the reference, the right sentinel, and an unchanged store.
func TestPullErrors(t *testing.T) {
	reg := newRegistry(t)
	put(t, reg.host+"/there:1", ociImage(t, 1, 512))
	// A manifest of a media type kiln does not know.
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/manifests/odd") {
			w.Header().Set("Content-Type", "application/vnd.example.thing.v1+json")
			w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.thing.v1+json"}`))
			return true
		}
		if strings.Contains(r.URL.Path, "/locked/") {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	})
	// A port nothing listens on.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadHost := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()

	cases := []struct {
		ref  string
		want error
		text string
	}{
		{reg.host + "/there:nope", registry.ErrNotFound, "manifest unknown"},
		{reg.host + "/nothing/here:1", registry.ErrNotFound, "404"},
		{reg.host + "/there:odd", registry.ErrUnsupported, "application/vnd.example.thing.v1+json"},
		{reg.host + "/locked/x:1", registry.ErrUnauthorized, "kiln login " + reg.host},
		{deadHost + "/x:1", registry.ErrUnreachable, "connection refused"},
		{"UPPER/case:1", registry.ErrInvalidReference, "UPPER/case:1"},
		{reg.host + "/x@sha256:abc", registry.ErrInvalidReference, "sha256:abc"},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			root := t.TempDir()
			st, err := store.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&registry.Puller{Options: fast}).Pull(context.Background(), st, c.ref)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") || !strings.Contains(msg, c.text) || !strings.HasPrefix(msg, "pull ") {
				t.Errorf("message %q: want one line starting with pull and containing %q", msg, c.text)
			}
			if tags, _ := st.List(); len(tags) != 0 {
				t.Errorf("tags: %v", tags)
			}
			entries, _ := os.ReadDir(filepath.Join(root, "store", "blobs", "sha256"))
			if len(entries) != 0 {
				t.Errorf("%d blobs stored", len(entries))
			}
		})
	}
}

func TestLocalName(t *testing.T) {
	for ref, want := range map[string]string{
		"alpine":                           "alpine:latest",
		"docker.io/library/alpine:3":       "alpine:3",
		"user/app:1":                       "user/app:1",
		"127.0.0.1:5000/team/app":          "127.0.0.1:5000/team/app:latest",
		"ghcr.io/o/r@sha256:" + hex64("a"): "ghcr.io/o/r:sha256-" + hex64("a"),
	} {
		got, err := registry.LocalName(ref)
		if err != nil || got != want {
			t.Errorf("LocalName(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

func hex64(c string) string { return strings.Repeat(c, 64) }

func ExampleLocalName() {
	for _, ref := range []string{"alpine:3", "localhost:5000/app", "quay.io/org/tool@sha256:" + strings.Repeat("0", 64)} {
		n, _ := registry.LocalName(ref)
		fmt.Println(n)
	}
	// Output:
	// alpine:3
	// localhost:5000/app:latest
	// quay.io/org/tool:sha256-0000000000000000000000000000000000000000000000000000000000000000
}
