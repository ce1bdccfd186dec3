package spec_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-project/kiln/internal/spec"
)

func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "kiln-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "kiln.yaml")
	os.WriteFile(path, []byte(`name: hello
contents:
  dirs: [{path: /tmp, mode: 01777}]
accounts:
  users: [{name: app, uid: 1000}]
  run-as: app
config:
  entrypoint: [/hello]
  env: {LANG: C.UTF-8}
  ports: [8080]
  stop-signal: INT
`), 0o644)

	s, err := spec.Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name+":"+s.Tag, s.Base.Ref, s.Dir == dir)
	fmt.Println(s.Contents.Dirs[0].Path, s.Contents.Dirs[0].Mode)
	fmt.Println(s.Config.User, s.Config.Env, s.Config.Ports, s.Config.StopSignal)
	// Output:
	// hello:latest scratch true
	// /tmp trwxrwxrwx
	// 1000:1000 [LANG=C.UTF-8] [8080/tcp] SIGINT
}

func ExampleParse_errors() {
	_, err := spec.Parse("kiln.yaml", []byte(`name: hello
contents:
  binary: [/hello]
  files:
    - {src: ./missing.conf, dst: /etc/hello.conf, uid: root}
`), os.TempDir())
	fmt.Println(err)
	// Output:
	// kiln.yaml:3: contents: unknown key "binary" (known: binaries, files, trees, symlinks, dirs, certificates, nss, timezone)
	// kiln.yaml:5: contents.files[0].src: ./missing.conf: no such file or directory
	// kiln.yaml:5: contents.files[0].uid: want an integer, got string "root"
}
