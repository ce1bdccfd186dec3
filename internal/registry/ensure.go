package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/store"
)

// Policy says when `kiln run`, `kiln boot` and a build's base: pull (--pull).
type Policy int

const (
	PullMissing Policy = iota // pull only what the store lacks (the default)
	PullAlways                // ask the registry every time; only what changed moves
	PullNever                 // use the store only
)

var policyNames = [...]string{"missing", "always", "never"}

func (p Policy) String() string { return policyNames[p] }

// ParsePolicy parses "missing", "always" or "never".
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("--pull %q: want always, missing or never", s)
}

// Ensure returns the stored manifest digest of the image ref names, pulling it as policy says.
// ref is first looked up in the store as given (a store tag, a digest or a digest prefix), then
// under LocalName(ref) (so that "host/repo@sha256:..." finds what an earlier pull of it stored).
// A "sha256:..." ref is never pulled. With PullAlways every other ref is pulled, as Docker does,
// even one that names an image kiln built.
func (p *Puller) Ensure(ctx context.Context, st *store.Store, ref string, policy Policy) (v1.Hash, error) {
	if policy != PullAlways || storeOnly(ref) {
		d, err := lookup(st, ref)
		if err == nil || !errors.Is(err, store.ErrNotFound) || storeOnly(ref) {
			return d, err
		}
		if policy == PullNever {
			return v1.Hash{}, fmt.Errorf("%w (--pull never)", err)
		}
	}
	res, err := p.Pull(ctx, st, ref)
	if err != nil {
		return v1.Hash{}, err
	}
	return res.Digest, nil
}

// lookup resolves ref in the store, as given or by its LocalName. A ref that is neither a store
// reference nor a registry reference is an error that wraps ErrInvalidReference.
func lookup(st *store.Store, ref string) (v1.Hash, error) {
	d, err := st.Resolve(ref)
	if err == nil || storeOnly(ref) {
		return d, err
	}
	local, lerr := LocalName(ref)
	if lerr != nil {
		if errors.Is(err, store.ErrNotFound) {
			return v1.Hash{}, err
		}
		return v1.Hash{}, lerr
	}
	if local != ref {
		if d, err2 := st.Resolve(local); err2 == nil || !errors.Is(err2, store.ErrNotFound) {
			return d, err2
		}
	}
	return v1.Hash{}, fmt.Errorf("image %s: %w", ref, store.ErrNotFound)
}

// storeOnly reports whether ref can only name something in the store: "sha256:..." or a full
// hex digest (Docker refuses such repository names too). A shorter hex string is tried as a
// digest prefix first and otherwise pulled as a name, as Docker does.
func storeOnly(ref string) bool {
	if strings.HasPrefix(ref, "sha256:") {
		return true
	}
	if len(ref) != 64 {
		return false
	}
	for _, c := range ref {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
