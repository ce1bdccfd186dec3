package layer

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	stdgzip "compress/gzip"

	"github.com/klauspost/compress/gzip"
)

var epoch = time.Unix(1700000000, 0)

// writeFile makes a host file for a Source and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
	return p
}

// sampleEntries covers every kind, special modes and owners.
func sampleEntries(t testing.TB) []Entry {
	dir := t.TempDir()
	return []Entry{
		{Path: "/usr/bin/app", Kind: Regular, Mode: 0o755, Source: writeFile(t, dir, "app", []byte("#!/bin/sh\necho hi\n"), 0o700)},
		{Path: "/usr/bin/su", Kind: Regular, Mode: 0o755 | fs.ModeSetuid, Data: []byte("setuid")},
		{Path: "/usr/lib/libx.so.1", Kind: Regular, Source: writeFile(t, dir, "lib", bytes.Repeat([]byte("lib"), 5000), 0o640)},
		{Path: "/lib", Kind: Symlink, Target: "usr/lib"},
		{Path: "/tmp", Kind: Dir, Mode: 0o777 | fs.ModeSticky},
		{Path: "/home/app", Kind: Dir, Mode: 0o750, UID: 1000, GID: 1001},
		{Path: "/home/app/.profile", Kind: Regular, Mode: 0o644, UID: 1000, GID: 1001, Data: []byte("export A=1\n")},
		{Path: "/etc/empty", Kind: Regular, Mode: 0o600},
	}
}

func writeLayer(t testing.TB, entries []Entry, mtime time.Time) ([]byte, Written) {
	t.Helper()
	planned, err := Plan(entries)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := Write(&buf, planned, mtime)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w
}

func gunzip(t testing.TB, blob []byte) []byte {
	t.Helper()
	zr, err := stdgzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type tarFile struct {
	hdr  *tar.Header
	data string
}

func readTar(t testing.TB, data []byte) []tarFile {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []tarFile
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarFile{hdr, string(content)})
	}
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func TestWriteIsDeterministic(t *testing.T) {
	entries := sampleEntries(t)
	blob1, w1 := writeLayer(t, entries, epoch)
	blob2, w2 := writeLayer(t, entries, epoch)
	if !bytes.Equal(blob1, blob2) || w1 != w2 {
		t.Fatalf("two writes differ: %+v vs %+v", w1, w2)
	}
	tarData := gunzip(t, blob1)
	if w1.Digest.String() != "sha256:"+sha256Hex(blob1) || w1.Size != int64(len(blob1)) {
		t.Errorf("Digest/Size %v %d do not describe the blob", w1.Digest, w1.Size)
	}
	if w1.DiffID.String() != "sha256:"+sha256Hex(tarData) || w1.UncompressedSize != int64(len(tarData)) {
		t.Errorf("DiffID/UncompressedSize %v %d do not describe the tar", w1.DiffID, w1.UncompressedSize)
	}
	// Sub-second parts of mtime are dropped; seconds are not.
	_, w3 := writeLayer(t, entries, epoch.Add(300*time.Millisecond))
	if w3 != w1 {
		t.Errorf("sub-second mtime changed the layer")
	}
	_, w4 := writeLayer(t, entries, epoch.Add(time.Second))
	if w4.Digest == w1.Digest || w4.DiffID == w1.DiffID {
		t.Errorf("a different mtime gave the same layer %v", w4.Digest)
	}
}

func TestWriteGzipHeaderHasNoNameOrTime(t *testing.T) {
	blob, _ := writeLayer(t, sampleEntries(t), epoch)
	zr, err := stdgzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.IsZero() || zr.Extra != nil {
		t.Errorf("gzip header = %+v, want empty", zr.Header)
	}
	// ID1 ID2 CM FLG MTIME(4) XFL OS: no optional fields, MTIME 0 ("none").
	if got := hex.EncodeToString(blob[:10]); got != "1f8b08000000000000ff" {
		t.Errorf("gzip header bytes %s", got)
	}
}

