package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const ociLayer = "application/vnd.oci.image.layer.v1.tar+gzip"

// buildBase builds "base" into root: a file, an account, env, entrypoint, cmd, workdir and run-as.
func buildBase(t *testing.T, root string) inspected {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "base.txt"), "from the base\n", 0o644)
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: base
contents:
  files: [{src: ./base.txt, dst: /base.txt}]
accounts:
  users: [{name: base, uid: 1000}]
  groups: [{name: base, gid: 1000}]
  run-as: base
config:
  entrypoint: [/bin/base]
  cmd: [--base]
  env: {BASEVAR: "1"}
  workdir: /base
`, 0o644)
	mustKiln(t, root, "build", dir)
	return inspect(t, root, "base")
}

// derivedProject is a build directory whose kiln.yaml starts from base and adds a file, a user,
// an entrypoint and a variable.
func derivedProject(t *testing.T, base string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.txt"), "app\n", 0o644)
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: derived
base: `+base+`
contents:
  files: [{src: ./app.txt, dst: /app.txt}]
accounts:
  users: [{name: app, uid: 2000}]
config:
  entrypoint: [/bin/app]
  env: {APPVAR: "2"}
`, 0o644)
	return dir
}

// base: in its three forms (and a docker-archive): the image keeps the base's layers, adds one,
// inherits the base's config under kiln.yaml's, and appends accounts to the base's /etc/passwd.
func TestBuildOnBase(t *testing.T) {
	need(t, "skopeo")
	src := t.TempDir()
	base := buildBase(t, src)
	tmp := t.TempDir()
	mustKiln(t, src, "save", "base", "-o", filepath.Join(tmp, "base.tar"))
	mustKiln(t, src, "save", "base", "--format", "docker", "-o", filepath.Join(tmp, "base-docker.tar"))
	run(t, "skopeo", "copy", "-q", "oci-archive:"+filepath.Join(tmp, "base.tar"), "oci:"+filepath.Join(tmp, "layout")+":base")
	forms := []struct{ name, base, file string }{
		{"store", "base", ""},
		{"oci-archive", "./base.tar", "base.tar"},
		{"docker-archive", "./base-docker.tar", "base-docker.tar"},
		{"oci-layout", "./layout", "layout"},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			dir := derivedProject(t, f.base)
			root := src
			if f.file != "" { // from the file alone, into a store that lacks the base
				run(t, "cp", "-r", filepath.Join(tmp, f.file), filepath.Join(dir, f.file))
				root = t.TempDir()
			}
			mustKiln(t, root, "build", dir)
			img := inspect(t, root, "derived")
			checkDerived(t, base, img)
			checkAccounts(t, layerFile(t, root, img.Layers[len(img.Layers)-1].Digest, "etc/passwd"))
			mustKiln(t, root, "check")
		})
	}
}

func checkDerived(t *testing.T, base, img inspected) {
	t.Helper()
	if len(img.Layers) != len(base.Layers)+1 {
		t.Fatalf("%d layers, want the base's %d and one more", len(img.Layers), len(base.Layers))
	}
	for i, l := range base.Layers {
		if img.Layers[i].DiffID != l.DiffID {
			t.Errorf("layer %d has diffID %s, the base's %s", i, img.Layers[i].DiffID, l.DiffID)
		}
	}
	for _, l := range img.Layers {
		if l.MediaType != ociLayer {
			t.Errorf("layer %s has media type %s, want %s", l.Digest, l.MediaType, ociLayer)
		}
	}
	if img.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest media type %s", img.MediaType)
	}
	c := img.Config
	if !slices.Equal(c.Entrypoint, []string{"/bin/app"}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q: want kiln.yaml's entrypoint and the base's cmd reset", c.Entrypoint, c.Cmd)
	}
	for _, v := range []string{"BASEVAR=1", "APPVAR=2"} {
		if !slices.Contains(c.Env, v) {
			t.Errorf("env %q lacks %s", c.Env, v)
		}
	}
	if c.User != "1000:1000" || c.WorkingDir != "/base" {
		t.Errorf("user %q workdir %q, want the base's 1000:1000 and /base", c.User, c.WorkingDir)
	}
}

// checkAccounts wants the base's passwd lines, then the new user.
func checkAccounts(t *testing.T, passwd string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(passwd, "\n"), "\n")
	var names []string
	for _, l := range lines {
		names = append(names, strings.SplitN(l, ":", 2)[0])
	}
	if !slices.Equal(names, []string{"root", "base", "app"}) || !strings.HasPrefix(lines[2], "app:x:2000:2000:") {
		t.Errorf("/etc/passwd is\n%s\nwant root and base from the base image, then app", passwd)
	}
}
