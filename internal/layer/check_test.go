package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// buildTar writes headers (with content for regular files) as a tar.
func buildTar(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := *f.hdr
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(f.data))
		}
		if hdr.ModTime.IsZero() && hdr.Typeflag != tar.TypeXGlobalHeader {
			hdr.ModTime = epoch
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirH(name string) tarFile {
	return tarFile{&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}, ""}
}
func fileH(name, data string) tarFile {
	return tarFile{&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, data}
}
func symlinkH(name, target string) tarFile {
	return tarFile{&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}, ""}
}
func hardlinkH(name, target string) tarFile {
	return tarFile{&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}, ""}
}

func TestCheckAcceptsWriteOutput(t *testing.T) {
	blob, _ := writeLayer(t, sampleEntries(t), epoch)
	if err := Check(bytes.NewReader(gunzip(t, blob))); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAcceptsNormalLayer(t *testing.T) {
	layer := buildTar(t,
		tarFile{&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "x"}}, ""},
		dirH("./"),
		dirH("./etc/"),
		fileH("./etc/hostname", "kiln\n"),
		fileH("./a/../b", "clean stays inside"),
		symlinkH("etc/mtab", "/proc/self/mounts"),
		symlinkH("usr/lib/libz.so", "libz.so.1"),
		symlinkH("usr/lib/x/y", "../../../bin/sh"),
		hardlinkH("etc/hostname2", "etc/hostname"),
		hardlinkH("etc/hostname3", "/etc/hostname"), // root-relative
		hardlinkH("etc/mtab2", "etc/mtab"),          // a link to the symlink itself
		tarFile{&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, ""},
		tarFile{&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660}, ""},
		tarFile{&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, ""},
		fileH("var/.wh.cache", ""),
		fileH("opt/.wh..wh..opq", ""),
		symlinkH("link", "/etc"),
		dirH("link/"), // replaces the symlink: below it is fine again
		fileH("link/passwd", "ok"),
	)
	if err := Check(bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []tarFile
		path  string // UnsafeError.Path
	}{
		{"dotdot", []tarFile{fileH("../x", "")}, "../x"},
		{"dotdot inside", []tarFile{fileH("a/../../x", "")}, "a/../../x"},
		{"dotdot dir", []tarFile{dirH("a/b/../../../")}, "a/b/../../../"},
		{"absolute", []tarFile{fileH("/etc/passwd", "")}, "/etc/passwd"},
		{"hardlink out", []tarFile{hardlinkH("x", "../../etc/shadow")}, "x"},
		{"hardlink absolute out", []tarFile{hardlinkH("x", "/../etc/shadow")}, "x"},
		{"hardlink to nothing", []tarFile{hardlinkH("x", "etc/shadow")}, "x"},
		{"hardlink to dir", []tarFile{dirH("d/"), hardlinkH("x", "d")}, "x"},
		{"hardlink to whiteout", []tarFile{fileH(".wh.a", ""), hardlinkH("x", ".wh.a")}, "x"},
		{"hardlink to root", []tarFile{hardlinkH("x", "./")}, "x"},
		{"hardlink through symlink", []tarFile{symlinkH("l", "/etc"), hardlinkH("x", "l/passwd")}, "x"},
		{"symlink climbs", []tarFile{symlinkH("a/l", "../../etc")}, "a/l"},
		{"symlink climbs via dots", []tarFile{symlinkH("l", "x/../..")}, "l"},
		{"through symlink", []tarFile{symlinkH("link", "/etc"), fileH("link/passwd", "")}, "link/passwd"},
		{"through relative symlink", []tarFile{symlinkH("a/l", "."), fileH("a/l/x", "")}, "a/l/x"},
		{"through symlink deep", []tarFile{symlinkH("evil", "/"), dirH("evil/tmp/"), fileH("evil/tmp/pwned", "")}, "evil/tmp/"},
		{"through symlink via dots", []tarFile{symlinkH("l", "/etc"), fileH("x/../l/passwd", "")}, "x/../l/passwd"},
		{"whiteout of parent", []tarFile{fileH("a/.wh...", "")}, "a/.wh..."},
		{"whiteout of nothing", []tarFile{fileH("a/.wh.", "")}, "a/.wh."},
		{"root as file", []tarFile{fileH(".", "")}, "."},
		{"root as symlink", []tarFile{symlinkH(".", "/etc")}, "."},
		{"contiguous", []tarFile{{&tar.Header{Name: "c", Typeflag: tar.TypeCont}, ""}}, "c"},
		{"unknown type", []tarFile{{&tar.Header{Name: "z", Typeflag: 'Z'}, ""}}, "z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(bytes.NewReader(buildTar(t, tc.files...)))
			var unsafe *UnsafeError
			if !errors.As(err, &unsafe) {
				t.Fatalf("Check = %v, want *UnsafeError", err)
			}
			if unsafe.Path != tc.path {
				t.Errorf("Path = %q, want %q (%v)", unsafe.Path, tc.path, err)
			}
		})
	}
}

func TestUnsafeErrorMessage(t *testing.T) {
	err := Check(bytes.NewReader(buildTar(t, fileH("../x", ""))))
	if got, want := err.Error(), `unsafe layer entry "../x": path escapes the root`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestCheckTruncated(t *testing.T) {
	full := buildTar(t, fileH("a", strings.Repeat("x", 1000)), fileH("b", "bb"))
	headerB := 512 + 1024 // header a, content a (padded)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"mid header", full[:100]},
		{"mid content", full[:700]},
		{"at an entry boundary", full[:headerB]},
		{"no end of archive", full[:headerB+1024]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(bytes.NewReader(tc.data))
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Check = %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
	// A lone zero block ends the archive, as for GNU tar.
	if err := Check(bytes.NewReader(full[:headerB+1024+512])); err != nil {
		t.Errorf("lone end block: %v", err)
	}
	if err := Check(bytes.NewReader(full)); err != nil {
		t.Errorf("full: %v", err)
	}
}

func TestDecompress(t *testing.T) {
	plain := buildTar(t, fileH("a", strings.Repeat("hello ", 1000)))
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	for name, in := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		rc, err := Decompress(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: got %d bytes, err %v; want the tar back", name, len(got), err)
		}
	}
	rc, err := Decompress(bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(rc); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("empty input: Check = %v", err)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(buildTar(f, dirH("./"), fileH("a", "x"), symlinkH("l", "/etc"), hardlinkH("h", "a")))
	f.Add(buildTar(f, symlinkH("link", "/etc"), fileH("link/passwd", "")))
	f.Add(buildTar(f, fileH("../x", "")))
	f.Add(buildTar(f, fileH("a/.wh..wh..opq", ""), hardlinkH("b", "/../a")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(bytes.NewReader(data))
		var unsafe *UnsafeError
		if errors.As(err, &unsafe) && unsafe.Reason == "" {
			t.Fatalf("UnsafeError without reason: %v", err)
		}
	})
}
