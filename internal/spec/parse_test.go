package spec

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const schemaDoc = "../../docs/kiln.yaml.md"

// docExamples returns the yaml blocks of docs/kiln.yaml.md, the complete example first.
func docExamples(t testing.TB) []string {
	t.Helper()
	doc, err := os.ReadFile(schemaDoc)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no yaml examples", schemaDoc)
	}
	return blocks
}

func mode(m fs.FileMode) *fs.FileMode { return &m }

// TestCompleteExample parses the complete example of the schema document and checks
// every value, defaults included.
func TestCompleteExample(t *testing.T) {
	dir := buildDir(t)
	s, err := Parse("kiln.yaml", []byte(docExamples(t)[0]), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{
		File: "kiln.yaml",
		Dir:  dir,
		Name: "example/curl",
		Tag:  "8.5",
		Base: Base{Pos: Pos{3, "base"}, Ref: "scratch"},
		Contents: Contents{
			Binaries: []Binary{
				{Pos: Pos{7, "contents.binaries[0]"}, Src: "curl"},
				{Pos: Pos{8, "contents.binaries[1]"}, Src: filepath.Join(dir, "bin/app"), Dst: "/app"},
			},
			Files:    []File{{Pos: Pos{10, "contents.files[0]"}, Src: filepath.Join(dir, "app.conf"), Dst: "/etc/app.conf", Mode: mode(0o644)}},
			Trees:    []Tree{{Pos: Pos{12, "contents.trees[0]"}, Src: filepath.Join(dir, "static"), Dst: "/srv/www", UID: 1000, GID: 1000}},
			Symlinks: []Symlink{{Pos: Pos{14, "contents.symlinks[0]"}, Path: "/usr/bin/fetch", Target: "curl"}},
			Dirs: []Dir{
				{Pos: Pos{16, "contents.dirs[0]"}, Path: "/data", Mode: 0o755},
				{Pos: Pos{17, "contents.dirs[1]"}, Path: "/tmp", Mode: 0o777 | fs.ModeSticky},
			},
			Certificates: true,
			NSS:          true,
			Timezone:     "Europe/Paris",
			TimezonePos:  Pos{20, "contents.timezone"},
		},
		Accounts: Accounts{
			Groups:   []Group{{Pos: Pos{24, "accounts.groups[0]"}, Name: "app", GID: 1000, Members: []string{"app"}}},
			Users:    []User{{Pos: Pos{26, "accounts.users[0]"}, Name: "app", UID: 1000, GID: 1000, Home: "/home/app", Shell: "/sbin/nologin", Gecos: "Application"}},
			RunAs:    "app",
			RunAsPos: Pos{27, "accounts.run-as"},
		},
		Config: Config{
			Entrypoint: []string{"/usr/bin/curl"},
			Cmd:        []string{"--version"},
			Env:        []string{"LANG=C.UTF-8", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
			WorkingDir: "/srv/www",
			User:       "1000:1000",
			Ports:      []string{"80/tcp", "443/tcp", "53/udp"},
			Volumes:    []string{"/data"},
			Labels:     map[string]string{"org.opencontainers.image.title": "curl"},
			StopSignal: "SIGTERM",
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n%+v\nwant\n%+v", s, want)
	}
}

// TestDocExamples keeps every example of docs/kiln.yaml.md valid.
func TestDocExamples(t *testing.T) {
	dir := buildDir(t)
	for i, example := range docExamples(t) {
		if _, err := Parse("kiln.yaml", []byte(example), dir); err != nil {
			t.Errorf("example %d:\n%s\n%v", i, example, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	s := mustParse(t, `name: x
contents:
  dirs: [/var/lib//app/]
accounts:
  groups: [{name: web, gid: 33}]
  users:
    - {name: root, uid: 0}
    - {name: web, uid: 1000}
    - {name: app, uid: 1001}
`)
	if s.Tag != "latest" || !s.Base.Scratch() || s.Base.IsPath() {
		t.Errorf("tag %q base %+v, want latest and scratch", s.Tag, s.Base)
	}
	if d := s.Contents.Dirs[0]; d.Path != "/var/lib/app" || d.Mode != 0o755 {
		t.Errorf("dir %+v, want /var/lib/app 0755", d)
	}
	want := []struct {
		home string
		gid  int
	}{{"/root", 0}, {"/home/web", 33}, {"/home/app", 1001}}
	for i, u := range s.Accounts.Users {
		if u.Home != want[i].home || u.GID != want[i].gid || u.Shell != "/sbin/nologin" {
			t.Errorf("user %s: home %s gid %d shell %s, want %s %d /sbin/nologin", u.Name, u.Home, u.GID, u.Shell, want[i].home, want[i].gid)
		}
	}
	if s.Config.User != "" || s.Config.Entrypoint != nil || s.Config.Env != nil {
		t.Errorf("config %+v, want nothing set", s.Config)
	}
}

func TestEnvMapAndList(t *testing.T) {
	tests := []struct {
		name, env string
		want      []string
	}{
		{"map is sorted", "{B: 2, A: 1, A_B: x=y, EMPTY: \"\"}", []string{"A=1", "A_B=x=y", "B=2", "EMPTY="}},
		{"map keeps text", "{V: 1.10, OCT: 0644, B: false}", []string{"B=false", "OCT=0644", "V=1.10"}},
		{"list keeps order", "[B=2, A=1, \"C=a=b\", D=]", []string{"B=2", "A=1", "C=a=b", "D="}},
		{"empty map", "{}", []string{}},
		{"empty list", "[]", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, "name: x\nconfig:\n  env: "+tt.env+"\n")
			if !slices.Equal(s.Config.Env, tt.want) {
				t.Errorf("env %q, want %q", s.Config.Env, tt.want)
			}
		})
	}
}

func TestPorts(t *testing.T) {
	s := mustParse(t, `name: x
config:
  ports: [80, "443/tcp", 53/udp, 9000/SCTP, "8080"]
`)
	want := []string{"80/tcp", "443/tcp", "53/udp", "9000/sctp", "8080/tcp"}
	if !slices.Equal(s.Config.Ports, want) {
		t.Errorf("ports %q, want %q", s.Config.Ports, want)
	}
}

func TestSignals(t *testing.T) {
	tests := map[string]string{
		"SIGTERM": "SIGTERM", "TERM": "SIGTERM", "term": "SIGTERM", "15": "SIGTERM", "sigterm": "SIGTERM",
		"9": "SIGKILL", "SIGHUP": "SIGHUP", "QUIT": "SIGQUIT", "SIGWINCH": "SIGWINCH", "SIGUSR1": "SIGUSR1",
		"IOT": "SIGABRT", "SIGCLD": "SIGCHLD", "POLL": "SIGIO", "31": "SIGSYS",
		"34": "SIGRTMIN", "SIGRTMIN": "SIGRTMIN", "RTMIN+3": "SIGRTMIN+3", "37": "SIGRTMIN+3",
		"49": "SIGRTMIN+15", "50": "SIGRTMAX-14", "SIGRTMAX-1": "SIGRTMAX-1", "RTMIN+30": "SIGRTMAX",
		"64": "SIGRTMAX",
	}
	for in, want := range tests {
		got, err := parseSignal(in)
		if got != want || err != nil {
			t.Errorf("parseSignal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "+15", "32", "33", "65", "SIG", "RTMIN+31", "RTMIN-1", "RTMAX+1", "RTMAX-31", "KILLME", "SIGSIGTERM"} {
		if got, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) = %q, want an error", bad, got)
		}
	}
	s := mustParse(t, "name: x\nconfig:\n  stop-signal: 15\n")
	if s.Config.StopSignal != "SIGTERM" {
		t.Errorf("stop-signal: 15 gave %q, want SIGTERM", s.Config.StopSignal)
	}
}

func TestModes(t *testing.T) {
	tests := map[string]fs.FileMode{
		"0644": 0o644, `"0644"`: 0o644, "644": 0o644, "0o644": 0o644, "0": 0,
		"01777": 0o777 | fs.ModeSticky, "02775": 0o775 | fs.ModeSetgid, "04755": 0o755 | fs.ModeSetuid,
		"07000": fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky,
	}
	for in, want := range tests {
		s := mustParse(t, "name: x\ncontents:\n  files: [{src: ./app.conf, dst: /a, mode: "+in+"}]\n  dirs: [{path: /d, mode: "+in+"}]\n")
		if got := *s.Contents.Files[0].Mode; got != want {
			t.Errorf("file mode %s = %v, want %v", in, got, want)
		}
		if got := s.Contents.Dirs[0].Mode; got != want {
			t.Errorf("dir mode %s = %v, want %v", in, got, want)
		}
	}
	s := mustParse(t, "name: x\ncontents:\n  files: [{src: ./app.conf, dst: /a}]\n")
	if s.Contents.Files[0].Mode != nil {
		t.Errorf("file without mode has mode %v, want nil (the source's)", *s.Contents.Files[0].Mode)
	}
}

func TestBase(t *testing.T) {
	dir := buildDir(t)
	if err := os.Mkdir(filepath.Join(dir, "layout"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		base, ref string
		path      bool
	}{
		{"scratch", "scratch", false},
		{"alpine", "alpine", false},
		{"runtime/python:3.12", "runtime/python:3.12", false},
		{"sha256:" + strings.Repeat("ab", 32), "sha256:" + strings.Repeat("ab", 32), false},
		{"./python-3.12.tar", filepath.Join(dir, "python-3.12.tar"), true},
		{"python-3.12.tar", filepath.Join(dir, "python-3.12.tar"), true},
		{"./layout/", filepath.Join(dir, "layout"), true},
		{filepath.Join(dir, "layout"), filepath.Join(dir, "layout"), true},
	}
	for _, tt := range tests {
		s, err := Parse("kiln.yaml", []byte("name: x\nbase: "+tt.base+"\n"), dir)
		if err != nil {
			t.Errorf("base %s: %v", tt.base, err)
			continue
		}
		if s.Base.Ref != tt.ref || s.Base.IsPath() != tt.path || s.Base.Line != 2 {
			t.Errorf("base %s = %+v (path %v), want %s (path %v)", tt.base, s.Base, s.Base.IsPath(), tt.ref, tt.path)
		}
	}
}

func TestBinaries(t *testing.T) {
	s := mustParse(t, `name: x
contents:
  binaries:
    - curl
    - /bin/sh
    - bin/app
    - {src: ./bin/app, dst: /app/}
    - {src: curl, dst: /opt/curl}
`)
	dir := s.Dir
	want := []Binary{
		{Src: "curl", Dst: ""},
		{Src: "/bin/sh", Dst: "/bin/sh"},
		{Src: filepath.Join(dir, "bin/app"), Dst: "/usr/local/bin/app"},
		{Src: filepath.Join(dir, "bin/app"), Dst: "/app"},
		{Src: "curl", Dst: "/opt/curl"},
	}
	for i, b := range s.Contents.Binaries {
		if b.Src != want[i].Src || b.Dst != want[i].Dst {
			t.Errorf("binary %d = %s -> %s, want %s -> %s", i, b.Src, b.Dst, want[i].Src, want[i].Dst)
		}
	}
	// An absolute path into the build directory is still the build's own program.
	abs := filepath.Join(dir, "bin", "app")
	s, err := Parse("kiln.yaml", []byte("name: x\ncontents:\n  binaries: ["+abs+"]\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if b := s.Contents.Binaries[0]; b.Src != abs || b.Dst != "/usr/local/bin/app" {
		t.Errorf("binary %s -> %s, want %s -> /usr/local/bin/app", b.Src, b.Dst, abs)
	}
}

func TestTimezone(t *testing.T) {
	tests := map[string]string{"true": "all", "false": "", "all": "all", "UTC": "UTC", "America/Argentina/Buenos_Aires": "America/Argentina/Buenos_Aires", "Etc/GMT+5": "Etc/GMT+5"}
	for in, want := range tests {
		s := mustParse(t, "name: x\ncontents:\n  timezone: "+in+"\n")
		if s.Contents.Timezone != want || s.Contents.TimezonePos.Line != 3 {
			t.Errorf("timezone: %s = %q at %+v, want %q at line 3", in, s.Contents.Timezone, s.Contents.TimezonePos, want)
		}
	}
}

func TestCommands(t *testing.T) {
	s := mustParse(t, "name: x\nconfig:\n  entrypoint: []\n  cmd: echo \"$HOME\" ok\n")
	if s.Config.Entrypoint == nil || len(s.Config.Entrypoint) != 0 {
		t.Errorf("entrypoint: [] = %#v, want an empty, non-nil list", s.Config.Entrypoint)
	}
	if want := []string{"/bin/sh", "-c", `echo "$HOME" ok`}; !slices.Equal(s.Config.Cmd, want) {
		t.Errorf("cmd = %q, want %q", s.Config.Cmd, want)
	}
}

func TestUser(t *testing.T) {
	tests := []struct{ yaml, user string }{
		{"accounts:\n  users: [{name: app, uid: 10, gid: 20}]\n  run-as: app\n", "10:20"},
		{"accounts:\n  run-as: 1000\n", "1000"},
		{"accounts:\n  run-as: \"1000:1000\"\n", "1000:1000"},
		{"accounts:\n  users: [{name: app, uid: 10}]\n  run-as: app\nconfig:\n  user: nobody\n", "nobody"},
		{"config:\n  user: www-data:www-data\n", "www-data:www-data"},
	}
	for _, tt := range tests {
		s := mustParse(t, "name: x\n"+tt.yaml)
		if s.Config.User != tt.user {
			t.Errorf("%s: user %q, want %q", tt.yaml, s.Config.User, tt.user)
		}
	}
}

func TestAliases(t *testing.T) {
	s := mustParse(t, `name: x
contents:
  dirs:
    - &data {path: /data, uid: 1000}
  trees:
    - {src: ./static, dst: /srv, uid: 7}
config:
  volumes: [/data]
  cmd: &cmd [run]
  entrypoint: *cmd
`)
	if s.Contents.Dirs[0].UID != 1000 || !slices.Equal(s.Config.Entrypoint, []string{"run"}) {
		t.Errorf("aliases not followed: %+v %q", s.Contents.Dirs, s.Config.Entrypoint)
	}
}

func TestStringsAsWritten(t *testing.T) {
	s := mustParse(t, "name: x\ntag: 1.10\nconfig:\n  labels: {version: 1.10, n: 010, ok: true}\n")
	want := map[string]string{"version": "1.10", "n": "010", "ok": "true"}
	if s.Tag != "1.10" || !reflect.DeepEqual(s.Config.Labels, want) {
		t.Errorf("tag %q labels %q, want 1.10 and %q", s.Tag, s.Config.Labels, want)
	}
}

func TestLoad(t *testing.T) {
	dir := buildDir(t)
	path := filepath.Join(dir, "kiln.yaml")
	if err := os.WriteFile(path, []byte("name: x\ncontents:\n  files: [{src: app.conf, dst: /a}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	s, err := Load("kiln.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.File != "kiln.yaml" || s.Dir != dir || s.Contents.Files[0].Src != filepath.Join(dir, "app.conf") {
		t.Errorf("File %q Dir %q src %q, want kiln.yaml, %s, %s/app.conf", s.File, s.Dir, s.Contents.Files[0].Src, dir, dir)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !os.IsNotExist(err) {
		t.Errorf("Load of a missing file: %v, want a not-exist error", err)
	}
}
