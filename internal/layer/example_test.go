package layer_test

import (
	"fmt"
	"io"
	"log"
	"time"

	"github.com/kiln-project/kiln/internal/layer"
)

// The digests are pinned: if they change, layers built by earlier versions of
// kiln no longer reproduce.
func ExampleWrite() {
	planned, err := layer.Plan([]layer.Entry{
		{Path: "/etc/hostname", Kind: layer.Regular, Mode: 0o644, Data: []byte("kiln\n"), Origin: "example"},
		{Path: "/bin", Kind: layer.Symlink, Target: "usr/bin", Origin: "example"},
	})
	if err != nil {
		log.Fatal(err)
	}
	w, err := layer.Write(io.Discard, planned, time.Unix(0, 0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.DiffID)
	fmt.Println(w.Digest)
	// Output:
	// sha256:082ba89a47e8ef83e850883e94bd06a70be70531ec4629d890353e63e1ae1caa
	// sha256:2b924f7b794843302731f919e457b164472492bd05c2884f4a3fea5cee3052e3
}
