package build_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kiln-project/kiln/internal/build"
	"github.com/kiln-project/kiln/internal/spec"
	"github.com/kiln-project/kiln/internal/store"
)

// Building the same kiln.yaml gives the same manifest digest on any machine, at any time: the
// digest below is pinned, so a change to the layer writer, the config or the manifest shows here.
func Example() {
	root, _ := os.MkdirTemp("", "kiln-example-")
	defer os.RemoveAll(root)
	st, _ := store.Open(root)
	sp, err := spec.Load("testdata/hello/kiln.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := build.Build(context.Background(), st, sp, build.Options{Epoch: time.Unix(0, 0)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Tags[0], res.Digest)
	// Output: hello:pinned sha256:94f6c41aab9a1da091d913f7f9b67965bbece3e9c3dd45ad3a030b7a76b2de9a
}
