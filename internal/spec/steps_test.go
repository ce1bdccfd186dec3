package spec

import (
	"reflect"
	"testing"
)

func TestSteps(t *testing.T) {
	s := mustParse(t, `name: x
steps:
  - ./setup.sh
  - run: [make, -C, src, ""]
    env: {B: "2", A: "1"}
    workdir: /src//
    user: app:app
    network: host
    copy: true
  - run: echo "$HOME"
    env: [Z=1, Y=a=b]
`)
	want := []Step{
		{Pos: Pos{3, "steps[0]"}, Run: []string{"/bin/sh", "-c", "./setup.sh"}, Network: "none"},
		{Pos: Pos{4, "steps[1]"}, Run: []string{"make", "-C", "src", ""}, Env: []string{"A=1", "B=2"},
			Workdir: "/src", User: "app:app", Network: "host", Copy: true},
		{Pos: Pos{10, "steps[2]"}, Run: []string{"/bin/sh", "-c", `echo "$HOME"`}, Env: []string{"Z=1", "Y=a=b"}, Network: "none"},
	}
	if !reflect.DeepEqual(s.Steps, want) {
		t.Errorf("steps:\n got %#v\nwant %#v", s.Steps, want)
	}
	if s := mustParse(t, "name: x\nsteps:\n"); s.Steps != nil {
		t.Errorf("null steps: %#v", s.Steps)
	}
}

func TestStepErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"not a list", "name: x\nsteps: make\n", []string{`kiln.yaml:2: steps: want a list, got string "make"`}},
		{"unknown key", "name: x\nsteps:\n  - {run: make, cmd: x}\n", []string{
			`kiln.yaml:3: steps[0]: unknown key "cmd" (known: run, env, workdir, user, network, copy)`}},
		{"missing run", "name: x\nsteps:\n  - {workdir: /}\n", []string{`kiln.yaml:3: steps[0]: missing required key "run"`}},
		{"empty string", "name: x\nsteps:\n  - \"\"\n", []string{`kiln.yaml:3: steps[0]: must not be empty`}},
		{"empty argv", "name: x\nsteps:\n  - run: []\n", []string{`kiln.yaml:3: steps[0].run: must not be empty`}},
		{"empty program", "name: x\nsteps:\n  - run: [\"\", a]\n", []string{`kiln.yaml:3: steps[0].run[0]: must not be empty`}},
		{"run mapping", "name: x\nsteps:\n  - run: {a: b}\n", []string{`kiln.yaml:3: steps[0].run: want a list or a string, got a mapping`}},
		{"argv item list", "name: x\nsteps:\n  - run: [a, [b]]\n", []string{`kiln.yaml:3: steps[0].run[1]: want a string, got a list`}},
		{"item list", "name: x\nsteps:\n  - [make]\n", []string{`kiln.yaml:3: steps[0]: want a mapping, got a list`}},
		{"network", "name: x\nsteps:\n  - {run: a, network: bridge}\n", []string{`kiln.yaml:3: steps[0].network: want none or host, got "bridge"`}},
		{"copy", "name: x\nsteps:\n  - {run: a, copy: yes}\n", []string{`kiln.yaml:3: steps[0].copy: want a boolean, got string "yes"`}},
		{"workdir", "name: x\nsteps:\n  - {run: a, workdir: src}\n", []string{`kiln.yaml:3: steps[0].workdir: "src" is not absolute`}},
		{"user", "name: x\nsteps:\n  - {run: a, user: \"a:\"}\n", []string{`kiln.yaml:3: steps[0].user: want user[:group], got "a:"`}},
		{"env", "name: x\nsteps:\n  - run: a\n    env: {1A: x, B: ~}\n", []string{
			`kiln.yaml:4: steps[0].env: "1A" is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)`,
			`kiln.yaml:4: steps[0].env.B: want a string, got null (write "" for an empty value)`}},
		{"several", "name: x\nsteps:\n  - run: a\n    network: x\n  - 3\n  - {run: b, copy: 1}\n", []string{
			`kiln.yaml:4: steps[0].network: want none or host, got "x"`,
			`kiln.yaml:6: steps[2].copy: want a boolean, got integer 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yaml)
			wantLines(t, err, tt.want...)
		})
	}
}
