package spec

import (
	"testing"
)

func TestStages(t *testing.T) {
	s := mustParse(t, `name: app
layers: squash
stages:
  tools:
    base: builder
    steps: [echo tools]
  builder:
    base: debian:12
    steps:
      - {run: apt-get install -y jq, network: host}
base: scratch
contents:
  binaries:
    - {src: /usr/bin/jq, from: builder}
    - {src: curl, from: tools}
  files:
    - {src: /etc/os-release, from: builder}
  trees:
    - {src: /usr/share/jq, dst: /share, from: tools}
`)
	if !s.Squash {
		t.Error("layers: squash not read")
	}
	var order []string
	for _, st := range s.Stages {
		order = append(order, st.Stage)
		if st.File != "kiln.yaml" || st.Dir != s.Dir {
			t.Errorf("stage %s: file %q dir %q", st.Stage, st.File, st.Dir)
		}
	}
	if len(order) != 2 || order[0] != "builder" || order[1] != "tools" {
		t.Fatalf("build order %v, want [builder tools]", order)
	}
	tools := s.Stages[1]
	if tools.Base != (Base{Pos: Pos{5, "stages.tools.base"}, Ref: "builder", Stage: true}) {
		t.Errorf("tools base: %#v", tools.Base)
	}
	if st := s.Stages[0].Steps; len(st) != 1 || st[0].Field != "stages.builder.steps[0]" || st[0].Network != "host" {
		t.Errorf("builder steps: %#v", st)
	}
	c := s.Contents
	if b := c.Binaries[0]; b.Src != "/usr/bin/jq" || b.Dst != "/usr/bin/jq" || b.From != "builder" {
		t.Errorf("binary from a stage: %#v", b)
	}
	if b := c.Binaries[1]; b.Src != "curl" || b.Dst != "" || b.From != "tools" {
		t.Errorf("binary by name from a stage: %#v", b)
	}
	if f := c.Files[0]; f.Src != "/etc/os-release" || f.Dst != "/etc/os-release" || f.From != "builder" {
		t.Errorf("file from a stage: %#v", f)
	}
	if tr := c.Trees[0]; tr.Src != "/usr/share/jq" || tr.Dst != "/share" || tr.From != "tools" {
		t.Errorf("tree from a stage: %#v", tr)
	}
}

func TestStageErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"missing stage", "name: x\nstages:\n  a: {}\ncontents:\n  binaries:\n    - src: /bin/sh\n      from: b\n", []string{
			`kiln.yaml:7: contents.binaries[0].from: no stage "b" (stages: a)`}},
		{"no stages at all", "name: x\ncontents:\n  files: [{src: /etc/x, from: b}]\n", []string{
			`kiln.yaml:3: contents.files[0].from: no stage "b" (stages: none)`}},
		{"cycle", "name: x\nstages:\n  a:\n    base: b\n  b:\n    contents:\n      files: [{src: /x, from: a}]\nbase: a\n", []string{
			`kiln.yaml:7: stages.b.contents.files[0].from: stages use each other in a cycle: a -> b -> a`}},
		{"self", "name: x\nstages:\n  a: {base: a}\n", []string{
			`kiln.yaml:3: stages.a.base: stages use each other in a cycle: a -> a`}},
		{"bad name", "name: x\nstages:\n  A_b: {}\n", []string{
			`kiln.yaml:3: stages.A_b: "A_b" is not a valid stage name (lower-case letters, digits, and . _ - after the first; not scratch)`}},
		{"unknown key", "name: x\nstages:\n  a: {name: y}\n", []string{
			`kiln.yaml:3: stages.a: unknown key "name" (known: base, contents, accounts, config, steps)`}},
		{"relative src", "name: x\nstages:\n  a: {}\ncontents:\n  files: [{src: etc/x, from: a}]\n", []string{
			`kiln.yaml:5: contents.files[0].src: "etc/x" is not absolute`}},
		{"not a mapping", "name: x\nstages: [a]\n", []string{`kiln.yaml:2: stages: want a mapping of stage names to stages, got a list`}},
		{"layers", "name: x\nlayers: one\n", []string{`kiln.yaml:2: layers: want steps or squash, got "one"`}},
		{"stage step", "name: x\nstages:\n  a:\n    steps: [{run: x, network: y}]\n", []string{
			`kiln.yaml:4: stages.a.steps[0].network: want none or host, got "y"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yaml)
			wantLines(t, err, tt.want...)
		})
	}
}
