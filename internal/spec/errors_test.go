package spec

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // whole lines of the error message
	}{
		// The document itself.
		{"empty", ``, []string{`kiln.yaml: empty`}},
		{"comments only", "# nothing\n\n", []string{`kiln.yaml: empty`}},
		{"null document", "~\n", []string{`kiln.yaml: empty`}},
		{"syntax error keeps yaml's line", "name: x\ncontents:\n  files: [\n", []string{
			`kiln.yaml:3: did not find expected node content`}},
		{"syntax error on line 1", "name: a: b\n", []string{
			`kiln.yaml:1: mapping values are not allowed in this context`}},
		{"two documents", "name: a\n---\nname: b\n", []string{`kiln.yaml:2: more than one YAML document`}},
		{"not a mapping", "- name: x\n", []string{`kiln.yaml:1: want a mapping, got a list`}},
		{"control character", "name: x\ntag: \"a\x01\"\n", []string{`kiln.yaml:2: character U+0001 is not allowed in YAML`}},
		{"invalid utf-8", "name: x\n\n# \xff\n", []string{`kiln.yaml:3: invalid UTF-8 (kiln.yaml must be UTF-8)`}},
		{"unknown anchor", "name: x\ntag: *v\n", []string{`kiln.yaml:2: unknown anchor 'v' referenced`}},

		// Keys.
		{"unknown top-level key", "name: x\nnmae: y\n", []string{
			`kiln.yaml:2: unknown key "nmae" (known: name, tag, base, contents, accounts, config, steps, stages, layers)`}},
		{"unknown nested key", `name: curl
tag: latest
base: scratch
contents:
  binaries:
    - curl
  binary: [wget]
`, []string{
			`kiln.yaml:7: contents: unknown key "binary" (known: binaries, files, trees, symlinks, dirs, certificates, nss, timezone)`}},
		{"unknown item key", "name: x\ncontents:\n  files:\n    - {src: ./app.conf, dst: /a, owner: root}\n", []string{
			`kiln.yaml:4: contents.files[0]: unknown key "owner" (known: src, dst, from, mode, uid, gid)`}},
		{"merge key", "name: x\nconfig:\n  <<: {user: a}\n", []string{
			`kiln.yaml:3: config: unknown key "<<" (known: entrypoint, cmd, env, workdir, user, ports, volumes, labels, stop-signal)`}},
		{"duplicate key", "name: x\ntag: a\nname: y\n", []string{`kiln.yaml:3: duplicate key "name" (first at line 1)`}},
		{"duplicate nested key", "name: x\ncontents:\n  dirs:\n    - path: /tmp\n      mode: 01777\n      mode: 0755\n", []string{
			`kiln.yaml:6: contents.dirs[0]: duplicate key "mode" (first at line 5)`}},
		{"non-scalar key", "name: x\n[a]: b\n", []string{`kiln.yaml:2: want a string key, got a list`}},
		{"missing name", "tag: x\n", []string{`kiln.yaml:1: missing required key "name"`}},
		{"null name", "name:\n", []string{`kiln.yaml:1: missing required key "name"`}},
		{"missing dst", "name: x\ncontents:\n  files:\n    - src: ./app.conf\n      mode: 0644\n", []string{
			`kiln.yaml:4: contents.files[0]: missing required key "dst"`}},
		{"missing src", "name: x\ncontents:\n  files:\n    - {dst: /a}\n", []string{
			`kiln.yaml:4: contents.files[0]: missing required key "src"`}},
		{"missing symlink target", "name: x\ncontents:\n  symlinks: [{path: /a}]\n", []string{
			`kiln.yaml:3: contents.symlinks[0]: missing required key "target"`}},
		{"missing uid", "name: x\naccounts:\n  users: [{name: app}]\n", []string{
			`kiln.yaml:3: accounts.users[0]: missing required key "uid"`}},

		// Types.
		{"uid is a string", `name: curl
contents:
  binaries: [curl]
  files:
    - {src: ./app.conf, dst: /etc/a.conf}
    - src: ./app.conf
      dst: /etc/b.conf
      mode: 0644
      uid: root
`, []string{`kiln.yaml:9: contents.files[1].uid: want an integer, got string "root"`}},
		{"quoted uid", "name: x\ncontents:\n  trees: [{src: ./static, dst: /, uid: \"1000\"}]\n", []string{
			`kiln.yaml:3: contents.trees[0].uid: want an integer, got string "1000"`}},
		{"negative gid", "name: x\ncontents:\n  dirs: [{path: /a, gid: -1}]\n", []string{
			`kiln.yaml:3: contents.dirs[0].gid: -1 is out of range 0..2147483647`}},
		{"section not a mapping", "name: x\ncontents: [a]\n", []string{`kiln.yaml:2: contents: want a mapping, got a list`}},
		{"list not a list", "name: x\ncontents:\n  files: {src: a}\n", []string{`kiln.yaml:3: contents.files: want a list, got a mapping`}},
		{"item not a mapping", "name: x\ncontents:\n  files: [./app.conf]\n", []string{
			`kiln.yaml:3: contents.files[0]: want a mapping, got string "./app.conf"`}},
		{"binary is a list", "name: x\ncontents:\n  binaries:\n    - [a]\n", []string{
			`kiln.yaml:4: contents.binaries[0]: want a string or a mapping, got a list`}},
		{"null item", "name: x\ncontents:\n  dirs:\n    -\n", []string{
			`kiln.yaml:4: contents.dirs[0]: want a string or a mapping, got null`}},
		{"boolean wanted", "name: x\ncontents:\n  certificates: yes\n", []string{
			`kiln.yaml:3: contents.certificates: want a boolean, got string "yes"`}},
		{"name is a mapping", "name: {a: b}\n", []string{`kiln.yaml:1: name: want a string, got a mapping`}},
		{"long value is cut", "name: x\ncontents:\n  nss: " + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", []string{
			`kiln.yaml:3: contents.nss: want a boolean, got string "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."`}},

		// Names.
		{"bad name", "name: Curl\n", []string{
			`kiln.yaml:1: name: "Curl" is not a valid image name (lower-case letters, digits, and . _ - between them; / between components)`}},
		{"name with trailing dash", "name: curl-\n", []string{`kiln.yaml:1: name: "curl-" is not a valid image name (lower-case letters, digits, and . _ - between them; / between components)`}},
		{"bad tag", "name: x\ntag: -1\n", []string{
			`kiln.yaml:2: tag: "-1" is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 characters)`}},
		{"bad base reference", "name: x\nbase: Alpine:3\n", []string{
			`kiln.yaml:2: base: "Alpine" is not a valid image name (lower-case letters, digits, and . _ - between them; / between components)`}},
		{"short digest", "name: x\nbase: sha256:abcd\n", []string{
			`kiln.yaml:2: base: "sha256:abcd" is not a sha256 digest (sha256: and 64 lower-case hex digits)`}},

		// Paths in the image.
		{"relative dst", "name: x\ncontents:\n  files: [{src: ./app.conf, dst: etc/app.conf}]\n", []string{
			`kiln.yaml:3: contents.files[0].dst: "etc/app.conf" is not absolute`}},
		{"dst climbs above root", "name: x\ncontents:\n  trees: [{src: ./static, dst: /srv/../../etc}]\n", []string{
			`kiln.yaml:3: contents.trees[0].dst: "/srv/../../etc" climbs above /`}},
		{"file at root", "name: x\ncontents:\n  files: [{src: ./app.conf, dst: /.}]\n", []string{
			`kiln.yaml:3: contents.files[0].dst: must not be "/"`}},
		{"relative dir", "name: x\ncontents:\n  dirs: [tmp]\n", []string{`kiln.yaml:3: contents.dirs[0]: "tmp" is not absolute`}},
		{"relative symlink path", "name: x\ncontents:\n  symlinks: [{path: bin/sh, target: busybox}]\n", []string{
			`kiln.yaml:3: contents.symlinks[0].path: "bin/sh" is not absolute`}},
		{"empty binary dst", "name: x\ncontents:\n  binaries: [{src: curl, dst: \"\"}]\n", []string{
			`kiln.yaml:3: contents.binaries[0].dst: must not be empty`}},
		{"relative workdir", "name: x\nconfig:\n  workdir: app\n", []string{`kiln.yaml:3: config.workdir: "app" is not absolute`}},
		{"relative home", "name: x\naccounts:\n  users: [{name: a, uid: 1, home: a}]\n", []string{
			`kiln.yaml:3: accounts.users[0].home: "a" is not absolute`}},

		// Sources on the host.
		{"missing file src", `name: x
contents:
  files:
    - dst: /etc/app.conf
      src: ./missing.conf
`, []string{`kiln.yaml:5: contents.files[0].src: ./missing.conf: no such file or directory`}},
		{"missing binary path", "name: x\ncontents:\n  binaries:\n    - curl\n    - ./bin/nope\n", []string{
			`kiln.yaml:5: contents.binaries[1]: ./bin/nope: no such file or directory`}},
		{"binary not executable", "name: x\ncontents:\n  binaries: [{src: ./app.conf}]\n", []string{
			`kiln.yaml:3: contents.binaries[0].src: ./app.conf: not executable`}},
		{"file src is a directory", "name: x\ncontents:\n  files: [{src: ./static, dst: /a}]\n", []string{
			`kiln.yaml:3: contents.files[0].src: ./static: is a directory`}},
		{"tree src is a file", "name: x\ncontents:\n  trees: [{src: ./app.conf, dst: /a}]\n", []string{
			`kiln.yaml:3: contents.trees[0].src: ./app.conf: not a directory`}},
		{"missing base path", "name: x\nbase: ./debian.tar\n", []string{`kiln.yaml:2: base: ./debian.tar: no such file or directory`}},

		// Modes.
		{"mode not octal", "name: x\ncontents:\n  files: [{src: ./app.conf, dst: /a, mode: \"0695\"}]\n", []string{
			`kiln.yaml:3: contents.files[0].mode: want an octal mode such as 0644, got "0695"`}},
		{"mode too big", "name: x\ncontents:\n  dirs: [{path: /a, mode: 017777}]\n", []string{
			`kiln.yaml:3: contents.dirs[0].mode: want an octal mode such as 0644, got "017777"`}},
		{"symbolic mode", "name: x\ncontents:\n  dirs: [{path: /a, mode: u+x}]\n", []string{
			`kiln.yaml:3: contents.dirs[0].mode: want an octal mode such as 0644, got "u+x"`}},
		{"mode is a list", "name: x\ncontents:\n  dirs: [{path: /a, mode: [7]}]\n", []string{
			`kiln.yaml:3: contents.dirs[0].mode: want an octal mode such as 0644, got a list`}},

		// Time zone.
		{"zone climbs", "name: x\ncontents:\n  timezone: ../../etc/shadow\n", []string{
			`kiln.yaml:3: contents.timezone: "../../etc/shadow" is not a zone name: it must not contain ".."`}},
		{"absolute zone", "name: x\ncontents:\n  timezone: /etc/localtime\n", []string{
			`kiln.yaml:3: contents.timezone: "/etc/localtime" is not a zone name: it must not be absolute`}},
		{"zone is a list", "name: x\ncontents:\n  timezone: [UTC]\n", []string{
			`kiln.yaml:3: contents.timezone: want a string, got a list`}},

		// Accounts.
		{"duplicate user name", `name: x
accounts:
  users:
    - {name: app, uid: 1000}
    - {name: app, uid: 1001}
`, []string{`kiln.yaml:5: accounts.users[1].name: duplicate user name "app" (first at line 4)`}},
		{"duplicate uid", `name: x
accounts:
  users:
    - name: app
      uid: 1000
    - name: web
      uid: 1000
`, []string{`kiln.yaml:7: accounts.users[1].uid: duplicate user id 1000 (first at line 5)`}},
		{"duplicate group name and gid", `name: x
accounts:
  groups:
    - {name: app, gid: 1000}
    - {name: app, gid: 1000}
`, []string{
			`kiln.yaml:5: accounts.groups[1].name: duplicate group name "app" (first at line 4)`,
			`kiln.yaml:5: accounts.groups[1].gid: duplicate group id 1000 (first at line 4)`}},
		{"duplicate member", "name: x\naccounts:\n  groups: [{name: g, gid: 1, members: [a, a]}]\n", []string{
			`kiln.yaml:3: accounts.groups[0].members[1]: duplicate member "a" (first at line 3)`}},
		{"bad user name", "name: x\naccounts:\n  users: [{name: \"a:b\", uid: 1}]\n", []string{
			`kiln.yaml:3: accounts.users[0].name: "a:b" is not a valid account name ([A-Za-z_][A-Za-z0-9_.-]*, at most 32 characters)`}},
		{"gecos with colon", "name: x\naccounts:\n  users: [{name: a, uid: 1, gecos: \"a:b\"}]\n", []string{
			`kiln.yaml:3: accounts.users[0].gecos: must not contain ":", a line break or NUL`}},
		{"run-as undeclared", `name: x
accounts:
  users: [{name: app, uid: 1000}]
  run-as: bob
`, []string{`kiln.yaml:4: accounts.run-as: "bob" is not a declared user (declare it in accounts.users, or write uid[:gid])`}},
		{"run-as out of range", "name: x\naccounts:\n  run-as: 1:99999999999\n", []string{
			`kiln.yaml:3: accounts.run-as: 99999999999 is out of range 0..2147483647`}},

		// Config.
		{"entrypoint mapping", "name: x\nconfig:\n  entrypoint: {a: b}\n", []string{
			`kiln.yaml:3: config.entrypoint: want a list or a string, got a mapping`}},
		{"empty cmd string", "name: x\nconfig:\n  cmd: \"\"\n", []string{`kiln.yaml:3: config.cmd: must not be empty`}},
		{"cmd item is a list", "name: x\nconfig:\n  cmd: [a, [b]]\n", []string{`kiln.yaml:3: config.cmd[1]: want a string, got a list`}},
		{"env wrong type", "name: x\nconfig:\n  env: PATH=/bin\n", []string{
			`kiln.yaml:3: config.env: want a mapping or a list, got string "PATH=/bin"`}},
		{"env list without =", "name: x\nconfig:\n  env:\n    - A=1\n    - DEBUG\n", []string{
			`kiln.yaml:5: config.env[1]: want NAME=value, got "DEBUG"`}},
		{"env list duplicate", "name: x\nconfig:\n  env:\n    - A=1\n    - A=2\n", []string{
			`kiln.yaml:5: config.env[1]: duplicate variable A (first at line 4)`}},
		{"env list bad name", "name: x\nconfig:\n  env: [\"MY-VAR=1\"]\n", []string{
			`kiln.yaml:3: config.env[0]: "MY-VAR" is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)`}},
		{"env map bad name", "name: x\nconfig:\n  env:\n    1X: a\n", []string{
			`kiln.yaml:4: config.env: "1X" is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)`}},
		{"env map null", "name: x\nconfig:\n  env:\n    A:\n", []string{
			`kiln.yaml:4: config.env.A: want a string, got null (write "" for an empty value)`}},
		{"env map duplicate", "name: x\nconfig:\n  env:\n    A: 1\n    A: 2\n", []string{
			`kiln.yaml:5: config.env: duplicate key "A" (first at line 4)`}},
		{"bad user", "name: x\nconfig:\n  user: \"app:\"\n", []string{`kiln.yaml:3: config.user: want user[:group], got "app:"`}},
		{"port out of range", "name: x\nconfig:\n  ports: [80, 65536]\n", []string{
			`kiln.yaml:3: config.ports[1]: port 65536 is out of range 1..65535`}},
		{"port zero", "name: x\nconfig:\n  ports: [0/udp]\n", []string{`kiln.yaml:3: config.ports[0]: port 0 is out of range 1..65535`}},
		{"port protocol", "name: x\nconfig:\n  ports:\n    - 80/icmp\n", []string{
			`kiln.yaml:4: config.ports[0]: protocol "icmp" is not tcp, udp or sctp`}},
		{"port range", "name: x\nconfig:\n  ports: [8000-8010]\n", []string{
			`kiln.yaml:3: config.ports[0]: want a port such as 80 or 53/udp, got "8000-8010"`}},
		{"port duplicate", "name: x\nconfig:\n  ports:\n    - 80\n    - 80/TCP\n", []string{
			`kiln.yaml:5: config.ports[1]: duplicate port 80/tcp (first at line 4)`}},
		{"ports not a list", "name: x\nconfig:\n  ports: 80\n", []string{`kiln.yaml:3: config.ports: want a list, got integer 80`}},
		{"volume relative", "name: x\nconfig:\n  volumes: [data]\n", []string{`kiln.yaml:3: config.volumes[0]: "data" is not absolute`}},
		{"volume duplicate", "name: x\nconfig:\n  volumes: [/data, /data/]\n", []string{
			`kiln.yaml:3: config.volumes[1]: duplicate volume /data (first at line 3)`}},
		{"label null", "name: x\nconfig:\n  labels:\n    a.b: ~\n", []string{
			`kiln.yaml:4: config.labels.a.b: want a string, got null (write "" for an empty value)`}},
		{"labels a list", "name: x\nconfig:\n  labels: [a=b]\n", []string{`kiln.yaml:3: config.labels: want a mapping, got a list`}},
		{"unknown signal", "name: x\nconfig:\n  stop-signal: SIGFOO\n", []string{
			`kiln.yaml:3: config.stop-signal: "SIGFOO" is not a signal such as SIGTERM, TERM or 15`}},
		{"signal number out of range", "name: x\nconfig:\n  stop-signal: 65\n", []string{
			`kiln.yaml:3: config.stop-signal: "65" is not a Linux signal (1..31, 34..64)`}},
		{"signal 32", "name: x\nconfig:\n  stop-signal: 32\n", []string{
			`kiln.yaml:3: config.stop-signal: "32" is not a Linux signal (1..31, 34..64)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parse(t, tt.yaml)
			if s != nil {
				t.Errorf("got a spec along with the error")
			}
			wantLines(t, err, tt.want...)
		})
	}
}

func TestErrorsAreAllReportedSortedByLine(t *testing.T) {
	_, err := parse(t, `config:
  ports: [0]
contents:
  files: [{src: ./missing, dst: rel}]
accounts:
  run-as: nobody
tag: "!"
`)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T is not spec.Errors: %v", err, err)
	}
	want := []string{
		`kiln.yaml:1: missing required key "name"`,
		`kiln.yaml:2: config.ports[0]: port 0 is out of range 1..65535`,
		`kiln.yaml:4: contents.files[0].src: ./missing: no such file or directory`,
		`kiln.yaml:4: contents.files[0].dst: "rel" is not absolute`,
		`kiln.yaml:6: accounts.run-as: "nobody" is not a declared user (declare it in accounts.users, or write uid[:gid])`,
		`kiln.yaml:7: tag: "!" is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 characters)`,
	}
	if len(es) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}
	for i, e := range es {
		if e.Error() != want[i] {
			t.Errorf("error %d:\n got %s\nwant %s", i, e, want[i])
		}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false, want true for a missing src")
	}
}

func TestOneErrorIsAnError(t *testing.T) {
	_, err := parse(t, "name: x\ntag: \"!\"\n")
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T, want *spec.Error", err)
	}
	if e.File != "kiln.yaml" || e.Line != 2 || e.Field != "tag" {
		t.Errorf("got %+v, want kiln.yaml line 2 field tag", e)
	}
}

func TestEmptyIsErrEmpty(t *testing.T) {
	_, err := parse(t, "\n")
	if !errors.Is(err, ErrEmpty) {
		t.Errorf("got %v, want ErrEmpty", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "k.yaml", Line: 3, Field: "a.b", Err: errors.New("bad")}, "k.yaml:3: a.b: bad"},
		{&Error{File: "k.yaml", Line: 3, Err: errors.New("bad")}, "k.yaml:3: bad"},
		{&Error{File: "k.yaml", Err: ErrEmpty}, "k.yaml: empty"},
		{&Error{File: "k.yaml", Line: 1, Field: "name"}, "k.yaml:1: name"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestAt(t *testing.T) {
	s := mustParse(t, "name: x\ncontents:\n  binaries: [curl]\n")
	err := s.At(s.Contents.Binaries[0].Pos, errors.New("not found in PATH"))
	if want := "kiln.yaml:3: contents.binaries[0]: not found in PATH"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestNULIsRefused(t *testing.T) {
	for _, yaml := range []string{
		"name: x\nconfig:\n  cmd: [\"a\\0b\"]\n",
		"name: x\nconfig:\n  env: {A: \"\\0\"}\n",
		"name: x\ncontents:\n  dirs: [\"/a\\0\"]\n",
	} {
		_, err := parse(t, yaml)
		if err == nil || !strings.Contains(err.Error(), "kiln.yaml:3: ") || !strings.Contains(err.Error(), "must not contain a NUL character") {
			t.Errorf("%q: got %v, want a NUL error at line 3", yaml, err)
		}
	}
}
