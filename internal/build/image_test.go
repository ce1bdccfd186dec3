package build

import (
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/spec"
)

// parse reads a kiln.yaml that names no host files.
func parse(t *testing.T, yaml string) *spec.Spec {
	t.Helper()
	sp, err := spec.Parse("kiln.yaml", []byte(yaml), t.TempDir())
	if err != nil {
		t.Fatalf("parse:\n%s\n%v", yaml, err)
	}
	return sp
}

// baseConfig is what a base image might set.
func baseConfig() v1.Config {
	return v1.Config{
		Entrypoint: []string{"/bin/base"},
		Cmd:        []string{"--base"},
		Env:        []string{"PATH=/base/bin", "A=base", "B=base"},
		User:       "base",
		WorkingDir: "/base",
	}
}

func TestApplyConfig(t *testing.T) {
	cases := []struct {
		name, yaml string
		scratch    bool
		helperEnv  []string
		want       v1.Config
	}{
		{"nothing set inherits everything", "name: x\n", false, nil, baseConfig()},
		{"entrypoint resets the inherited cmd", "name: x\nconfig:\n  entrypoint: [/bin/app]\n", false, nil,
			v1.Config{Entrypoint: []string{"/bin/app"}, Env: baseConfig().Env, User: "base", WorkingDir: "/base"}},
		{"entrypoint and cmd", "name: x\nconfig:\n  entrypoint: [/bin/app]\n  cmd: [-v]\n", false, nil,
			v1.Config{Entrypoint: []string{"/bin/app"}, Cmd: []string{"-v"}, Env: baseConfig().Env, User: "base", WorkingDir: "/base"}},
		{"cmd alone keeps the entrypoint", "name: x\nconfig:\n  cmd: [-v]\n", false, nil,
			v1.Config{Entrypoint: []string{"/bin/base"}, Cmd: []string{"-v"}, Env: baseConfig().Env, User: "base", WorkingDir: "/base"}},
		{"empty entrypoint clears", "name: x\nconfig:\n  entrypoint: []\n", false, nil,
			v1.Config{Entrypoint: []string{}, Env: baseConfig().Env, User: "base", WorkingDir: "/base"}},
		{"env: kiln.yaml over helpers over base, in place", "name: x\nconfig:\n  env: [C=yaml, A=yaml]\n", false,
			[]string{"B=helper", "A=helper", "SSL_CERT_FILE=/ca"},
			v1.Config{Entrypoint: []string{"/bin/base"}, Cmd: []string{"--base"}, User: "base", WorkingDir: "/base",
				Env: []string{"PATH=/base/bin", "A=yaml", "B=helper", "SSL_CERT_FILE=/ca", "C=yaml"}}},
		{"run-as becomes the user, as numbers", "name: x\naccounts:\n  users: [{name: app, uid: 1000}]\n  run-as: app\n", false, nil,
			v1.Config{Entrypoint: []string{"/bin/base"}, Cmd: []string{"--base"}, Env: baseConfig().Env, User: "1000:1000", WorkingDir: "/base"}},
		{"config.user wins over run-as", "name: x\naccounts:\n  users: [{name: app, uid: 1000}]\n  run-as: app\nconfig:\n  user: nobody\n  workdir: /srv\n", false, nil,
			v1.Config{Entrypoint: []string{"/bin/base"}, Cmd: []string{"--base"}, Env: baseConfig().Env, User: "nobody", WorkingDir: "/srv"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig()
			applyConfig(&cfg, parse(t, c.yaml), &collected{env: c.helperEnv}, c.scratch)
			assertConfig(t, cfg, c.want)
		})
	}
}

func TestApplyConfigScratchPATH(t *testing.T) {
	var cfg v1.Config
	applyConfig(&cfg, parse(t, "name: x\nconfig:\n  env: {LANG: C.UTF-8}\n"), &collected{}, true)
	if want := []string{defaultPath, "LANG=C.UTF-8"}; !slices.Equal(cfg.Env, want) {
		t.Errorf("env %q, want %q", cfg.Env, want)
	}
	cfg = v1.Config{}
	applyConfig(&cfg, parse(t, "name: x\nconfig:\n  env: {PATH: /app}\n"), &collected{}, true)
	if want := []string{"PATH=/app"}; !slices.Equal(cfg.Env, want) {
		t.Errorf("env %q, want %q: kiln.yaml's PATH replaces the default", cfg.Env, want)
	}
}

func assertConfig(t *testing.T, got, want v1.Config) {
	t.Helper()
	if !slices.Equal(got.Entrypoint, want.Entrypoint) || (got.Entrypoint == nil) != (want.Entrypoint == nil) {
		t.Errorf("entrypoint %#v, want %#v", got.Entrypoint, want.Entrypoint)
	}
	if !slices.Equal(got.Cmd, want.Cmd) {
		t.Errorf("cmd %q, want %q", got.Cmd, want.Cmd)
	}
	if !slices.Equal(got.Env, want.Env) {
		t.Errorf("env %q, want %q", got.Env, want.Env)
	}
	if got.User != want.User || got.WorkingDir != want.WorkingDir {
		t.Errorf("user %q workdir %q, want %q %q", got.User, got.WorkingDir, want.User, want.WorkingDir)
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4", "A=5", "EMPTY=", "D=x=y"})
	want := []string{"A=5", "B=3", "C=4", "EMPTY=", "D=x=y"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
	if got := mergeEnv(nil, []string{"A=1", "A=2"}); !slices.Equal(got, []string{"A=2"}) {
		t.Errorf("a name set twice: %q, want the last value once", got)
	}
}