func TestWriteTarContents(t *testing.T) {
	blob, _ := writeLayer(t, sampleEntries(t), epoch)
	type want struct {
		typ      byte
		mode     int64
		uid, gid int
		link     string
		data     string
	}
	wants := map[string]want{
		"etc/":              {typ: tar.TypeDir, mode: 0o755},
		"etc/empty":         {typ: tar.TypeReg, mode: 0o600},
		"home/":             {typ: tar.TypeDir, mode: 0o755},
		"home/app/":         {typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1001},
		"home/app/.profile": {typ: tar.TypeReg, mode: 0o644, uid: 1000, gid: 1001, data: "export A=1\n"},
		"lib":               {typ: tar.TypeSymlink, mode: 0o777, link: "usr/lib"},
		"tmp/":              {typ: tar.TypeDir, mode: 0o1777},
		"usr/":              {typ: tar.TypeDir, mode: 0o755},
		"usr/bin/":          {typ: tar.TypeDir, mode: 0o755},
		"usr/bin/app":       {typ: tar.TypeReg, mode: 0o755, data: "#!/bin/sh\necho hi\n"},
		"usr/bin/su":        {typ: tar.TypeReg, mode: 0o4755, data: "setuid"},
		"usr/lib/":          {typ: tar.TypeDir, mode: 0o755},
		"usr/lib/libx.so.1": {typ: tar.TypeReg, mode: 0o640, data: strings.Repeat("lib", 5000)}, // mode from the source
	}
	var names []string
	for _, f := range readTar(t, gunzip(t, blob)) {
		h := f.hdr
		names = append(names, h.Name)
		w, ok := wants[h.Name]
		if !ok {
			t.Errorf("unexpected entry %q", h.Name)
			continue
		}
		got := want{h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, f.data}
		if got != w {
			t.Errorf("%s = %+v, want %+v", h.Name, got, w)
		}
		if !h.ModTime.Equal(epoch) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v, want mtime %v only", h.Name, h.ModTime, h.AccessTime, h.ChangeTime, epoch)
		}
		if h.Uname != "" || h.Gname != "" || len(h.PAXRecords) != 0 {
			t.Errorf("%s: uname %q gname %q pax %v, want none", h.Name, h.Uname, h.Gname, h.PAXRecords)
		}
	}
	wantOrder := "etc/ etc/empty home/ home/app/ home/app/.profile lib tmp/ usr/ usr/bin/ usr/bin/app usr/bin/su usr/lib/ usr/lib/libx.so.1"
	if got := strings.Join(names, " "); got != wantOrder {
		t.Errorf("order:\n got %s\nwant %s", got, wantOrder)
	}
}

func TestWriteLongNames(t *testing.T) {
	for _, tc := range []struct {
		path string
		pax  int // PAX records needed
	}{
		{"/opt/" + strings.Repeat("d", 120) + "/file", 0}, // fits USTAR's prefix + name
		{"/opt/" + strings.Repeat("f", 150), 1},           // a base name over 100 bytes does not
	} {
		blob, _ := writeLayer(t, []Entry{{Path: tc.path, Kind: Regular, Mode: 0o644, Data: []byte("x")}}, epoch)
		files := readTar(t, gunzip(t, blob))
		last := files[len(files)-1].hdr
		if last.Name != tc.path[1:] {
			t.Fatalf("name %q, want %q", last.Name, tc.path[1:])
		}
		if len(last.PAXRecords) != tc.pax || tc.pax == 1 && last.PAXRecords["path"] != tc.path[1:] {
			t.Errorf("%s: PAX records %v, want %d (path)", tc.path, last.PAXRecords, tc.pax)
		}
	}
}

func TestWriteRootDir(t *testing.T) {
	blob, _ := writeLayer(t, []Entry{{Path: "/", Kind: Dir, Mode: 0o755}}, epoch)
	files := readTar(t, gunzip(t, blob))
	if len(files) != 1 || files[0].hdr.Name != "./" {
		t.Fatalf("entries %+v, want one ./", files)
	}
}

func TestWriteRejectsUnplanned(t *testing.T) {
	entries := []Entry{
		{Path: "/b", Kind: Dir, Mode: 0o755},
		{Path: "/a", Kind: Dir, Mode: 0o755},
	}
	if _, err := Write(io.Discard, entries, epoch); err == nil {
		t.Fatal("Write of unsorted entries succeeded")
	}
}

func TestWriteSourceThatGrows(t *testing.T) {
	// procfs files stat as empty but read as text.
	entries := []Entry{{Path: "/status", Kind: Regular, Mode: 0o644, Source: "/proc/self/status"}}
	_, err := Write(io.Discard, entries, epoch)
	if err == nil || !strings.Contains(err.Error(), "/proc/self/status grew") {
		t.Fatalf("err = %v, want one naming the grown file", err)
	}
}

