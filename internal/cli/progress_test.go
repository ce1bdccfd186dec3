package cli

import (
	"bytes"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/build"
)

// Off a terminal, every step event is one plain line, and a reused step says CACHED.
func TestStepViewPlain(t *testing.T) {
	var out bytes.Buffer
	v := (&env{stderr: &out}).stepView()
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	for _, ev := range []build.Event{
		{Kind: build.StepDone, Stage: "tools", Step: 1, Steps: 1, Command: "make", Cached: true, Digest: d},
		{Kind: build.StepStart, Step: 1, Steps: 2, Command: "echo hi"},
		{Kind: build.StepOutput, Step: 1, Steps: 2, Line: "hi"},
		{Kind: build.StepWriting, Step: 1, Steps: 2, Bytes: 10},
		{Kind: build.StepDone, Step: 1, Steps: 2, Bytes: 2048, Digest: d},
		{Kind: build.StepStart, Command: "squash"},
	} {
		v.event(ev)
	}
	v.stop()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		"stage tools: step 1/1: CACHED " + short(d),
		"step 1/2: echo hi",
		"step 1/2 | hi",
		"step 1/2: done in ",
		"squash",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
	if !strings.HasSuffix(lines[3], "layer 2.0 KiB "+short(d)) {
		t.Errorf("done line %q lacks the layer's size and digest", lines[3])
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("escape sequences off a terminal")
	}
}
