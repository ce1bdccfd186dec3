//go:build linux

package guest

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

func writeConfig(t *testing.T, c bootconfig.Config) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigCommandLineWins(t *testing.T) {
	file := writeConfig(t, bootconfig.Config{
		Args: []string{"/app", "baked"},
		Env:  []string{"A=baked", "B=baked", "PATH=/bin"},
		User: "1000:100",
	})
	c, err := LoadConfig(file, `console=ttyS0 quiet kiln.env.B="from cmdline" kiln.env.C=new kiln.workdir=/srv`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=baked", "B=from cmdline", "PATH=/bin", "C=new", "HOME=/"}; !slices.Equal(c.Env, want) {
		t.Errorf("Env = %q, want %q", c.Env, want)
	}
	if want := []string{"/app", "baked"}; !slices.Equal(c.Args, want) {
		t.Errorf("Args = %q, want %q", c.Args, want)
	}
	if c.Workdir != "/srv" || c.Hostname != "kiln" || c.User != "1000:100" {
		t.Errorf("Workdir, Hostname, User = %q, %q, %q; want /srv, kiln (the default), 1000:100", c.Workdir, c.Hostname, c.User)
	}
	if uid, gid, err := parseUser(c.User); err != nil || uid != 1000 || gid != 100 {
		t.Errorf("parseUser(%q) = %d, %d, %v", c.User, uid, gid, err)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, bootconfig.Config{Args: []string{"app"}}), `kiln.args=["sh","-c","exit 3"]`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sh", "-c", "exit 3"}; !slices.Equal(c.Args, want) {
		t.Errorf("Args = %q, want %q", c.Args, want)
	}
	if got := getenv(c.Env, "PATH"); got != defaultPath {
		t.Errorf("PATH = %q, want the default %q", got, defaultPath)
	}
	if c.Workdir != "/" {
		t.Errorf("Workdir = %q, want /", c.Workdir)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.json")
	if _, err := LoadConfig(missing, ""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing config: %v, want an error naming %s", err, missing)
	}
	cases := map[string]struct {
		c       bootconfig.Config
		cmdline string
		want    string
	}{
		"no entrypoint":   {bootconfig.Config{}, "", "no command"},
		"user by name":    {bootconfig.Config{Args: []string{"a"}, User: "nobody"}, "", `user "nobody"`},
		"relative dir":    {bootconfig.Config{Args: []string{"a"}, Workdir: "srv"}, "", `workdir "srv"`},
		"bad cmdline arg": {bootconfig.Config{Args: []string{"a"}}, "kiln.args=[1]", "kiln.args"},
	}
	for name, tc := range cases {
		_, err := LoadConfig(writeConfig(t, tc.c), tc.cmdline)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// TestLoadConfigKeepsModulesOnError: with a wrong command line, the baked modules are still
// known, so that the console ports can come up to report the error.
func TestLoadConfigKeepsModulesOnError(t *testing.T) {
	mods := []string{"/lib/modules/virtio_console.ko"}
	c, err := LoadConfig(writeConfig(t, bootconfig.Config{Args: []string{"a"}, Modules: mods}), "kiln.bogus=1")
	if err == nil || !strings.Contains(err.Error(), "kiln.bogus") {
		t.Errorf("err = %v, want one naming kiln.bogus", err)
	}
	if c == nil || !slices.Equal(c.Modules, mods) {
		t.Errorf("config = %+v, want the baked modules %q", c, mods)
	}
}

func TestStatusLine(t *testing.T) {
	if got, want := StatusLine(3), bootconfig.StatusPrefix+"3\n"; got != want {
		t.Errorf("StatusLine(3) = %q, want %q", got, want)
	}
}

// TestSuperviseAppStatus runs real children and reaps them as PID 1 does.
func TestSuperviseAppStatus(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH:", err)
	}
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 3", 3},
		{"exit 0", 0},
		{"kill -KILL $$", 128 + 9},
	} {
		sigs := notifySignals()
		p, err := os.StartProcess(sh, []string{"sh", "-c", tc.script}, &os.ProcAttr{Files: []*os.File{nil, os.Stdout, os.Stderr}})
		if err != nil {
			t.Fatal(err)
		}
		got := superviseApp(p, sigs)
		signal.Stop(sigs)
		if got != tc.want {
			t.Errorf("sh -c %q: status %d, want %d", tc.script, got, tc.want)
		}
	}
}

// TestSuperviseAppForwardsSignals sends a real SIGTERM to this process, which plays PID 1:
// the app must get it.
func TestSuperviseAppForwardsSignals(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH:", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sigs := notifySignals()
	defer signal.Stop(sigs)
	script := `trap 'exit 7' TERM; echo ready >&3; while :; do sleep 0.01; done`
	p, err := os.StartProcess(sh, []string{"sh", "-c", script}, &os.ProcAttr{Files: []*os.File{nil, os.Stdout, os.Stderr, w}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := superviseApp(p, sigs); got != 7 {
		t.Errorf("status %d, want 7 from the app's SIGTERM trap", got)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/nonexistent:" + dir}
	if p, err := lookPath("app", env, "/"); err != nil || p != filepath.Join(dir, "app") {
		t.Errorf("lookPath(app) = %q, %v", p, err)
	}
	for name, want := range map[string]int{"missing": StatusNotFound, "data": StatusCannotExecute, dir + "/data": StatusCannotExecute, "/no/such": StatusNotFound} {
		_, err := lookPath(name, env, "/")
		var ae *appError
		if !errors.As(err, &ae) || ae.status != want {
			t.Errorf("lookPath(%q) = %v, want status %d", name, err, want)
		}
	}
}

// TestLookPathInWorkdir: the app runs in its workdir, so "./app", "bin/app" and a relative PATH
// entry are found there, not in PID 1's cwd.
func TestLookPathInWorkdir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(dir, "bin", "app")
	if err := os.WriteFile(app, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"./bin/app", ""},
		{"bin/app", ""},
		{"app", "bin"},
		{"app", "/nonexistent:./bin"},
		{app, ""},
	} {
		p, err := lookPath(tc.name, []string{"PATH=" + tc.path}, dir)
		if err != nil || p != app {
			t.Errorf("lookPath(%q) with PATH=%s in %s = %q, %v; want %s", tc.name, tc.path, dir, p, err, app)
		}
	}
}