// truncatingWriter truncates a file the first time gzip output reaches it,
// which happens while the file is still being copied.
type truncatingWriter struct {
	path string
	done bool
}

func (w *truncatingWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		if err := os.Truncate(w.path, 0); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func TestWriteSourceThatShrinks(t *testing.T) {
	data := make([]byte, 8<<20)
	rng := rand.NewChaCha8([32]byte{})
	rng.Read(data)
	src := writeFile(t, t.TempDir(), "big", data, 0o644)
	entries := []Entry{{Path: "/big", Kind: Regular, Mode: 0o644, Source: src}}
	_, err := Write(&truncatingWriter{path: src}, entries, epoch)
	if err == nil || !strings.Contains(err.Error(), src+" shrank") {
		t.Fatalf("err = %v, want one naming the shrunk file", err)
	}
}

func TestWriteSourceErrorsNameTheEntry(t *testing.T) {
	entries := []Entry{{Path: "/x", Kind: Regular, Mode: 0o644, Source: "/nonexistent/kiln", Origin: "files[3]"}}
	_, err := Write(io.Discard, entries, epoch)
	if err == nil || !strings.Contains(err.Error(), "/x (files[3])") || !strings.Contains(err.Error(), "/nonexistent/kiln") {
		t.Fatalf("err = %v", err)
	}
	entries[0].Source = t.TempDir()
	if _, err := Write(io.Discard, entries, epoch); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v, want a directory Source refused", err)
	}
}

func TestWriteOverhead(t *testing.T) {
	dir := t.TempDir()
	var entries []Entry
	var sum int64
	rng := rand.NewChaCha8([32]byte{1})
	for i := range 40 {
		data := make([]byte, 20000+i*3001)
		rng.Read(data)
		sum += int64(len(data))
		name := fmt.Sprintf("lib%02d.so", i)
		entries = append(entries, Entry{Path: "/usr/lib/" + name, Kind: Regular, Mode: 0o644,
			Source: writeFile(t, dir, name, data, 0o644)})
	}
	_, w := writeLayer(t, entries, epoch)
	if limit := sum*101/100 + 16<<10; w.UncompressedSize > limit {
		t.Errorf("tar of %d bytes of files is %d bytes, over %d", sum, w.UncompressedSize, limit)
	}
	t.Logf("files %d bytes, tar %d (+%d), gzip %d", sum, w.UncompressedSize, w.UncompressedSize-sum, w.Size)
}

// hostLibs are real, large inputs for the benchmarks.
func hostLibs(b *testing.B) []Entry {
	var entries []Entry
	for _, p := range []string{
		"/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
		"/usr/lib/x86_64-linux-gnu/libssl.so.3",
		"/usr/lib/x86_64-linux-gnu/libc.so.6",
		"/usr/lib/x86_64-linux-gnu/libz.so.1",
		"/usr/lib/x86_64-linux-gnu/libcurl.so.4",
	} {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		entries = append(entries, Entry{Path: p, Kind: Regular, Mode: 0o644, Source: real})
	}
	if len(entries) == 0 || !strings.HasSuffix(entries[0].Path, "libcrypto.so.3") {
		b.Skip("no /usr/lib/x86_64-linux-gnu/libcrypto.so.3 on this host")
	}
	return entries
}

func BenchmarkWrite(b *testing.B) {
	planned, err := Plan(hostLibs(b))
	if err != nil {
		b.Fatal(err)
	}
	var w Written
	for b.Loop() {
		if w, err = Write(io.Discard, planned, epoch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(w.UncompressedSize)
	b.ReportMetric(float64(w.Size)/float64(w.UncompressedSize)*100, "%size")
}

// BenchmarkGzipLevels is how gzipLevel was chosen:
//
//	go test -run '^$' -bench GzipLevels ./internal/layer/
func BenchmarkGzipLevels(b *testing.B) {
	data, err := os.ReadFile("/usr/lib/x86_64-linux-gnu/libcrypto.so.3")
	if err != nil {
		b.Skip(err)
	}
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			var c counter
			for b.Loop() {
				c = counter{w: io.Discard}
				zw, _ := gzip.NewWriterLevel(&c, level)
				zw.Write(data)
				zw.Close()
			}
			b.SetBytes(int64(len(data)))
			b.ReportMetric(float64(c.n), "bytes")
		})
	}
}
