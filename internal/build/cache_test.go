package build

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/layer"
)

// A file rewritten with the same size within one timestamp tick keeps its stat: while it is that
// recent, its content is in the key.
func TestCacheKeyRacyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("aaaa"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	key := func(racy time.Time) string {
		h := sha256.New()
		if err := fileKey(h, p, &st, racy); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	buildStart := time.Now().Add(-racyWindow)
	longAfter := time.Now().Add(time.Hour) // as if the file had been written long before the build
	recentBefore, oldBefore := key(buildStart), key(longAfter)
	if err := os.WriteFile(p, []byte("bbbb"), 0o644); err != nil {
		t.Fatal(err)
	}
	// st is reused: the rewrite as a filesystem with coarse timestamps would show it.
	if key(buildStart) == recentBefore {
		t.Errorf("a recent file rewritten with the same stat kept its key")
	}
	if key(longAfter) != oldBefore {
		t.Errorf("an old file's key depends on more than its stat")
	}
}

// The key changes with the Go toolchain (archive/tar) and the gzip compressor.
func TestWriterVersion(t *testing.T) {
	bi := &debug.BuildInfo{Deps: []*debug.Module{
		{Path: "github.com/spf13/cobra", Version: "v1.10.2"},
		{Path: compressModule, Version: "v1.20.3", Sum: "h1:abc="},
	}}
	v := writerVersion("go1.26.8", bi)
	for _, want := range []string{"go1.26.8", compressModule + "@v1.20.3"} {
		if !strings.Contains(v, want) {
			t.Errorf("writerVersion %q lacks %q", v, want)
		}
	}
	bi.Deps[1].Version = "v1.20.4"
	if writerVersion("go1.26.8", bi) == v || writerVersion("go1.27.0", nil) == writerVersion("go1.26.8", nil) {
		t.Errorf("the version ignores a new compressor or Go")
	}
	if v := cacheVersion(); !strings.Contains(v, runtime.Version()) {
		t.Errorf("cacheVersion %q lacks %s", v, runtime.Version())
	}
}

// A file of a stage's root is keyed by the stable key it is given, not by stat: a fresh mount of
// the same stage has new device numbers but the same files.
func TestCacheKeyStableSources(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	planned := []layer.Entry{{Path: "/f", Kind: layer.Regular, Mode: 0o644, Source: src}}
	stable := func(id string) func(string) (string, bool) {
		return func(s string) (string, bool) { return id + s[len(dir):], s == src }
	}
	k1, err := cacheKey(planned, 0, time.Now(), stable("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte("y"), 0o644); err != nil { // new content and stat
		t.Fatal(err)
	}
	if k2, _ := cacheKey(planned, 0, time.Now(), stable("a")); k2 != k1 {
		t.Error("a stable source's key followed its stat")
	}
	if k3, _ := cacheKey(planned, 0, time.Now(), stable("b")); k3 == k1 {
		t.Error("another stage image kept the key")
	}
}
