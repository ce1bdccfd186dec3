package layer

import (
	"archive/tar"
	"bytes"
	"testing"
)

// TestWriteTarGzipMatchesWrite: Diff's pipeline is Write's, byte for byte,
// so Write can be expressed with writeTarGzip without moving a digest.
func TestWriteTarGzipMatchesWrite(t *testing.T) {
	for _, entries := range [][]Entry{
		sampleEntries(t),
		{
			{Path: "/etc/hostname", Kind: Regular, Mode: 0o644, Data: []byte("kiln\n")},
			{Path: "/bin", Kind: Symlink, Target: "usr/bin"},
		},
	} {
		planned, err := Plan(entries)
		if err != nil {
			t.Fatal(err)
		}
		var viaWrite, viaPipeline bytes.Buffer
		want, err := Write(&viaWrite, planned, epoch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := writeTarGzip(&viaPipeline, func(tw *tar.Writer) error {
			return writeEntries(tw, planned, wholeSeconds(epoch))
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != want || !bytes.Equal(viaPipeline.Bytes(), viaWrite.Bytes()) {
			t.Errorf("writeTarGzip: %v, Write: %v", got.Digest, want.Digest)
		}
	}
}
