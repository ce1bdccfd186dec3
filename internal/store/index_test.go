package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestNormalizeRef(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"curl", "curl:latest"},
		{"curl:8.5", "curl:8.5"},
		{"my-org/my_app.x:V1_rc-2", "my-org/my_app.x:V1_rc-2"},
		{"ghcr.io/kiln/app", "ghcr.io/kiln/app:latest"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"localhost:5000/app:1", "localhost:5000/app:1"},
		{"a__b", "a__b:latest"},
		{"Curl", ""},
		{"", ""},
		{"app:", ""},
		{":tag", ""},
		{"app:-x", ""},
		{"app:" + strings.Repeat("t", 129), ""},
		{"a/", ""},
		{"a//b", ""},
		{"-a", ""},
		{"a.", ""},
		{"a___b", ""},
		{"app@sha256:abcd", ""},
		{"app:1:2", ""},
		{"localhost:5000", "localhost:5000"},
	} {
		got, err := normalizeRef(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("normalizeRef(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("normalizeRef(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// manifestsSharingPrefix writes two minimal manifests whose digests share
// their first 4 hex digits and tags them p1 and p2.
func manifestsSharingPrefix(t *testing.T, s *Store) (v1.Hash, v1.Hash) {
	t.Helper()
	seen := map[string][]byte{}
	for i := 0; ; i++ {
		b := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"annotations":{"n":"%d"}}`, i)
		h := sha(b)
		other, ok := seen[h.Hex[:4]]
		if !ok {
			seen[h.Hex[:4]] = b
			continue
		}
		tx, err := s.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Abort()
		h1, _, _ := tx.WriteBlob(strings.NewReader(string(other)))
		h2, _, _ := tx.WriteBlob(strings.NewReader(string(b)))
		tx.Tag("p1", h1)
		tx.Tag("p2", h2)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		return h1, h2
	}
}

func TestResolve(t *testing.T) {
	s := newStore(t)
	app := commitImage(t, s, randomImage(t), "app", "app:v1", "ghcr.io/x/app:2")
	p1, p2 := manifestsSharingPrefix(t, s)

	for _, tc := range []struct {
		ref  string
		want v1.Hash
		err  error
	}{
		{"app", app, nil},
		{"app:latest", app, nil},
		{"app:v1", app, nil},
		{"ghcr.io/x/app:2", app, nil},
		{app.String(), app, nil},
		{app.Hex, app, nil},
		{app.Hex[:12], app, nil},
		{"sha256:" + p1.Hex[:6], p1, nil},
		{p1.Hex[:4], v1.Hash{}, ErrAmbiguous},
		{"sha256:" + p2.Hex[:4], v1.Hash{}, ErrAmbiguous},
		{"app:v2", v1.Hash{}, ErrNotFound},
		{"nope", v1.Hash{}, ErrNotFound},
		{"sha256:" + strings.Repeat("0", 64), v1.Hash{}, ErrNotFound},
	} {
		got, err := s.Resolve(tc.ref)
		switch {
		case tc.err != nil:
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.ref) {
				t.Errorf("Resolve(%q) = %s, %v; want %v naming the ref", tc.ref, got, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("Resolve(%q) = %s, %v; want %s", tc.ref, got, err, tc.want)
		}
	}
	if _, err := s.Resolve("Bad Ref"); err == nil {
		t.Error("Resolve(invalid) succeeded")
	}
	if _, err := s.Resolve("sha256:ab"); err == nil {
		t.Error("Resolve(2-digit prefix) succeeded")
	}
	_, err := s.Resolve(p1.Hex[:4])
	if !strings.Contains(err.Error(), p1.String()) || !strings.Contains(err.Error(), p2.String()) {
		t.Errorf("ambiguous error %q does not list both digests", err)
	}
}

func TestResolveUntaggedDigest(t *testing.T) {
	s := newStore(t)
	tx, _ := s.Begin(context.Background())
	h, err := tx.WriteImage(randomImage(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Resolve(h.String()); err != nil || got != h {
		t.Errorf("Resolve(full digest of untagged image) = %s, %v", got, err)
	}
	if _, err := s.Resolve(h.Hex[:8]); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(prefix of untagged image) = %v, want ErrNotFound", err)
	}
}

func TestStoreTagAndUntag(t *testing.T) {
	s := newStore(t)
	a := commitImage(t, s, randomImage(t), "a")
	b := commitImage(t, s, randomImage(t), "b")

	if err := s.Tag(a.Hex[:8], "a:copy"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("a", "x/y:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("b", "a:copy"); err != nil { // retag moves it
		t.Fatal(err)
	}
	if err := s.Tag("missing", "z"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tag(missing) = %v", err)
	}
	if err := s.Tag("a", "BAD"); err == nil {
		t.Error("Tag to an invalid ref succeeded")
	}
	tags, _ := s.List()
	want := []Tagged{{"a:copy", b}, {"a:latest", a}, {"b:latest", b}, {"x/y:1", a}}
	if !slices.Equal(tags, want) {
		t.Fatalf("List() = %v, want %v", tags, want)
	}

	removed, err := s.Untag("a:copy")
	if err != nil || !slices.Equal(removed, []string{"a:copy"}) {
		t.Errorf("Untag(a:copy) = %v, %v", removed, err)
	}
	removed, err = s.Untag(a.Hex[:10])
	if err != nil || !slices.Equal(removed, []string{"a:latest", "x/y:1"}) {
		t.Errorf("Untag(prefix) = %v, %v", removed, err)
	}
	if _, err := s.Untag("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Untag(a) again = %v, want ErrNotFound", err)
	}
	removed, err = s.Untag("b")
	if err != nil || !slices.Equal(removed, []string{"b:latest"}) {
		t.Errorf("Untag(b) = %v, %v", removed, err)
	}
	if tags, _ := s.List(); len(tags) != 0 {
		t.Errorf("List() = %v after untagging all", tags)
	}
}
